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

import functools
import hashlib
import json
import re
from pathlib import Path

import duckdb

from crm_assets.catalog import Definition
from crm_assets.functions.registry import cleaning_version
from crm_assets.warehouse.connection import table_exists
from crm_assets.warehouse.tables import (
    BATCHES,
    BUILT_VERSIONS,
    CLV_MODELS,
    CUSTOMER_IDENTITY,
    DEFINITION_VERSIONS,
    ERASURES,
    FRAMEWORK_TABLES,
    SEGMENT_MEMBERSHIP_HISTORY,
    SEGMENT_RUNS,
    STAGED_FILES,
    WATERMARKS,
)

FRAMEWORK_VERSION = "framework"
"""The version recorded for tables Python code writes (identity, history, framework marts)."""


STANDS_FOR: dict[str, str] = {
    t.name: CUSTOMER_IDENTITY.name for t in FRAMEWORK_TABLES
    if t.written_by == "identity" and t.name != CUSTOMER_IDENTITY.name}
"""Tables whose builds another table's record: what identity resolution writes (the merges, the
redirects view over them) changes with ``core.customer_identity``, whose build it records."""

RECORD_EVERY_WRITE: frozenset[str] = frozenset({
    CLV_MODELS.name, SEGMENT_MEMBERSHIP_HISTORY.name, SEGMENT_RUNS.name})
"""Framework tables whose every writer records its build: one with no record yet has not been
written since it was created (no customer-base model fitted yet)."""


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
                      grain: list[str], changed: bool = True, inputs: str | None = None) -> None:
    """``table`` now holds what ``version`` gives, keyed by ``grain`` (call inside the
    transaction that wrote it). A run that ``changed`` nothing keeps the batch of the last run
    that did: the BI snapshot then knows the table has nothing new to publish. ``inputs``: what
    a table computed whole was computed from (:func:`inputs_of`); none, the next run computes
    it again."""
    if not changed and con.execute(
            f"UPDATE {BUILT_VERSIONS.name} SET built_at = now() WHERE table_name = ? "
            "AND definition_version = ?", [table, version]).fetchone()[0]:
        return
    con.execute(f"DELETE FROM {BUILT_VERSIONS.name} WHERE table_name = ?", [table])
    con.execute(f"INSERT INTO {BUILT_VERSIONS.name} (table_name, definition_version, batch, "
                "built_at, grain, inputs) VALUES (?, ?, ?, now(), ?, ?)",
                [table, version, batch, grain, inputs])


def _read_batches(con: duckdb.DuckDBPyConnection, deps: list[str] | tuple[str, ...]
                  ) -> list[tuple[str, int]] | None:
    """The batch that last changed each table of ``deps`` (``meta.built_versions``, through
    :data:`STANDS_FOR`), by name; ``None`` if one of them does not record its builds."""
    reads = sorted({STANDS_FOR.get(dep, dep) for dep in deps})
    batches = dict(con.execute(f"SELECT table_name, batch FROM {BUILT_VERSIONS.name} "
                               "WHERE list_contains(?, table_name)", [reads]).fetchall())
    batches.update({t: 0 for t in RECORD_EVERY_WRITE.difference(batches)})
    if not set(reads) <= set(batches):
        return None
    return [(t, int(batches[t])) for t in reads]


def unchanged_since(con: duckdb.DuckDBPyConnection, table: str, deps: list[str]) -> bool:
    """Whether none of ``deps`` changed since ``table`` was last built (each recorded a build
    no later than ``table``'s)."""
    row = con.execute(f"SELECT batch FROM {BUILT_VERSIONS.name} WHERE table_name = ?",
                      [table]).fetchone()
    batches = _read_batches(con, deps)
    return row is not None and batches is not None and all(b <= row[0] for _, b in batches)


