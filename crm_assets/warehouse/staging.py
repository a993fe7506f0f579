"""Staging that keeps the latest version of each key, judging only what a night brought.

A staging file says what is wrong with a row (``_problem``, or NULL) and declares its ``grain``.
Of each key the latest version is kept: a valid row beats an invalid one, then the latest load,
then the last row of a file (then the file name, so ties break the same way every time); every
other version is rejected, as ``superseded`` when it was valid. Rows with a problem or superseded
go to ``staging.rejects`` with the raw row as JSON.

The rules are the same on a night as on a first build; what changes is which rows are looked at
(:func:`materialize_staging`):

* the rows of raw files this table has not judged yet (``meta.staged_files``);
* rows judged before whose answer may now differ: rejected rows naming a key written since in a
  table they reference (a customer or store they named may have arrived; ``reference_keys`` in
  ``staging.rejects``), and kept rows holding such a key (``references`` in the header: a store's
  time zone decides its orders' instants);
* then every other version of each key those rows carry, found by the key in this table and in
  the rejects (``grain_key``), so the latest version is chosen among all of them.

Those rows are judged by the file's own SQL (run over just them), ranked per key, and replace what
the table and the rejects held for them, in one transaction; a kept row judged exactly as before
stays as it was, so it is not new to what reads the table. A row's judgement depends only on the
row and the tables it references (the catalogue checks a staging query is row by row), so this
gives what judging every raw row again would. Each written row carries the batch that wrote it
(``_batch``): what reads the table takes in only the keys written since it last ran.
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
    built_grain,
    built_version,
    latest_batch,
    mark_staged,
    next_batch,
    record_version,
    set_built_version,
    set_watermark,
    version_built,
    watermark,
)
from crm_assets.warehouse.tables import LOADED_FILES, REJECTS, STAGED_FILES

LINEAGE = ("_file_sha256", "_row_number")
"""What identifies a raw row, everywhere."""

TOUCHED = "_crm_touched"
"""The temporary table (of this connection) holding the lineage a run judged: the accounting
check matches only those rows."""


@dataclass(frozen=True)
class StagingResult:
    """What one run did to one staging table."""

    rows: int
    """Rows in the table after the run."""
    judged: int
    """Raw rows judged (new ones and those judged again)."""
    new_files: int
    written: int
    """Keys written (new or changed) this run."""
    rejected: int
    """Rejected rows of the table after the run."""
    full: bool
    """Whether every raw row was judged (first build, full refresh, or a changed definition)."""
    batch: int
    """The batch the run wrote its rows with."""
    conflicting: int = 0
    """Versions this run judged that lost to a version of the same key with other values."""


def grain_key_sql(d: Definition, alias: str = "") -> str:
    """The row's key as text (a JSON list of its grain values), NULL when a part is missing."""
    prefix = f"{alias}." if alias else ""
    parts = [f"CAST({prefix}{identifier(k)} AS VARCHAR)" for k in d.grain]
    nulls = " OR ".join(f"{prefix}{identifier(k)} IS NULL" for k in d.grain)
    return f"CASE WHEN {nulls} THEN NULL ELSE to_json([{', '.join(parts)}])::VARCHAR END"


def reference_keys_sql(d: Definition, alias: str = "") -> str:
    """The keys of other staging tables the row names, as ``column=value`` texts."""
    prefix = f"{alias}." if alias else ""
    parts = [f"{literal(column + '=')} || CAST({prefix}{identifier(column)} AS VARCHAR)"
             for column in d.references]
    return f"list_filter([{', '.join(parts)}]::VARCHAR[], lambda k: k IS NOT NULL)"


CONFLICT = " with other values"
"""What the reason of a superseded version says when its values differ from the version kept (the
same order_id with 999.99 and 1.00), not merely repeat it."""


