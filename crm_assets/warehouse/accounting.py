"""Every raw row accounted for: in ``staging.<table>`` or in ``staging.rejects``, exactly once.

Every raw row, identified by ``(_file_sha256, _row_number)``, must appear exactly once in
``staging.<table>`` or in ``staging.rejects``: none missing (silently dropped), none twice (fanned
out by a join, or both staged and rejected), none unknown (a staged row that no raw row explains).
The blocking check ``every_raw_row_accounted_for`` (:mod:`crm_assets.defs.checks`) evaluates it
right after each staging table is rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from crm_assets.quoting import identifier


@dataclass(frozen=True)
class Accounting:
    """Where the rows of ``raw.<table>`` went. ``ok`` iff nothing is missing, twice or unknown."""

    table: str
    raw_rows: int
    staged_rows: int
    rejected_rows: int
    missing_rows: int
    duplicated_rows: int
    unknown_rows: int
    examples: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.missing_rows or self.duplicated_rows or self.unknown_rows)


def account_rows(con: duckdb.DuckDBPyConnection, table: str, examples: int = 5,
                 only: str | None = None) -> Accounting:
    """Match every row of ``raw.<table>`` with its rows in ``staging.<table>`` + rejects.

    First, per raw file, the count and a multiset hash (the sum of the 64-bit hashes of the row
    numbers) of raw are compared with those of the table and the rejects together
    (:func:`_fingerprints_match`): equal, every raw row is there exactly once, short of a 64-bit
    hash collision, for the price of one scan of two columns. Otherwise, to say what is wrong,
    one full outer join of per-key counts (two hash aggregates) finds the rows.
    ``duplicated_rows`` counts the extra appearances (a key seen 3 times counts 2), also of a key
    repeated in raw itself, which ``meta.loaded_files`` should make impossible.

    Args:
        examples: how many offending keys (``file#row: problem``) to describe at most.
        only: a table of the lineage (``_file_sha256``, ``_row_number``) a night touched: only
            those rows are matched (the others did not move), and the three tables' row counts
            must still add up.
    """
    if only is None and _fingerprints_match(con, table):
        raw_rows, staged, rejected = con.execute(
            f"""SELECT (SELECT count(*) FROM raw.{identifier(table)}),
                       (SELECT count(*) FROM staging.{identifier(table)}),
                       (SELECT count(*) FROM staging.rejects WHERE table_name = $table)""",
            {"table": table}).fetchone()
        return Accounting(table, int(raw_rows), int(staged), int(rejected), 0, 0, 0)
    touched = "" if only is None else (
        f" SEMI JOIN {only} x ON x._file_sha256 = t._file_sha256 "
        "AND x._row_number = t._row_number")
    outputs = f"""
        SELECT _file_sha256 AS sha, _row_number AS rn FROM staging.{identifier(table)} t{touched}
        UNION ALL
        SELECT _file_sha256, _row_number FROM staging.rejects t{touched}
        WHERE table_name = $table"""
    keyed = f"""
        WITH r AS (SELECT _file_sha256 AS sha, _row_number AS rn, any_value(_source_file) AS file,
                          count(*) AS n_raw
                   FROM raw.{identifier(table)} t{touched} GROUP BY ALL),
             o AS (SELECT sha, rn, count(*) AS n_out FROM ({outputs}) GROUP BY ALL)
        SELECT * FROM r FULL OUTER JOIN o USING (sha, rn)"""
    params = {"table": table}
    missing, duplicated, unknown, raw_rows = con.execute(
        f"""SELECT count(*) FILTER (WHERE n_out IS NULL),
                   coalesce(sum(coalesce(n_out, 0) + coalesce(n_raw, 0) - 2)
                            FILTER (WHERE n_out + n_raw > 2), 0),
                   count(*) FILTER (WHERE n_raw IS NULL),
                   coalesce(sum(n_raw), 0)
            FROM ({keyed})""", params).fetchone()
    staged = con.execute(f'SELECT count(*) FROM staging.{identifier(table)}').fetchone()[0]
    rejected = con.execute("SELECT count(*) FROM staging.rejects WHERE table_name = $table",
                           params).fetchone()[0]
    if only is not None:  # the rows not touched are as the last full check left them
        raw_rows = con.execute(f"SELECT count(*) FROM raw.{identifier(table)}").fetchone()[0]
        if raw_rows != staged + rejected:
            missing = max(missing, raw_rows - staged - rejected)
            duplicated = max(duplicated, staged + rejected - raw_rows)
    found: tuple[str, ...] = ()
    if missing or duplicated or unknown:
        found = tuple(r[0] for r in con.execute(
            f"""SELECT coalesce(file, 'sha256 ' || left(sha, 12)) || '#' || coalesce(rn::VARCHAR,
                       'NULL') || ': ' || CASE WHEN n_out IS NULL THEN 'missing'
                                               WHEN n_raw IS NULL THEN 'not in raw'
                                               ELSE 'appears ' || (n_out + n_raw - 1) || ' times'
                                          END
                FROM ({keyed}) WHERE n_out IS NULL OR n_raw IS NULL OR n_out + n_raw > 2
                ORDER BY file, rn LIMIT {int(examples)}""", params).fetchall())
    return Accounting(table, int(raw_rows), int(staged), int(rejected), int(missing),
                      int(duplicated), int(unknown), found)


def _fingerprints_match(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether each raw file's rows and the table's plus the rejects' rows of that file have the
    same count and the same sum of ``hash(_row_number)``: the same multiset of rows, unless 64-bit
    hashes collide. Grouping by a file's hash, one value per file, costs a fraction of a second
    at 15M rows, where matching rows one by one takes ten."""
    per_file = ("SELECT _file_sha256 AS sha, count(*) AS n, "
                "sum(hash(_row_number)::HUGEINT) AS h FROM {} GROUP BY ALL")
    (mismatched,) = con.execute(
        f"""WITH r AS ({per_file.format(f"raw.{identifier(table)}")}),
                 o AS (SELECT sha, sum(n) AS n, sum(h) AS h FROM (
                           {per_file.format(f"staging.{identifier(table)}")}
                           UNION ALL
                           {per_file.format("staging.rejects WHERE table_name = $table")})
                       GROUP BY ALL)
            SELECT count(*) FROM r FULL OUTER JOIN o USING (sha)
            WHERE r.n IS DISTINCT FROM o.n OR r.h IS DISTINCT FROM o.h""",
        {"table": table}).fetchone()
    return mismatched == 0


@dataclass(frozen=True)
class RejectRate:
    """Of the raw rows a run staged for the first time, how many were rejected, and why."""

    table: str
    new_rows: int
    rejected_rows: int
    reasons: tuple[tuple[str, int], ...]
    """The commonest kinds of reason (the text before the first ':'), with their counts."""

    @property
    def rate(self) -> float:
        return self.rejected_rows / self.new_rows if self.new_rows else 0.0


def reject_rate(con: duckdb.DuckDBPyConnection, table: str, run_id: str,
                top: int = 5) -> RejectRate:
    """The rows of the raw files run ``run_id`` judged into ``staging.<table>`` for the first
    time (``meta.staged_files``; every file on a full build), and those of them rejected for a
    problem. A version superseded by a later one is not a problem: it is not counted.

    Cheap on a night: the new files' row counts are in ``meta.loaded_files``, and only the
    rejects of those files are read.
    """
    params = {"table": table, "run": run_id}
    files = ("SELECT file_sha256 FROM meta.staged_files "
             "WHERE table_name = $table AND run_id = $run")
    new_rows = con.execute(
        f"SELECT coalesce(sum(row_count), 0) FROM meta.loaded_files "
        f"WHERE table_name = $table AND file_sha256 IN ({files})", params).fetchone()[0]
    kinds = con.execute(
        f"""SELECT split_part(reason, ':', 1) AS kind, count(*) AS n FROM staging.rejects
            WHERE table_name = $table AND _file_sha256 IN ({files})
              AND reason NOT LIKE 'superseded:%'
            GROUP BY kind ORDER BY n DESC, kind""", params).fetchall()
    return RejectRate(table, int(new_rows), sum(int(n) for _, n in kinds),
                      tuple((kind, int(n)) for kind, n in kinds[:top]))
