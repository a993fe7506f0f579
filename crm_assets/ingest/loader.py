"""Landing source files into the append-only ``raw`` layer, each file once.

A file's sha256 is recorded in ``meta.loaded_files`` in the same transaction as its rows, so a
re-run, a crash half-way or the same bytes under another name never duplicate anything, and a
refused file leaves nothing behind. Which files (:mod:`~crm_assets.ingest.files`), how they are read
(:mod:`~crm_assets.ingest.reader`) and what is refused (:mod:`~crm_assets.ingest.encoding`) are
decided elsewhere; this module appends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from crm_assets.ingest.contracts import SOURCES, SourceFileError, SourceTable, raw_ddl
from crm_assets.ingest.files import SourceFile, file_sha256, source_files
from crm_assets.ingest.reader import read_source_file
from crm_assets.quoting import identifier
from crm_assets.warehouse.connection import transaction
from crm_assets.warehouse.tables import LOADED_FILES


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


@dataclass
class SourceLoad:
    """Every file of one table in one run: loaded or skipped, and the ones refused (with why)."""

    table: str
    results: list[LoadResult] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def loaded(self) -> list[LoadResult]:
        return [r for r in self.results if not r.skipped]


def load_source_file(con: duckdb.DuckDBPyConnection, source: SourceTable, path: Path,
                     *, name: str | None = None, run_id: str | None = None,
                     loaded_at: datetime | None = None) -> LoadResult:
    """Append one file to ``raw.<source>`` unless a file with the same bytes was loaded before.

    All or nothing: the rows and the ``meta.loaded_files`` entry commit in one transaction.

    Args:
        name: what ``_source_file`` records (default: the file name), e.g. ``orders/2026-07.csv``.
        loaded_at: the ``_loaded_at`` instant (default: now); freshness is measured from it.

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
        return LoadResult(source.name, name, 0, skipped=True)
    read = read_source_file(path, source)
    loaded_at = loaded_at or datetime.now(UTC)
    con.execute(raw_ddl(source))
    select_cols = ", ".join(identifier(c) for c in source.column_names)
    with transaction(con):
        con.register("_incoming", read.rows)
        try:
            con.execute(
                f"INSERT INTO raw.{identifier(source.name)} SELECT {select_cols}, _parse_error, "
                "?, ?, _row_number, ? FROM _incoming",
                [name, sha, loaded_at])
        finally:
            con.unregister("_incoming")
        con.execute(f"INSERT INTO {LOADED_FILES.name} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [source.name, name, sha, read.rows.num_rows, loaded_at, run_id,
                     stat.st_size, stat.st_mtime_ns])
    return LoadResult(source.name, name, read.rows.num_rows, skipped=False,
                      parse_errors=read.parse_errors, ignored_columns=read.ignored_columns,
                      encoding=read.encoding, delimiter=read.delimiter)


def load_source(con: duckdb.DuckDBPyConnection, table: str, input_dir: Path,
                *, landing_dir: Path | None = None, run_id: str | None = None,
                files: Iterable[SourceFile] | None = None) -> SourceLoad:
    """Load every not-yet-loaded file of ``table``, each in its own transaction.

    A file recorded under the same name with the same size and modification time is skipped
    without being read (a night does not hash the input folder's history again); any other file
    is hashed, and skipped if those bytes were loaded before.

    A refused file does not stop the others: the good ones load, the refused ones are listed in
    :attr:`SourceLoad.refused` (the caller decides to fail) and stay in place for a fixed copy.
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
        "WHERE table_name = ?", [table]).fetchall()}
    for f in files:
        stat = f.path.stat()
        if (f.name, stat.st_size, stat.st_mtime_ns) in seen:  # loaded as is: not read again
            out.results.append(LoadResult(source.name, f.name, 0, skipped=True))
            continue
        try:
            out.results.append(load_source_file(con, source, f.path, name=f.name, run_id=run_id))
        except SourceFileError as err:
            out.refused.append(str(err))
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
