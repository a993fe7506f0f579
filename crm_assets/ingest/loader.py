"""Landing source files into the append-only ``raw`` layer, each file once.

A file's sha256 is recorded in ``meta.loaded_files`` in the same transaction as its rows, so a
re-run, a crash half-way or the same bytes under another name never duplicate anything, and a
refused file leaves nothing behind: a run sets it aside (:func:`set_aside`) and goes on. Which
files (:mod:`~crm_assets.ingest.files`), how they are read (:mod:`~crm_assets.ingest.reader`) and
what is refused (:mod:`~crm_assets.ingest.encoding`) are decided elsewhere; this module appends.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from crm_assets.ingest.contracts import SOURCES, SourceFileError, SourceTable, raw_ddl
from crm_assets.ingest.files import SourceFile, file_sha256, source_files
from crm_assets.ingest.reader import SourceReader
from crm_assets.quoting import identifier
from crm_assets.warehouse.connection import table_exists, transaction
from crm_assets.warehouse.suppression import drop_suppressed
from crm_assets.warehouse.tables import DUPLICATE_FILES, LOADED_FILES, REFUSED_FILES

REFUSED_FOLDER = "_refused"
"""Where a refused file is moved, beside it (``orders.csv`` -> ``_refused/orders.csv``, with
``_refused/orders.csv.reason.txt``); no source table reads that folder."""


@dataclass(frozen=True)
class LoadResult:
    """What loading one file did: rows appended (0 if skipped as already loaded) and findings."""

    table: str
    source_file: str
    rows: int
    skipped: bool
    parse_errors: int = 0
    ignored_columns: tuple[str, ...] = ()
    encoding: str = ""
    delimiter: str = ""


@dataclass(frozen=True)
class Refused:
    """A file refused whole: why (naming file, line and column), and where it was moved."""

    source_file: str
    reason: str
    set_aside_to: Path | None = None
    """``None``: left in place (not asked to move it, or it could not be moved)."""


@dataclass
class SourceLoad:
    """Every file of one table in one run: loaded or skipped, and the ones refused (with why)."""

    table: str
    results: list[LoadResult] = field(default_factory=list)
    refused_files: list[Refused] = field(default_factory=list)

    @property
    def refused(self) -> list[str]:
        """Why each refused file was refused."""
        return [r.reason for r in self.refused_files]

    @property
    def loaded(self) -> list[LoadResult]:
        return [r for r in self.results if not r.skipped]


def load_source_file(con: duckdb.DuckDBPyConnection, source: SourceTable, path: Path,
                     *, name: str | None = None, run_id: str | None = None,
                     loaded_at: datetime | None = None,
                     suppression_key: Path | None = None) -> LoadResult:
    """Append one file to ``raw.<source>`` unless a file with the same bytes was loaded before.

    All or nothing: the rows and the ``meta.loaded_files`` entry commit in one transaction.

    Args:
        name: what ``_source_file`` records (default: the file name), e.g. ``orders/2026-07.csv``.
        loaded_at: the ``_loaded_at`` instant (default: now); freshness is measured from it.
        suppression_key: the file of the key erased people's hashes were made with; rows of
            erased people are dropped in the file's transaction
            (:mod:`~crm_assets.warehouse.suppression`).

    Raises:
        SourceFileError: the file is refused (nothing of it was loaded).
    """
    name = name or path.name
    stat = path.stat()
    sha = file_sha256(path)
    already = con.execute(
        "SELECT count(*) FROM meta.loaded_files WHERE table_name = ? AND file_sha256 = ?",
        [source.name, sha]).fetchone()[0]
    if already:
        # Bytes loaded before. Remember this name's size and modification time, so the next run
        # skips the file without reading it again: under the name they were loaded as (copied
        # back, or synced by a tool that does not keep times), in meta.loaded_files; under
        # another name (a dated export and its "latest" copy), in meta.duplicate_files.
        with transaction(con):
            same_name = con.execute(
                f"UPDATE {LOADED_FILES.name} SET file_size = ?, file_mtime_ns = ? "
                "WHERE table_name = ? AND file_sha256 = ? AND source_file = ?",
                [stat.st_size, stat.st_mtime_ns, source.name, sha, name]).fetchone()[0]
            if not same_name:
                con.execute(f"DELETE FROM {DUPLICATE_FILES.name} "
                            "WHERE table_name = ? AND source_file = ?", [source.name, name])
                con.execute(f"INSERT INTO {DUPLICATE_FILES.name} VALUES (?, ?, ?, ?, ?, now(), ?)",
                            [source.name, name, sha, stat.st_size, stat.st_mtime_ns, run_id])
        return LoadResult(source.name, name, 0, skipped=True)
    loaded_at = loaded_at or datetime.now(UTC)
    con.execute(raw_ddl(source))
    select_cols = ", ".join(identifier(c) for c in source.column_names)
    with path.open("rb") as fh:
        read = SourceReader(fh, stat.st_size, source, path)  # refuses a bad header or encoding
        # one INSERT over the file's blocks as Arrow reads them: DuckDB pulls the next block when
        # it has written the last, so memory does not grow with the file
        con.register("_incoming", pa.RecordBatchReader.from_batches(read.schema, read.batches()))
        try:
            with transaction(con):
                try:
                    con.execute(
                        f"INSERT INTO raw.{identifier(source.name)} SELECT {select_cols}, "
                        "_parse_error, ?, ?, _row_number, ? FROM _incoming",
                        [name, sha, loaded_at])
                except duckdb.Error:
                    if read.failure is not None:  # DuckDB reports it as its own error
                        raise read.failure from None
                    raise
                suppressed = drop_suppressed(con, source.name, sha, suppression_key)
                con.execute(
                    f"INSERT INTO {LOADED_FILES.name} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [source.name, name, sha, read.rows, loaded_at, run_id, stat.st_size,
                     stat.st_mtime_ns, suppressed])
                con.execute(f"DELETE FROM {DUPLICATE_FILES.name} "  # new bytes under its name
                            "WHERE table_name = ? AND source_file = ?", [source.name, name])
        finally:
            con.unregister("_incoming")
    return LoadResult(source.name, name, read.rows, skipped=False,
                      parse_errors=read.parse_errors, ignored_columns=read.ignored_columns,
                      encoding=read.encoding, delimiter=read.delimiter)


def set_aside(con: duckdb.DuckDBPyConnection, f: SourceFile, reason: str,
              run_id: str | None) -> Refused:
    """Move a refused file to the ``_refused/`` folder beside it, its reason in a text file next
    to it, and record both in ``meta.refused_files``, so that the run goes on and the next one
    does not meet it again. Fixed bytes dropped later under any name load as any new file.

    The move is a rename on the same file system (atomic); a file that cannot be moved (a
    read-only folder) stays where it is, is recorded so, and is refused again by the next run.
    """
    sha = file_sha256(f.path)
    folder = f.path.parent / REFUSED_FOLDER
    moved: Path | None = folder / f.path.name
    try:
        folder.mkdir(exist_ok=True)
        (folder / f"{f.path.name}.reason.txt").write_text(reason + "\n", encoding="utf-8")
        os.replace(f.path, moved)
    except OSError as err:
        reason = f"{reason} (could not be moved aside: {err})"
        moved = None
    con.execute(f"INSERT INTO {REFUSED_FILES.name} VALUES (?, ?, ?, ?, now(), ?, ?)",
                [f.table, f.name, sha, reason, run_id, None if moved is None else str(moved)])
    return Refused(f.name, reason, moved)


def load_source(con: duckdb.DuckDBPyConnection, table: str, input_dir: Path,
                *, landing_dir: Path | None = None, run_id: str | None = None,
                files: Iterable[SourceFile] | None = None,
                set_refused_aside: bool = False,
                suppression_key: Path | None = None) -> SourceLoad:
    """Load every not-yet-loaded file of ``table``, each in its own transaction.

    A file recorded under the same name with the same size and modification time (loaded, or
    found to repeat bytes loaded under another name) is skipped without being read (a night does
    not hash the input folder's history again); any other file is hashed, and skipped if those
    bytes were loaded before.

    A refused file does not stop the others: the good ones load, the refused ones are listed in
    :attr:`SourceLoad.refused_files`, and stay in place unless ``set_refused_aside``
    (:func:`set_aside`, what a run does).
    A table with no file stays an empty table, unless it is required and has never been loaded.

    Raises:
        SourceFileError: a required table has no file at all and nothing loaded before.
    """
    source = SOURCES[table]
    con.execute(raw_ddl(source))
    files = list(source_files(input_dir, table, landing_dir) if files is None else files)
    if not files and source.required:
        before = con.execute("SELECT count(*) FROM meta.loaded_files WHERE table_name = ?",
                             [table]).fetchone()[0]
        if not before:
            raise SourceFileError(f"{input_dir / (table + '.csv')}: required source table "
                                  f"'{table}' has no file")
    out = SourceLoad(table)
    seen = {(r[0], r[1], r[2]) for r in con.execute(
        f"SELECT source_file, file_size, file_mtime_ns FROM {LOADED_FILES.name} "
        f"WHERE table_name = $t UNION ALL SELECT source_file, file_size, file_mtime_ns "
        f"FROM {DUPLICATE_FILES.name} WHERE table_name = $t", {"t": table}).fetchall()}
    for f in files:
        stat = f.path.stat()
        if (f.name, stat.st_size, stat.st_mtime_ns) in seen:  # loaded as is: not read again
            out.results.append(LoadResult(source.name, f.name, 0, skipped=True))
            continue
        try:
            out.results.append(load_source_file(con, source, f.path, name=f.name, run_id=run_id,
                                                suppression_key=suppression_key))
        except SourceFileError as err:
            out.refused_files.append(set_aside(con, f, str(err), run_id) if set_refused_aside
                                     else Refused(f.name, str(err)))
    return out


def load_all_sources(con: duckdb.DuckDBPyConnection, input_dir: Path,
                     *, landing_dir: Path | None = None, run_id: str | None = None
                     ) -> dict[str, SourceLoad]:
    """:func:`load_source` for every table of the contract, outside Dagster (tests, benchmarks).

    Raises:
        SourceFileError: a required table has no file (refused files are in the results).
    """
    return {table: load_source(con, table, input_dir, landing_dir=landing_dir, run_id=run_id)
            for table in SOURCES}


def refused_awaiting(con: duckdb.DuckDBPyConnection, table: str, run_id: str | None
                     ) -> list[Refused]:
    """Refused files of ``table`` still waiting for a person: set aside and still in their
    ``_refused/`` folder, with no file of the same name loaded since (a fixed copy dropped under
    the same name resolves it, as does deleting the set-aside copy); a file that could not be
    moved, when this run refused it."""
    if not table_exists(con, REFUSED_FILES.name):  # a warehouse older than the table, read-only
        return []
    rows = con.execute(
        f"""SELECT r.source_file, r.reason, r.set_aside_to, r.run_id FROM {REFUSED_FILES.name} r
            WHERE r.table_name = $t
              AND r.refused_at = (SELECT max(refused_at) FROM {REFUSED_FILES.name} x
                                  WHERE x.table_name = $t AND x.source_file = r.source_file)
              AND NOT EXISTS (SELECT 1 FROM {LOADED_FILES.name} l WHERE l.table_name = $t
                              AND l.source_file = r.source_file AND l.loaded_at > r.refused_at)
            ORDER BY r.refused_at, r.source_file""", {"t": table}).fetchall()
    return [Refused(name, reason, None if moved is None else Path(moved))
            for name, reason, moved, by in rows
            if (moved is not None and Path(moved).exists()) or (moved is None and by == run_id)]