def ranking_query(d: Definition, judged: str) -> str:
    """``judged`` (rows of the file's query) with one ``_reject_reason`` each (NULL: kept).

    Per key: rows without a problem first, then the latest load, then the last row of a file,
    then the file name. Every other version is ``superseded``, naming the file and row kept, and
    saying :data:`CONFLICT` when any of its values (the key and lineage apart) differs.
    """
    key = " || ', ' || ".join(f"{literal(k + ' ')} || CAST({identifier(k)} AS VARCHAR)"
                              for k in d.grain)
    values = ", ".join(identifier(n) for n, _ in d.published_schema
                       if not n.startswith("_") and n not in d.grain)
    same = f"hash({values})" if values else "0"
    return f"""SELECT * EXCLUDE (_problem, _version_rank, _latest_version, _values, _latest_values),
       coalesce(_problem, CASE WHEN _version_rank > 1
           THEN 'superseded: ' || {key} || ' again in ' || _latest_version
                || CASE WHEN _values IS DISTINCT FROM _latest_values
                        THEN {literal(CONFLICT)} ELSE '' END END) AS _reject_reason
FROM (
    SELECT *,
        row_number() OVER latest AS _version_rank,
        first_value(_source_file || ' row ' || _row_number) OVER latest AS _latest_version,
        {same} AS _values,
        first_value({same}) OVER latest AS _latest_values
    FROM {judged}
    WINDOW latest AS (
        PARTITION BY {", ".join(identifier(k) for k in d.grain)}
        ORDER BY _problem IS NULL DESC, _loaded_at DESC, _row_number DESC, _source_file DESC
    )
)"""


def materialize_staging(con: duckdb.DuckDBPyConnection, d: Definition, run_id: str, *,
                        full_refresh: bool = False) -> StagingResult:
    """Judge what is new or may have changed for ``staging.<name>``; see the module docstring.

    With ``full_refresh`` (or on a first build, or when the definition or the cleaning rules
    changed since the table was built, :func:`~crm_assets.warehouse.state.version_built`) every
    raw row is judged again and the table and its rejects are replaced.
    """
    raw = f"raw.{d.name}"
    full = (full_refresh or not table_exists(con, d.table)
            or built_version(con, d.table) != version_built(d, con))
    batch = next_batch(con)
    seen = {ref: latest_batch(con, ref) for ref in set(d.references.values())}
    new_files = _new_files(con, d, full)
    con.execute(f"DROP TABLE IF EXISTS {TOUCHED}")
    if not full and not new_files and all(last <= watermark(con, d.table, ref)
                                          for ref, last in seen.items()):
        # nothing new to judge, and nothing judged before can be judged otherwise now
        con.execute(f"CREATE TEMP TABLE {TOUCHED} AS SELECT {', '.join(LINEAGE)} FROM {raw} "
                    "LIMIT 0")
        rows, rejected = _counts(con, d)
        return StagingResult(rows, 0, 0, 0, rejected, False, batch)
    use_functions_of(con, d)  # ~40 ms: only when there is something to judge
    if not full:
        _dirty_rows(con, d, raw, new_files, seen)
        judged = _judge(con, d, raw)
        _contest(con, d, "_crm_judged")
    building = _building(d)
    con.execute(f"DROP TABLE IF EXISTS {building}")  # left by a run killed before it was done
    if full:  # every raw row judged again, straight into a table that becomes staging's
        con.execute(f"CREATE TABLE {building} AS {_all_judged(d, batch)}")
    with transaction(con):
        if full:
            judged, written = _replace_all(con, d, raw, building)
            con.execute(f"DELETE FROM {STAGED_FILES.name} WHERE table_name = ?", [d.name])
        else:
            written = _replace(con, d, batch)
        mark_staged(con, d.name, new_files, run_id)
        for ref, last in seen.items():
            set_watermark(con, d.table, ref, last)
        set_built_version(con, d.table, version_built(d, con), batch, d.grain)
        record_version(con, d, run_id)
    (conflicting,) = con.execute(
        "SELECT count(*) FROM _crm_contested WHERE _reject_reason LIKE 'superseded:%' "
        f"AND suffix(_reject_reason, {literal(CONFLICT)})").fetchone()
    if not full:  # the accounting check then matches only these rows
        con.execute(f"CREATE TEMP TABLE {TOUCHED} AS SELECT {', '.join(LINEAGE)} FROM _crm_judged")
    for temp in ("_crm_dirty", "_crm_rows", "_crm_judged", "_crm_contested", "_crm_same",
                 "_crm_before"):
        con.execute(f"DROP TABLE IF EXISTS {temp}")
    rows, rejected = _counts(con, d)
    return StagingResult(rows, judged, len(new_files), written, rejected, full, batch,
                         int(conflicting))


