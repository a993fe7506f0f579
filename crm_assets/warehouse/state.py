"""What the warehouse remembers of its builds: batches, watermarks, versions.

Batches and watermarks are how a table knows which rows of its sources are new to it.

Every step that writes incrementally takes a batch number from the sequence ``meta.batches`` and
stamps the rows it writes with it (``_batch``). A table that reads them keeps, per source, the
largest batch it has taken in (``meta.watermarks``), moved in the same transaction as its own
rows: rows with a larger ``_batch`` are new to it. So a run that dies half-way leaves each
table's watermark where its data is, and the next run takes in everything it missed, whichever
runs wrote it. Steps never write the warehouse at the same time (one writer pool, DuckDB's one
writer process), so batches commit in the order they are taken.
"""

from __future__ import annotations

import duckdb

from crm_assets.catalog import Definition
from crm_assets.functions.registry import cleaning_version
from crm_assets.warehouse.tables import (
    BATCHES,
    BUILT_VERSIONS,
    DEFINITION_VERSIONS,
    STAGED_FILES,
    WATERMARKS,
)

FRAMEWORK_VERSION = "framework"
"""The version recorded for tables Python code writes (identity, history, framework marts)."""


def next_batch(con: duckdb.DuckDBPyConnection) -> int:
    """A new batch number, larger than every one taken before."""
    return int(con.execute(f"SELECT nextval('{BATCHES}')").fetchone()[0])


def watermark(con: duckdb.DuckDBPyConnection, consumer: str, source: str) -> int:
    """The largest batch of ``source`` that ``consumer`` has taken in (0: none)."""
    row = con.execute(f"SELECT batch FROM {WATERMARKS.name} WHERE consumer = ? AND source = ?",
                      [consumer, source]).fetchone()
    return int(row[0]) if row else 0


def set_watermark(con: duckdb.DuckDBPyConnection, consumer: str, source: str, batch: int
                  ) -> None:
    """``consumer`` has taken in ``source`` up to ``batch`` (call inside its transaction)."""
    con.execute(f"DELETE FROM {WATERMARKS.name} WHERE consumer = ? AND source = ?",
                [consumer, source])
    con.execute(f"INSERT INTO {WATERMARKS.name} VALUES (?, ?, ?)", [consumer, source, batch])


def latest_batch(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """The largest ``_batch`` in ``table`` (0 when empty)."""
    return int(con.execute(f"SELECT coalesce(max(_batch), 0) FROM {table}").fetchone()[0])


def mark_staged(con: duckdb.DuckDBPyConnection, consumer: str, shas: list[str], run_id: str
                ) -> None:
    """``consumer`` has taken in the raw files ``shas`` (``meta.staged_files``)."""
    con.execute(f"INSERT INTO {STAGED_FILES.name} SELECT ?, unnest(?::VARCHAR[]), now(), ?",
                [consumer, shas, run_id])


def latest_build(con: duckdb.DuckDBPyConnection) -> int:
    """The batch of the latest build of any table (what a publish is then up to)."""
    return int(con.execute(f"SELECT coalesce(max(batch), 0) FROM {BUILT_VERSIONS.name}"
                           ).fetchone()[0])


def built_version(con: duckdb.DuckDBPyConnection, table: str) -> str | None:
    """The definition version ``table`` holds now, as its last build recorded it."""
    row = con.execute(f"SELECT definition_version FROM {BUILT_VERSIONS.name} "
                      "WHERE table_name = ?", [table]).fetchone()
    return row[0] if row else None


def set_built_version(con: duckdb.DuckDBPyConnection, table: str, version: str, batch: int,
                      grain: list[str], changed: bool = True) -> None:
    """``table`` now holds what ``version`` gives, keyed by ``grain`` (call inside the
    transaction that wrote it). A run that ``changed`` nothing keeps the batch of the last run
    that did: the BI snapshot then knows the table has nothing new to publish."""
    if not changed and con.execute(
            f"UPDATE {BUILT_VERSIONS.name} SET built_at = now() WHERE table_name = ? "
            "AND definition_version = ?", [table, version]).fetchone()[0]:
        return
    con.execute(f"DELETE FROM {BUILT_VERSIONS.name} WHERE table_name = ?", [table])
    con.execute(f"INSERT INTO {BUILT_VERSIONS.name} VALUES (?, ?, ?, now(), ?)",
                [table, version, batch, grain])


def version_built(d: Definition, con: duckdb.DuckDBPyConnection) -> str:
    """What ``meta.built_versions`` records for a table ``d`` builds incrementally: its version,
    for staging (and any query calling a cleaning function) the cleaning rules' version
    (:func:`~crm_assets.functions.registry.cleaning_version`), and the earliest plausible date
    when the query reads it (``con``'s setting). Another value on disk means the rows kept so
    far were judged by other rules: the next run computes the whole table."""
    version = d.version
    if d.layer == "staging" or d.calls_cleaning:
        version += f"+{cleaning_version()}"
    if d.uses_plausible_dates:
        earliest, latest = con.execute("SELECT earliest_plausible_date(), "
                                       "latest_plausible(DATE '2000-01-01')").fetchone()
        version += f"+{earliest}+{latest:%Y-%m-%d}"
    return version


def built_grain(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The key columns of ``table``, as its last build recorded them."""
    row = con.execute(f"SELECT grain FROM {BUILT_VERSIONS.name} WHERE table_name = ?",
                      [table]).fetchone()
    if not row or not row[0]:
        raise LookupError(f"{table} has not been built incrementally yet")
    return list(row[0])


def forget(con: duckdb.DuckDBPyConnection, consumer: str) -> None:
    """Drop what ``consumer`` has taken in: its next run takes in everything (a full refresh)."""
    con.execute(f"DELETE FROM {WATERMARKS.name} WHERE consumer = ?", [consumer])
    con.execute(f"DELETE FROM {BUILT_VERSIONS.name} WHERE table_name = ?", [consumer])


def record_version(con: duckdb.DuckDBPyConnection, d: Definition, run_id: str) -> None:
    """Record ``d``'s version in ``meta.definition_versions`` if it is its first materialisation."""
    con.execute(
        f"""INSERT INTO {DEFINITION_VERSIONS.name}
           SELECT ?, ?, ?, ?, now(), ?
           WHERE NOT EXISTS (SELECT 1 FROM {DEFINITION_VERSIONS.name}
                             WHERE layer = ? AND name = ? AND definition_version = ?)""",
        [d.name, d.layer, d.version, d.body, run_id, d.layer, d.name, d.version])
