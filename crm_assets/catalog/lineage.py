"""Column-level lineage of one SQL definition, from ``sqlglot.lineage``.

Lineage is *what feeds a column*: the upstream columns its value is computed from, and those that
decide which rows or which value are picked (join keys, filters of an aggregate, window orderings),
as ``sqlglot.lineage`` reports them. A column computed from no column (``count(*)``, a literal) has
no upstream columns. A graph costs tens of milliseconds per column, so it is never computed when
the project loads: a materialisation computes it (``dagster/column_lineage``,
:mod:`crm_assets.defs.metadata`), and ``crm lineage`` on demand (:mod:`crm_assets.tools.lineage`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.lineage import lineage

from crm_assets.catalog.definition import DIALECT, Definition, Schema

log = logging.getLogger(__name__)

Upstream = tuple[str, str]
"""``("layer.table", "column")``."""


@dataclass
class ColumnLineage:
    """For each output column of one definition, the upstream columns that feed it.

    ``deps`` maps a column to its sorted ``(table, column)`` pairs; ``errors`` holds the columns
    sqlglot could not trace, with the reason (they are left out of ``deps``).
    """

    table: str
    deps: dict[str, list[Upstream]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def sqlglot_schema(tables: Mapping[str, Schema]) -> dict:
    """``{"raw.orders": [(col, type)]}`` as sqlglot's nested ``{db: {table: {col: type}}}``."""
    nested: dict[str, dict[str, dict[str, str]]] = {}
    for table, columns in tables.items():
        db, name = table.split(".", 1)
        nested.setdefault(db, {})[name] = {column: type_ for column, type_ in columns}
    return nested


def _leaves(node, known: set[str]) -> list[Upstream]:
    found: set[Upstream] = set()
    for n in node.walk():
        if isinstance(n.expression, exp.Table) and not n.downstream:
            table = f"{n.expression.db}.{n.expression.name}".lower()
            if table in known:
                found.add((table, n.name.split(".")[-1]))
    return sorted(found)


def column_lineage(d: Definition, upstream_schemas: Mapping[str, Schema],
                   columns: list[str] | None = None) -> ColumnLineage:
    """Trace each of ``columns`` (default: every output column) of ``d`` to the tables it reads.

    Never raises for a column sqlglot cannot trace: that column is recorded in ``errors`` (for
    the caller to log) and left out of ``deps``. Only tables among ``d.deps`` are reported (a table
    function such as ``generate_series`` is not a table).

    Args:
        d: a valid definition (parsed, with its dependencies).
        upstream_schemas: the columns of every table in ``d.deps`` (``Catalog.schema_of``).
        columns: output columns to trace.
    """
    result = ColumnLineage(d.table)
    wanted = columns if columns is not None else [n for n, _ in d.schema] or list(
        d.ast.named_selects if d.ast is not None else [])
    known = set(d.deps)
    schema = sqlglot_schema({t: s for t, s in upstream_schemas.items() if t in known})
    sql = d.ast if d.ast is not None else d.body
    try:
        nodes = lineage(None, sql, schema=schema, dialect=DIALECT, trim_selects=False)
    except Exception as err:  # noqa: BLE001 - sqlglot raises many kinds; fall back per column
        log.debug("lineage of %s as a whole failed (%s); tracing column by column", d.table, err)
        nodes = {}
        for column in wanted:
            try:
                nodes[column] = lineage(column, sql, schema=schema, dialect=DIALECT,
                                        trim_selects=False)
            except Exception as col_err:  # noqa: BLE001
                result.errors[column] = f"{type(col_err).__name__}: {col_err}"
    by_lower = {name.lower(): node for name, node in nodes.items()}
    for column in wanted:
        if column in result.errors:
            continue
        node = nodes.get(column) or by_lower.get(column.lower())
        if node is None:
            result.errors[column] = "not an output column of the query"
            continue
        try:
            result.deps[column] = _leaves(node, known)
        except Exception as err:  # noqa: BLE001
            result.errors[column] = f"{type(err).__name__}: {err}"
    return result


def passed_through(d: Definition, upstream_schemas: Mapping[str, Schema], column: str
                   ) -> list[Upstream] | None:
    """The table columns whose values ``column`` of ``d`` *is*, unchanged (selected, renamed,
    through common table expressions and unions, never computed or cast); ``None`` when it is
    anything else or sqlglot cannot tell.

    Every value of such a column is the value of that column in some row of one of those tables,
    so its rows in a time range come from rows of those tables in the same range.
    """
    known = set(d.deps)
    schema = sqlglot_schema({t: s for t, s in upstream_schemas.items() if t in known})
    try:
        node = lineage(column, d.ast if d.ast is not None else d.body, schema=schema,
                       dialect=DIALECT, trim_selects=False)
    except Exception as err:  # noqa: BLE001 - sqlglot raises many kinds
        log.debug("lineage of %s.%s failed: %s", d.table, column, err)
        return None
    found: set[Upstream] = set()
    pending = [node]
    while pending:
        n = pending.pop()
        e = n.expression
        if isinstance(e, exp.Table):
            table = f"{e.db}.{e.name}".lower()
            if n.downstream or table not in known:
                return None
            found.add((table, n.name.split(".")[-1]))
            continue
        if isinstance(e, exp.Alias):
            e = e.this
        if not isinstance(e, exp.Column) or not n.downstream:
            return None
        pending.extend(n.downstream)
    return sorted(found) or None


# --------------------------------------------------------------------------------------------
# the tree, down to raw