def _contest(con: duckdb.DuckDBPyConnection, d: Definition, judged: str) -> None:
    """``_crm_contested``: the rows of ``judged`` whose key has two or more versions without a
    problem, ranked (:func:`ranking_query`); usually a handful.

    Every other key needs no ranking: its one valid row (if any) is kept and the others are
    rejected for their problem, which is what the ranking would give them. So the rows are
    never sorted as a whole, and a first build costs little more than the staging query.
    """
    grain = ", ".join(identifier(k) for k in d.grain)
    same_key = " AND ".join(f"j.{identifier(k)} IS NOT DISTINCT FROM c.{identifier(k)}"
                            for k in d.grain)
    keys = (f"SELECT {grain} FROM {judged} WHERE _problem IS NULL "
            "GROUP BY ALL HAVING count(*) > 1")
    rows = f"(SELECT j.* FROM {judged} j SEMI JOIN ({keys}) c ON {same_key})"
    con.execute(f"CREATE OR REPLACE TEMP TABLE _crm_contested AS {ranking_query(d, rows)}")


def _ranked(judged: str) -> str:
    """Every row of ``judged`` with its ``_reject_reason``: its problem, unless it is among
    ``_crm_contested``, which has it ranked."""
    return f"""(SELECT * EXCLUDE (_problem), _problem AS _reject_reason
                FROM {judged} j ANTI JOIN _crm_contested c
                    ON j._file_sha256 = c._file_sha256 AND j._row_number = c._row_number
                UNION ALL BY NAME
                SELECT * FROM _crm_contested)"""


def _counts(con: duckdb.DuckDBPyConnection, d: Definition) -> tuple[int, int]:
    """Rows of the table, and its rejected rows."""
    rows, rejected = con.execute(
        f"SELECT (SELECT count(*) FROM {d.table}), "
        f"(SELECT count(*) FROM {REJECTS.name} WHERE table_name = ?)", [d.name]).fetchone()
    return int(rows), int(rejected)


def _new_files(con: duckdb.DuckDBPyConnection, d: Definition, full: bool) -> list[str]:
    """Raw files of the table not judged by it yet (all of them when ``full``)."""
    staged = "" if full else (f" AND file_sha256 NOT IN (SELECT file_sha256 FROM "
                              f"{STAGED_FILES.name} WHERE table_name = $t)")
    return [r[0] for r in con.execute(
        f"SELECT file_sha256 FROM {LOADED_FILES.name} WHERE table_name = $t{staged} "
        "ORDER BY loaded_at", {"t": d.name}).fetchall()]


def _dirty_rows(con: duckdb.DuckDBPyConnection, d: Definition, raw: str, new_files: list[str],
                seen: dict[str, int]) -> None:
    """``_crm_dirty``: the raw rows (by lineage) to judge before the other versions of their
    keys are added."""
    parts = [f"SELECT {', '.join(LINEAGE)} FROM {raw} WHERE list_contains($new, _file_sha256)"]
    params: dict = {"new": new_files}
    changed_refs = [ref for ref, last in seen.items()
                    if last > watermark(con, d.table, ref)]
    changed_keys = []
    for column, ref in d.references.items():
        if ref not in changed_refs:
            continue
        (ref_key,) = built_grain(con, ref)
        keys = (f"SELECT {identifier(ref_key)} AS key FROM {ref} "
                f"WHERE _batch > {int(watermark(con, d.table, ref))}")
        parts.append(f"SELECT s._file_sha256, s._row_number FROM {d.table} s "
                     f"WHERE s.{identifier(column)} IN ({keys})")
        changed_keys.append(f"SELECT {literal(column + '=')} || key AS k FROM ({keys})")
    if changed_keys:  # a key it named may have arrived: judge those rejected rows again
        parts.append(
            f"SELECT _file_sha256, _row_number FROM (SELECT _file_sha256, _row_number, "
            f"unnest(coalesce(reference_keys, [NULL])) AS k FROM {REJECTS.name} "
            "WHERE table_name = $name AND reason NOT LIKE 'superseded:%' "
            f"AND (reference_keys IS NULL OR len(reference_keys) > 0)) "
            f"WHERE k IS NULL OR k IN ({' UNION ALL '.join(changed_keys)})")
        params["name"] = d.name
    con.execute(f"CREATE OR REPLACE TEMP TABLE _crm_dirty AS {' UNION '.join(parts)}", params)


