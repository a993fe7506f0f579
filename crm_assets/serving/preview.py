"""Before publishing a segment: a sample of its members, and what a changed definition would do.

Both read the warehouse and write nothing to it (a read-only connection; what they compute lives in
temporary tables of that connection). Neither shows a column that names or reaches a person (the
BI snapshot's rule, :data:`~crm_assets.serving.snapshot.DIRECT_IDENTIFIERS`).

* :func:`sample_members`: a reproducible sample of the published members with the columns the
  definition outputs (the features that put them there): the same segment, size and seed give the
  same people, whatever the order of the table.
* :func:`diff_segment`: the definition *on disk* run as of a day (the models it reads that depend
  on the as-of date computed again as of that day, in temporary tables), against the published
  members: who would enter, who would leave.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from crm_assets.catalog import Catalog, Definition
from crm_assets.functions.registry import set_as_of_date
from crm_assets.quoting import identifier
from crm_assets.serving.snapshot import DIRECT_IDENTIFIERS
from crm_assets.warehouse.connection import table_exists, use_functions_of
from crm_assets.warehouse.rewrite import read_instead
from crm_assets.warehouse.segments import as_of_models

FRAMEWORK_COLUMNS = ("as_of_date", "definition_version")


@dataclass(frozen=True)
class Rows:
    columns: list[str]
    rows: list[tuple]


@dataclass(frozen=True)
class SegmentDiff:
    as_of: date
    published_as_of: date | None
    published: int
    would_be: int
    entering: int
    leaving: int
    entering_sample: Rows
    leaving_sample: Rows
    published_version: str | None
    version: str


def _shown(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    columns = [r[0] for r in con.execute(f"DESCRIBE {relation}").fetchall()]
    return [c for c in columns if c.lower() not in DIRECT_IDENTIFIERS
            and c not in (*FRAMEWORK_COLUMNS, "_batch")]


def _sample(con: duckdb.DuckDBPyConnection, relation: str, n: int, seed: int,
            where: str = "") -> Rows:
    columns = _shown(con, relation)
    listed = ", ".join(identifier(c) for c in columns)
    rows = con.execute(
        f"SELECT {listed} FROM {relation} {where} "
        f"ORDER BY hash(customer_id, {int(seed)}), customer_id LIMIT {int(n)}").fetchall()
    return Rows(columns, rows)


def sample_members(con: duckdb.DuckDBPyConnection, d: Definition, n: int = 10, seed: int = 0
                   ) -> tuple[int, date | None, Rows]:
    """(members, as of, a sample of ``n`` of them): the same ``seed`` gives the same people."""
    if not table_exists(con, d.table):
        raise LookupError(f"{d.table} has not been materialised yet")
    total, as_of = con.execute(f"SELECT count(*), max(as_of_date) FROM {d.table}").fetchone()
    return total, as_of, _sample(con, d.table, n, seed)


def diff_segment(con: duckdb.DuckDBPyConnection, catalog: Catalog, d: Definition,
                 as_of: date | None = None, n: int = 5, seed: int = 0) -> SegmentDiff:
    """What ``d`` as written would change against the published members, as of ``as_of``
    (default: the day the published members are as of)."""
    published = table_exists(con, d.table)
    published_as_of, published_version = con.execute(
        f"SELECT max(as_of_date), any_value(definition_version) FROM {d.table}"
    ).fetchone() if published else (None, None)
    as_of = as_of or published_as_of
    if as_of is None:
        raise LookupError(f"{d.table} has never been computed: give --as-of")
    query = _as_of_query(con, catalog, d, as_of)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _preview_new AS {query}\n")
    old = d.table if published else "(SELECT NULL::BIGINT AS customer_id WHERE false)"
    con.execute(f"CREATE OR REPLACE TEMP TABLE _preview_old AS SELECT * FROM {old}")
    counts = con.execute(
        """SELECT (SELECT count(DISTINCT customer_id) FROM _preview_old),
                  (SELECT count(DISTINCT customer_id) FROM _preview_new),
                  (SELECT count(DISTINCT customer_id) FROM _preview_new
                   WHERE customer_id NOT IN (SELECT customer_id FROM _preview_old)),
                  (SELECT count(DISTINCT customer_id) FROM _preview_old
                   WHERE customer_id NOT IN (SELECT customer_id FROM _preview_new))""").fetchone()
    entering = _sample(con, "_preview_new", n, seed,
                       "WHERE customer_id NOT IN (SELECT customer_id FROM _preview_old)")
    leaving = _sample(con, "_preview_old", n, seed,
                      "WHERE customer_id NOT IN (SELECT customer_id FROM _preview_new)")
    for temp in ("_preview_new", "_preview_old"):
        con.execute(f"DROP TABLE {temp}")
    return SegmentDiff(as_of, published_as_of, *counts, entering, leaving, published_version,
                       d.version)


def _as_of_query(con: duckdb.DuckDBPyConnection, catalog: Catalog, d: Definition,
                 as_of: date) -> str:
    """``d``'s query as of ``as_of``: the as-of models it reads computed again as of that day
    in temporary tables (the published ones are as of the last run), and read instead."""
    set_as_of_date(con, as_of)
    replaced: dict[str, str] = {}

    def rewritten(x: Definition) -> str:
        sql = x.body
        for table, temp in replaced.items():
            if table in x.deps:
                sql = read_instead(con, sql, table, temp)
        return sql

    for i, model in enumerate(as_of_models(catalog, [d])):
        use_functions_of(con, model)
        temp = f"_preview_model_{i}"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {temp} AS {rewritten(model)}\n")
        replaced[model.table] = temp
    use_functions_of(con, d)
    return rewritten(d)


def drop_previews(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the temporary tables :func:`diff_segment` left (the models as of the day)."""
    for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary "
                               "AND table_name LIKE '\\_preview\\_%' ESCAPE '\\'").fetchall():
        con.execute(f"DROP TABLE {identifier(name)}")