RUN_MACRO_VALUES: dict[str, str] = {
    "as_of_date": "as_of_date()", "as_of_end": "as_of_end()",
    "business_timezone": "business_timezone()",
    "earliest_plausible_date": "earliest_plausible_date()",
    "latest_plausible": "latest_plausible(TIMESTAMPTZ '2000-01-01 00:00:00+00')",
    "currency_code": "currency_code()", "currency_symbol": "currency_symbol()",
    "lifecycle_new_days": "lifecycle_new_days()",
    "lifecycle_active_days": "lifecycle_active_days()",
    "lifecycle_lapsed_days": "lifecycle_lapsed_days()",
}
"""For each run constant (:data:`~crm_assets.functions.allow_list.RUN_MACROS`), an expression
whose value is what it stands for on a connection (``latest_plausible`` at a fixed instant): a
table's inputs digest holds the values of those its query calls (:func:`inputs_of`). Kept here,
not beside the macros in ``crm_assets/functions/``: that folder's code is the cleaning rules'
version, and editing it makes the next night judge every staged row again."""


def inputs_of(con: duckdb.DuckDBPyConnection, d: Definition) -> str | None:
    """A digest of what a table computed whole from ``d`` depends on: its version and query, the
    batch that last changed each table it reads (``meta.built_versions``), the values of the run
    constants it calls (``as_of_date()``, ``as_of_end()``, the business time zone, the lifecycle
    thresholds, ...: :data:`RUN_MACRO_VALUES`), the session's time zone, the erasures so far and
    the cleaning rules (and the customer-base model functions' code, when it calls them). The
    same digest as the table's last build: computing it again would give the same rows. ``None``
    when a table it reads does not record its builds (the table is then
    always computed). A query that calls no as-of macro keeps its digest when only the as-of date
    moves (a night: ``core.customer_ids`` is not computed again)."""
    batches = _read_batches(con, d.deps)
    if batches is None:
        return None
    called = _called(d.body)
    zone, erasures, *values = con.execute(
        f"SELECT current_setting('TimeZone'), (SELECT count(*) FROM {ERASURES.name})"
        + "".join(f", {RUN_MACRO_VALUES[name]}" for name in called)).fetchone()
    code = [cleaning_version(), _clv_code() if d.calls_clv else None]
    text = json.dumps([d.version, d.body, batches, list(zip(called, values, strict=True)), zone,
                       erasures, *code], default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _called(text: str) -> list[str]:
    """The run constants ``text`` calls: a name followed by ``(`` anywhere in it (a mention in a
    comment counts too: more is safe)."""
    return [name for name in sorted(RUN_MACRO_VALUES)
            if re.search(rf"\b{name}\s*\(", text, re.IGNORECASE)]


@functools.cache
def _clv_code() -> str:
    """The code of the customer-base model functions a query may call (``bgnbd_*``, ...)."""
    digest = hashlib.sha256()
    for path in sorted((Path(__file__).parents[1] / "clv").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def built_from(con: duckdb.DuckDBPyConnection, table: str) -> tuple[str, str] | None:
    """The version and the inputs (:func:`inputs_of`) ``table`` was last computed whole from."""
    row = con.execute(f"SELECT definition_version, inputs FROM {BUILT_VERSIONS.name} "
                      "WHERE table_name = ? AND inputs IS NOT NULL", [table]).fetchone()
    return (row[0], row[1]) if row else None


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


def unchanged_since_built(con: duckdb.DuckDBPyConnection, d: Definition) -> bool:
    """Whether ``d``'s table, computed whole, was last computed from the very inputs there are
    now (:func:`inputs_of`: the tables it reads unchanged since, the same as-of date and
    settings): computing it again would give the same rows. A night run again, or one whose new
    data does not reach the table, then leaves it as it is."""
    return built_with(con, d, inputs_of(con, d))


def built_with(con: duckdb.DuckDBPyConnection, d: Definition, inputs: str | None) -> bool:
    """Whether ``d``'s table was last computed whole from ``inputs`` (:func:`inputs_of`), by its
    current version, and is there."""
    built = built_from(con, d.table)
    return (inputs is not None and built is not None and built[0] == d.version
            and built[1] == inputs and table_exists(con, d.table))