def _judge(con: duckdb.DuckDBPyConnection, d: Definition, raw: str) -> int:
    """``_crm_judged``: the file's query over the dirty rows, then over every other version of
    the keys they carry (kept in this table, or rejected with that key); ``_crm_rows``: the raw
    rows of all of them. Rows judged."""
    query = read_instead(con, d.body, raw, "_crm_rows")
    rows_of = rows_by_rowid(raw, f"SELECT r.rowid FROM {raw} r SEMI JOIN {{lineage}} l "
                                 "ON r._file_sha256 = l._file_sha256 "
                                 "AND r._row_number = l._row_number")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _crm_rows AS {rows_of.format(lineage='_crm_dirty')}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _crm_judged AS {query}\n")
    same_key = " AND ".join(f"s.{identifier(k)} = j.{identifier(k)}" for k in d.grain)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _crm_more AS
        SELECT s._file_sha256, s._row_number FROM {d.table} s
        SEMI JOIN _crm_judged j ON {same_key}
        UNION
        SELECT _file_sha256, _row_number FROM {REJECTS.name}
        WHERE table_name = ? AND grain_key IN (SELECT {grain_key_sql(d)} FROM _crm_judged)
        EXCEPT
        SELECT _file_sha256, _row_number FROM _crm_dirty""", [d.name])
    if con.execute("SELECT count(*) FROM _crm_more").fetchone()[0]:
        con.execute("DROP TABLE IF EXISTS _crm_rows_dirty")
        con.execute("ALTER TABLE _crm_rows RENAME TO _crm_rows_dirty")
        con.execute(f"CREATE TEMP TABLE _crm_rows AS {rows_of.format(lineage='_crm_more')}")
        con.execute(f"INSERT INTO _crm_judged {query}\n")
        # _crm_rows then holds the raw row of every judged row: the rejects take theirs from it
        con.execute("INSERT INTO _crm_rows SELECT * FROM _crm_rows_dirty")
        con.execute("DROP TABLE _crm_rows_dirty")
    con.execute("DROP TABLE _crm_more")
    return int(con.execute("SELECT count(*) FROM _crm_judged").fetchone()[0])


def _building(d: Definition) -> str:
    """Where a full refresh writes ``staging.<name>`` before it replaces it: a name no reader
    uses (:mod:`~crm_assets.serving.snapshot` skips ``_crm_`` tables)."""
    return f"staging.{identifier('_crm_building_' + d.name)}"


def _all_judged(d: Definition, batch: int) -> str:
    """The staging query over all of raw, in the table's columns plus ``_problem``."""
    columns = ", ".join(f"CAST({identifier(n)} AS {t}) AS {identifier(n)}"
                        for n, t in d.published_schema if n != "_batch")
    return (f"SELECT {columns}, CAST({batch} AS BIGINT) AS _batch, _problem "
            f"FROM ({d.body}\n)")


def _replace_all(con: duckdb.DuckDBPyConnection, d: Definition, raw: str, building: str
                 ) -> tuple[int, int]:
    """A first build or full refresh: ``building`` (every raw row judged, written by the staging
    query as bare as it can be) loses its rejected rows to the rejects and its ``_problem``
    column (both cheap in DuckDB), and becomes the table. Rows judged, and rows kept.
    """
    judged = int(con.execute(f"SELECT count(*) FROM {building}").fetchone()[0])
    _contest(con, d, building)
    con.execute(f"DELETE FROM {REJECTS.name} WHERE table_name = ?", [d.name])
    problems = f"(SELECT * EXCLUDE (_batch) FROM {building} WHERE _problem IS NOT NULL)"
    _insert_rejects(con, d, raw, _ranked(problems))
    con.execute(f"""DELETE FROM {building} t WHERE _problem IS NOT NULL OR EXISTS (
        SELECT 1 FROM _crm_contested c WHERE c._reject_reason IS NOT NULL
            AND c._file_sha256 = t._file_sha256 AND c._row_number = t._row_number)""")
    con.execute(f"ALTER TABLE {building} DROP COLUMN _problem")
    con.execute(f"DROP TABLE IF EXISTS {d.table}")
    con.execute(f"ALTER TABLE {building} RENAME TO {identifier(d.table.split('.', 1)[1])}")
    return judged, int(con.execute(f"SELECT count(*) FROM {d.table}").fetchone()[0])


