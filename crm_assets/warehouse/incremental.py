"""Models merged by key: a night computes again only the keys whose inputs changed.

A model whose header says ``incremental: {from: T, via: {U: column}, removed: V.column}`` keeps
one row per grain key, derived from the rows of ``T`` carrying that key (and what they join to).
Tables written incrementally stamp each row with the batch that wrote it (``_batch``,
:mod:`crm_assets.warehouse.batches`), so the keys to compute again are those of:

* ``T``'s rows written since the model last ran;
* ``T``'s rows whose ``column`` holds a value of a ``U`` row written since (a person's records
  moved to another id, an order whose status changed for its lines);
* ``V``'s rows written since (keys that disappeared, deleted here).

The model's own SQL runs over just those keys' rows of ``T``, and the result replaces their rows,
in one transaction; a key computed again to the very same row keeps it, with its batch, so a
change that changes nothing downstream stops here. A first build, a full refresh, or a definition
whose version changed since the table was built computes the whole table. The rule the
catalogue cannot check and the header promises: a key's rows depend only on ``T``'s rows of that
key and the rows they join to.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from crm_assets.catalog import Definition
from crm_assets.quoting import identifier, literal
from crm_assets.warehouse.connection import (
    rows_by_rowid,
    table_exists,
    transaction,
    use_functions_of,
)
from crm_assets.warehouse.rewrite import read_instead
from crm_assets.warehouse.state import (
    built_version,
    latest_batch,
    next_batch,
    record_version,
    set_built_version,
    set_watermark,
    version_built,
    watermark,
)
from crm_assets.warehouse.tables import CHANGED_PARTS, month_column


@dataclass(frozen=True)
class MergeResult:
    rows: int
    """Rows in the table after the run."""
    keys: int
    """Keys whose rows the run changed (every key when ``full``)."""
    full: bool
    batch: int
    """The batch the run wrote its rows with."""


def materialize_incremental(con: duckdb.DuckDBPyConnection, d: Definition, run_id: str, *,
                            full_refresh: bool = False) -> MergeResult:
    """Merge the keys of ``d`` whose inputs changed since it last ran (see the module)."""
    spec = d.incremental
    assert spec is not None, f"{d.table} is not incremental"
    use_functions_of(con, d)
    removed_table, _, removed_column = (spec.removed or "").rpartition(".")
    sources = [spec.source, *spec.via, *([removed_table] if removed_table else [])]
    seen = {table: latest_batch(con, table) for table in sources}
    full = (full_refresh or not table_exists(con, d.table)
            or built_version(con, d.table) != version_built(d, con))
    batch = next_batch(con)
    month = month_column([n for n, _ in d.schema])
    if full:
        with transaction(con):
            con.execute(f"CREATE OR REPLACE TABLE {d.table} AS "
                        f"SELECT *, {batch}::BIGINT AS _batch FROM (\n{d.body}\n)")
            con.execute(f"INSERT INTO {CHANGED_PARTS.name} VALUES (?, '*', ?)", [d.table, batch])
            _remember(con, d, seen, batch, run_id)
        rows = _count(con, d.table)
        return MergeResult(rows, rows, True, batch)
    keys = _changed_keys(con, d, seen, removed_table, removed_column)
    if keys:
        query = read_instead(con, d.body, spec.source, "_crm_source")
        same_key = " AND ".join(f"k.{identifier(g)} = s.{identifier(g)}" for g in d.grain)
        con.execute("CREATE OR REPLACE TEMP TABLE _crm_source AS " + rows_by_rowid(
            spec.source, f"SELECT s.rowid FROM {spec.source} s SEMI JOIN _crm_keys k "
                         f"ON {same_key}"))
        con.execute(f"CREATE OR REPLACE TEMP TABLE _crm_merged AS "
                    f"SELECT *, {batch}::BIGINT AS _batch FROM (\n{query}\n)")
    with transaction(con):
        if keys:  # in the transaction: the rowids it finds are those the DELETE removes
            keys = _keep_unchanged(con, d, same_key)
        if keys:
            if month:  # the months of the rows replaced and of those replacing them
                part = f"strftime({identifier(month)}, '%Y-%m')"
                con.execute(
                    f"""INSERT INTO {CHANGED_PARTS.name}
                        SELECT DISTINCT {literal(d.table)}, {part}, {batch} FROM (
                            SELECT {identifier(month)} FROM _crm_old s
                            WHERE EXISTS (SELECT 1 FROM _crm_keys k WHERE {same_key})
                            UNION ALL SELECT {identifier(month)} FROM _crm_merged)
                        WHERE {identifier(month)} IS NOT NULL""")
            con.execute(f"DELETE FROM {d.table} WHERE rowid IN (SELECT s._crm_rowid "
                        f"FROM _crm_old s WHERE EXISTS (SELECT 1 FROM _crm_keys k "
                        f"WHERE {same_key}))")
            con.execute(f"INSERT INTO {d.table} BY NAME SELECT * FROM _crm_merged")
        _remember(con, d, seen, batch, run_id, changed=keys > 0)
    for temp in ("_crm_keys", "_crm_source", "_crm_merged", "_crm_old"):
        con.execute(f"DROP TABLE IF EXISTS {temp}")
    return MergeResult(_count(con, d.table), keys, False, batch)


def _changed_keys(con: duckdb.DuckDBPyConnection, d: Definition, seen: dict[str, int],
                  removed_table: str, removed_column: str) -> int:
    """``_crm_keys``: the grain keys to compute again; how many."""
    spec = d.incremental
    grain = ", ".join(identifier(g) for g in d.grain)
    since = {t: watermark(con, d.table, t) for t in seen}
    parts = [f"SELECT {grain} FROM {spec.source} WHERE _batch > {since[spec.source]}"]
    for table, column in spec.via.items():
        col = identifier(column)
        parts.append(f"SELECT {', '.join('s.' + identifier(g) for g in d.grain)} "
                     f"FROM {spec.source} s SEMI JOIN (SELECT {col} FROM {table} "
                     f"WHERE _batch > {since[table]}) v ON s.{col} = v.{col}")
    if removed_table:
        (key,) = d.grain
        parts.append(f"SELECT {identifier(removed_column)} AS {identifier(key)} "
                     f"FROM {removed_table} WHERE _batch > {since[removed_table]}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _crm_keys AS {' UNION '.join(parts)}")
    return int(con.execute("SELECT count(*) FROM _crm_keys").fetchone()[0])


def _keep_unchanged(con: duckdb.DuckDBPyConnection, d: Definition, same_key: str) -> int:
    """Narrow ``_crm_keys`` (and ``_crm_merged``) to the keys whose rows the run changes (their
    rows before the run are in ``_crm_old``, with their rowids, so the table is read once): a key
    computed again to the same row keeps its batch, so what reads the table has nothing new to
    take in from it (a person's records re-resolved to the same id leave their orders be)."""
    columns = ", ".join(identifier(n) for n, _ in d.schema)
    grain = ", ".join(identifier(g) for g in d.grain)
    con.execute("CREATE OR REPLACE TEMP TABLE _crm_old AS " + rows_by_rowid(
        d.table, f"SELECT s.rowid FROM {d.table} s SEMI JOIN _crm_keys k ON {same_key}",
        f"rowid AS _crm_rowid, {columns}"))
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _crm_keys AS
        SELECT DISTINCT {grain} FROM (
            (SELECT {columns} FROM _crm_merged EXCEPT ALL SELECT {columns} FROM _crm_old)
            UNION ALL
            (SELECT {columns} FROM _crm_old EXCEPT ALL SELECT {columns} FROM _crm_merged))""")
    con.execute(f"DELETE FROM _crm_merged s WHERE NOT EXISTS (SELECT 1 FROM _crm_keys k "
                f"WHERE {same_key})")
    return int(con.execute("SELECT count(*) FROM _crm_keys").fetchone()[0])


def _remember(con: duckdb.DuckDBPyConnection, d: Definition, seen: dict[str, int], batch: int,
              run_id: str, changed: bool = True) -> None:
    for table, last in seen.items():
        set_watermark(con, d.table, table, last)
    set_built_version(con, d.table, version_built(d, con), batch, d.grain, changed)
    record_version(con, d, run_id)


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
