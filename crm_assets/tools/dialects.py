"""The SQL definitions in other dialects: written once for DuckDB, transpiled by sqlglot.

:func:`compile_definition` turns a definition into Spark SQL, BigQuery, Snowflake or PostgreSQL:
the project's date macros (``as_of_date()``, ``as_of_end()``, ``business_timezone()``) become
literals, and what cannot be carried over is reported rather than silently emitted:

* **non-portable**: the project's own functions (``crm_*``), Python UDFs that exist only in the
  DuckDB warehouse; a definition that calls one does not run elsewhere.
* **warnings**: what sqlglot says the target does not support, DuckDB functions sqlglot does not
  know and passes through unchanged (they may or may not exist in the target), and ``try_cast``
  where the target has no safe cast (it becomes ``CAST``, which raises on a bad value).

"Transpiled" is not "runs": :func:`check_on_postgres` creates every definition as a view in a real
PostgreSQL database over empty tables typed like the catalogue's, in dependency order, and says
which do not run and why (tests/test_dialects.py keeps that list explicit).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel

from crm_assets.catalog import Catalog, Definition
from crm_assets.catalog.definition import DIALECT
from crm_assets.functions.allow_list import PROJECT_FUNCTIONS, RUN_MACROS
from crm_assets.functions.registry import configuration_values
from crm_assets.layers import SCHEMAS
from crm_assets.quoting import identifier

TARGETS: tuple[str, ...] = ("spark", "bigquery", "snowflake", "postgres")

MACROS: frozenset[str] = RUN_MACROS
"""Project functions that are constants of a run: replaced by literals, so portable."""

NON_PORTABLE: frozenset[str] = PROJECT_FUNCTIONS - MACROS
"""Project functions with no equivalent outside the warehouse (Python UDFs registered in DuckDB)."""

SAFE_CAST = ("TRY_CAST", "SAFE_CAST", "TRY_TO_")


@dataclass
class Compiled:
    """One definition in one dialect.

    ``non_portable`` maps each function that makes it unrunnable in the target to the reason;
    ``warnings`` are things to check by hand. ``sql`` is always produced, even when not portable.
    """

    table: str
    version: str
    dialect: str
    sql: str
    as_of: date
    bindings: dict[str, str] = field(default_factory=dict)
    non_portable: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def portable(self) -> bool:
        return not self.non_portable


def as_of_end_instant(as_of: date, business_timezone: str) -> datetime:
    """The instant the as-of day ends in the business zone, in UTC (what ``as_of_end()`` gives)."""
    end = datetime.combine(as_of + timedelta(days=1), time(), ZoneInfo(business_timezone))
    return end.astimezone(UTC)


def bind_macros(expression: exp.Expression, as_of: date, business_timezone: str,
                configuration: Mapping[str, object] | None = None
                ) -> tuple[exp.Expression, dict[str, str]]:
    """A copy of ``expression`` with the run's and the project's macros replaced by typed
    literals, and the bindings.

    ``as_of_end()`` becomes an instant written in UTC with its offset, so a target that has no
    zoned timestamp type (Spark, BigQuery) still reads the same instant. ``configuration``: what
    the configuration macros return (default: the defaults, see
    :func:`~crm_assets.functions.registry.configuration_values`).
    """
    end = as_of_end_instant(as_of, business_timezone).strftime("%Y-%m-%d %H:%M:%S+00:00")
    values = {
        "as_of_date": exp.cast(exp.Literal.string(as_of.isoformat()), exp.DataType.Type.DATE),
        "as_of_end": exp.cast(exp.Literal.string(end), exp.DataType.Type.TIMESTAMPTZ),
        "business_timezone": exp.Literal.string(business_timezone),
    }
    shown = {"as_of_date": as_of.isoformat(), "as_of_end": end,
             "business_timezone": business_timezone}
    for name, value in (configuration or configuration_values()).items():
        if isinstance(value, date):
            values[name] = exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
        elif isinstance(value, int):
            values[name] = exp.Literal.number(value)
        else:
            values[name] = exp.Literal.string(str(value))
        shown[name] = str(value)
    used: dict[str, str] = {}

    def replace(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and node.name.lower() in values and not node.expressions:
            name = node.name.lower()
            used[name] = shown[name]
            return values[name].copy()
        return node

    return expression.copy().transform(replace), used


def _renamed(node: exp.Expression, tables: Mapping[str, str]) -> exp.Expression:
    if isinstance(node, exp.Table) and node.db:
        new = tables.get(f"{node.db}.{node.name}".lower())
        if new is not None:
            renamed = exp.to_table(new)
            if node.args.get("alias") is not None:
                renamed.set("alias", node.args["alias"].copy())
            return renamed
    return node


def _function_names(expression: exp.Expression) -> set[str]:
    return {f.name.lower() for f in expression.find_all(exp.Anonymous)}


def compile_definition(d: Definition, dialect: str, *, as_of: date, business_timezone: str,
                       tables: Mapping[str, str] | None = None,
                       configuration: Mapping[str, object] | None = None) -> Compiled:
    """``d`` transpiled from DuckDB to ``dialect`` (one of :data:`TARGETS`), with a diagnosis.

    ``tables`` renames the tables it reads (``{"core.orders": "core__orders"}``), e.g. to the
    views an engine registered over files.

    Raises:
        ValueError: ``dialect`` is not one of :data:`TARGETS`, or ``d`` did not parse.
    """
    if dialect not in TARGETS:
        raise ValueError(f"unknown dialect {dialect!r}; expected one of {', '.join(TARGETS)}")
    if d.ast is None:
        raise ValueError(f"{d.display_path} did not parse; run `crm validate`")
    bound, bindings = bind_macros(d.ast, as_of, business_timezone, configuration)
    if tables:
        bound = bound.transform(lambda node: _renamed(node, tables))
    generator = Dialect.get_or_raise(dialect).generator(
        pretty=True, comments=False, unsupported_level=ErrorLevel.IGNORE)
    sql = generator.generate(bound, copy=True)
    compiled = Compiled(d.table, d.version, dialect, sql, as_of, bindings)

    names = _function_names(bound)
    for name in sorted(names & NON_PORTABLE):
        compiled.non_portable[name] = (f"{name}() is a project function (a Python UDF of the "
                                       f"DuckDB warehouse) with no {dialect} equivalent")
    for name in sorted(names - PROJECT_FUNCTIONS):
        compiled.warnings.append(f"{name}() is passed through unchanged (sqlglot does not know "
                                 f"it): check that {dialect} has it with the same meaning")
    for message in dict.fromkeys(generator.unsupported_messages):
        compiled.warnings.append(f"sqlglot: {message}")
    unsafe = [c for c in bound.find_all(exp.TryCast)
              if not c.sql(dialect=dialect).upper().startswith(SAFE_CAST)]
    if unsafe:
        compiled.warnings.append(
            f"{len(unsafe)} try_cast(...) become CAST in {dialect}: a value that does not convert "
            "raises an error instead of giving NULL")
    return compiled


def format_compiled(c: Compiled) -> str:
    """The SQL, preceded by ``--`` comments saying what was bound, what is not portable, and why."""
    lines = [f"-- {c.table} (version {c.version[:12]}) in {c.dialect}, transpiled from DuckDB "
             "by sqlglot"]
    if c.bindings:
        bound = ", ".join(f"{k}() = {v}" for k, v in sorted(c.bindings.items()))
        lines.append(f"-- bound: {bound}")
    for reason in c.non_portable.values():
        lines.append(f"-- NOT PORTABLE: {reason}")
    for warning in c.warnings:
        lines.append(f"-- warning: {warning}")
    lines.append(c.sql.rstrip().rstrip(";") + ";")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# running the PostgreSQL output on a real server

_PG_TYPES = {"HUGEINT": "NUMERIC(38, 0)", "UHUGEINT": "NUMERIC(39, 0)",
             "UBIGINT": "NUMERIC(20, 0)", "UINTEGER": "BIGINT", "USMALLINT": "INTEGER",
             "UTINYINT": "SMALLINT", "TINYINT": "SMALLINT"}


def postgres_type(duckdb_type: str) -> str:
    """The PostgreSQL type of a DuckDB column type (as ``DESCRIBE`` prints it)."""
    upper = duckdb_type.strip().upper()
    if upper in _PG_TYPES:
        return _PG_TYPES[upper]
    return exp.DataType.build(duckdb_type, dialect=DIALECT).sql(dialect="postgres")


def _create_table(cur, table: str, columns) -> None:
    cols = ", ".join(f"{identifier(n)} {postgres_type(t)}" for n, t in columns)
    cur.execute(f"CREATE TABLE {table} ({cols})")


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def check_on_postgres(catalog: Catalog, con, *, as_of: date, business_timezone: str
                      ) -> dict[str, str | None]:
    """Run every definition's PostgreSQL output on ``con``; ``None`` for those that run.

    ``con`` is a psycopg connection in autocommit mode to a database the caller owns and drops
    afterwards: this creates one schema per layer in it. External tables (raw, identity, framework)
    become empty tables with the catalogue's columns; each definition, in dependency order, becomes
    a view that is then queried, and must give the catalogue's output column names. A definition
    that does not run is replaced by an empty table of its columns, so what reads it is still
    checked on its own.

    Returns:
        ``{table: None}`` when it runs, ``{table: reason}`` when it does not.
    """
    results: dict[str, str | None] = {}
    with con.cursor() as cur:
        for schema in SCHEMAS:
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for table, columns in catalog.external.items():
            _create_table(cur, table, columns)
        for d in catalog.definitions:
            compiled = compile_definition(d, "postgres", as_of=as_of,
                                          business_timezone=business_timezone)
            reason: str | None = None
            if not compiled.portable:
                reason = "calls " + ", ".join(f"{n}()" for n in compiled.non_portable)
            else:
                try:
                    cur.execute(f"CREATE VIEW {d.table} AS\n{compiled.sql}")
                    cur.execute(f"SELECT * FROM {d.table}")
                    cur.fetchall()
                    names = [c.name for c in cur.description or []]
                    wanted = [n.lower() for n, _ in d.schema]
                    if names != wanted:
                        reason = f"outputs columns {names}, DuckDB gives {wanted}"
                except Exception as err:  # noqa: BLE001 - any database error is the answer
                    reason = _first_line(err)
            if reason is not None:
                cur.execute(f"DROP VIEW IF EXISTS {d.table}")
                _create_table(cur, d.table, d.schema)
            results[d.table] = reason
    return results