def _replace(con: duckdb.DuckDBPyConnection, d: Definition, batch: int) -> int:
    """The judged rows replace what the table and the rejects held for them; keys written.

    Runs in the run's transaction: the rows the table held for them are found once, with their
    rowids, and deleted by those rowids; the rejects take their raw rows from ``_crm_rows``
    (:func:`_judge`). So this step reads the table once and raw not at all, whatever the night
    brought (it read each of them once more before)."""
    kept = ", ".join(identifier(n) for n, _ in d.published_schema if n != "_batch")
    ranked = _ranked("_crm_judged")
    # Rows judged again exactly as before keep their batch: what reads the table has nothing new
    # to take in from them (a customer's new version leaves their orders be).
    judged_before = rows_by_rowid(
        d.table, f"SELECT t.rowid FROM {d.table} t SEMI JOIN _crm_judged j ON "
                 "j._file_sha256 = t._file_sha256 AND j._row_number = t._row_number",
        f"rowid AS _crm_rowid, {kept}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _crm_before AS {judged_before}")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _crm_same AS
        SELECT {kept} FROM _crm_before
        INTERSECT
        SELECT {kept} FROM {ranked} WHERE _reject_reason IS NULL""")
    # by the rowids found above, in this transaction: the table is not read again
    con.execute(f"DELETE FROM {d.table} WHERE rowid IN (SELECT _crm_rowid FROM _crm_before b "
                "WHERE NOT EXISTS (SELECT 1 FROM _crm_same j WHERE "
                "j._file_sha256 = b._file_sha256 AND j._row_number = b._row_number))")
    con.execute(f"DELETE FROM {REJECTS.name} t WHERE table_name = ? AND EXISTS (SELECT 1 "
                "FROM _crm_judged j WHERE j._file_sha256 = t._file_sha256 AND "
                "j._row_number = t._row_number)", [d.name])
    written = con.execute(
        f"INSERT INTO {d.table} ({kept}, _batch) SELECT {kept}, {batch} FROM {ranked} j "
        "WHERE _reject_reason IS NULL AND NOT EXISTS (SELECT 1 FROM _crm_same s WHERE "
        "s._file_sha256 = j._file_sha256 AND s._row_number = j._row_number)").fetchone()[0]
    _insert_rejects(con, d, "_crm_rows", ranked)
    return int(written)


def _insert_rejects(con: duckdb.DuckDBPyConnection, d: Definition, raw: str, ranked: str
                    ) -> None:
    """The rows of ``ranked`` with a ``_reject_reason`` into the rejects, each with its raw row
    from ``raw`` (the raw table, or a temporary table holding at least those rows).

    The raw row by a join, not a correlated subquery: DuckDB then builds the hash table on the
    few rejects and turns only matched raw rows into JSON (5x faster at 8M orders).
    """
    con.execute(
        f"""INSERT INTO {REJECTS.name} (table_name, _source_file, _file_sha256, _row_number,
                                        reason, raw_row, rejected_at, grain_key,
                                        reference_keys)
            SELECT ?, s._source_file, s._file_sha256, s._row_number, s._reject_reason,
                   to_json(r), now(), {grain_key_sql(d, 's')}, {reference_keys_sql(d, 's')}
            FROM {ranked} s LEFT JOIN {raw} r
                ON r._file_sha256 = s._file_sha256 AND r._row_number = s._row_number
            WHERE s._reject_reason IS NOT NULL""", [d.name])
