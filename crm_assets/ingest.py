"""Landing source files into the append-only ``raw`` layer.

A source table ``<name>`` is fed by ``<input>/<name>.csv`` and by any ``<input>/<name>/*.csv``
(increments dropped later). Each file is loaded at most once: its sha256 is recorded in
``meta.loaded_files`` in the same transaction as its rows, so a re-run, a crash half-way or the same
file under another name never duplicates anything.

Reading is done by Arrow's CSV reader (multi-line quoted fields, any Python codec), never by a
Python loop over rows. Values are kept as text; staging judges them. A file whose header lacks a
required column is refused whole with a message naming the file and the column; a record with the
wrong number of fields is kept in raw with its fields null and the problem in ``_parse_error``, so
staging sends it to ``staging.rejects`` and no row of the file is lost or silently dropped.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from crm_assets.contracts import LINEAGE_COLUMNS, SOURCES, SourceTable
from crm_assets.warehouse import transaction

RAW_EXTRA_COLUMNS: dict[str, str] = {"_parse_error": "VARCHAR"}
"""A raw row that could not be split into the contract's columns says why here (else NULL)."""


class SourceFileError(ValueError):
    """A file that breaks the input contract; the message names the file, line and column."""


@dataclass(frozen=True)
class LoadResult:
    table: str
    source_file: str
    rows: int
    skipped: bool
    parse_errors: int = 0
    ignored_columns: tuple[str, ...] = ()


def raw_schema(source: SourceTable) -> list[tuple[str, str]]:
    """The columns of ``raw.<source>``: contract columns as text, parse errors, then lineage."""
    return ([(c.name, "VARCHAR") for c in source.columns] + list(RAW_EXTRA_COLUMNS.items())
            + list(LINEAGE_COLUMNS.items()))


def raw_ddl(source: SourceTable) -> str:
    cols = ", ".join(f'"{name}" {type_}' for name, type_ in raw_schema(source))
    return f'CREATE TABLE IF NOT EXISTS raw."{source.name}" ({cols})'


def source_files(input_dir: Path, table: str) -> list[Path]:
    """The files feeding ``table``, in a stable order (name order; increments after the base)."""
    files = []
    base = input_dir / f"{table}.csv"
    if base.is_file():
        files.append(base)
    folder = input_dir / table
    if folder.is_dir():
        files.extend(sorted(p for p in folder.glob("*.csv") if p.is_file()))
    return files


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sniff_encoding(sample: bytes) -> str:
    """UTF-8 (with or without BOM) when the bytes decode as such, else Windows-1251.

    Russian CRM exports are either UTF-8 or cp1251; a cp1251 Cyrillic text is practically never valid
    UTF-8, so a strict UTF-8 decode of the first megabyte decides. A sample cut in the middle of a
    multi-byte character is tolerated by ignoring an incomplete tail.
    """
    if sample.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as err:
        if err.start >= len(sample) - 3 and err.reason == "unexpected end of data":
            return "utf-8"
        return "cp1251"


def sniff_delimiter(header_line: str) -> str:
    """The delimiter of the header: the most frequent of ``,``, ``;``, tab and ``|``."""
    counts = {d: header_line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def read_source_file(path: Path, source: SourceTable) -> tuple[pa.Table, int, list[str]]:
    """Read ``path`` as text columns in the contract's order.

    Returns:
        (table with every contract column and ``_parse_error`` and ``_row_number``,
         number of malformed records, header columns the contract does not know).

    Raises:
        SourceFileError: empty file, undecodable bytes, or a header lacking a required column.
    """
    with path.open("rb") as fh:
        sample = fh.read(1 << 20)
    if not sample.strip():
        raise SourceFileError(f"{path}: line 1: file is empty (expected a header row)")
    encoding = sniff_encoding(sample)
    text_sample = sample.decode(encoding, errors="ignore")
    header_line = text_sample.splitlines()[0] if text_sample else ""
    delimiter = sniff_delimiter(header_line)
    header = next(csv.reader(io.StringIO(header_line), delimiter=delimiter), [])
    names = [h.strip().lstrip("\ufeff").lower() for h in header]
    seen: set[str] = set()
    for i, name in enumerate(names, start=1):
        if not name:
            raise SourceFileError(f"{path}: line 1, column {i}: empty column name in the header")
        if name in seen:
            raise SourceFileError(f"{path}: line 1, column {i}: column '{name}' appears twice")
        seen.add(name)
    missing = [c for c in source.required_columns if c not in seen]
    if missing:
        raise SourceFileError(
            f"{path}: line 1: missing required column(s) {', '.join(repr(m) for m in missing)} "
            f"of table '{source.name}' (header has: {', '.join(names)})")
    ignored = [n for n in names if n not in source.column_names]

    bad: list[tuple[int, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad.append((row.number, f"line {row.number}: expected {row.expected_columns} fields, "
                                f"found {row.actual_columns}: {row.text[:200]}"))
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(encoding=encoding, use_threads=False,
                                           column_names=names, skip_rows=1,
                                           block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                             invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                 strings_can_be_null=True,
                                                 quoted_strings_can_be_null=True),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as err:
        raise SourceFileError(f"{path}: cannot be read as {encoding} CSV: {err}") from err

    # Record numbers (1 = first data record) of the good rows: all records minus the malformed.
    total = table.num_rows + len(bad)
    bad_numbers = np.array(sorted(n - 1 for n, _ in bad), dtype=np.int64)
    good_numbers = np.setdiff1d(np.arange(1, total + 1, dtype=np.int64), bad_numbers)
    columns = {}
    for col in source.column_names:
        columns[col] = table.column(col) if col in table.column_names else pa.nulls(
            table.num_rows, pa.string())
    good = pa.table({**columns, "_parse_error": pa.nulls(table.num_rows, pa.string()),
                     "_row_number": pa.array(good_numbers)})
    if bad:
        rejected = pa.table({
            **{c: pa.nulls(len(bad), pa.string()) for c in source.column_names},
            "_parse_error": pa.array([msg for _, msg in sorted(bad)], pa.string()),
            "_row_number": pa.array(bad_numbers),
        })
        good = pa.concat_tables([good, rejected])
    return good, len(bad), ignored


def load_source_file(con: duckdb.DuckDBPyConnection, source: SourceTable, path: Path,
                     *, name: str | None = None, run_id: str | None = None,
                     loaded_at: datetime | None = None) -> LoadResult:
    """Append one file to ``raw.<source>`` unless a file with the same bytes was loaded before.

    ``name`` is what ``_source_file`` records (default: the file name), e.g. ``orders/2026-07.csv``.
    """
    name = name or path.name
    sha = file_sha256(path)
    already = con.execute(
        "SELECT count(*) FROM meta.loaded_files WHERE table_name = ? AND file_sha256 = ?",
        [source.name, sha]).fetchone()[0]
    if already:
        return LoadResult(source.name, str(path), 0, skipped=True)
    rows, parse_errors, ignored = read_source_file(path, source)
    loaded_at = loaded_at or datetime.now(timezone.utc)
    con.execute(raw_ddl(source))
    select_cols = ", ".join(f'"{c}"' for c in source.column_names)
    with transaction(con):
        con.register("_incoming", rows)
        try:
            con.execute(
                f'INSERT INTO raw."{source.name}" SELECT {select_cols}, _parse_error, '
                "?, ?, _row_number, ? FROM _incoming ORDER BY _row_number",
                [name, sha, loaded_at])
        finally:
            con.unregister("_incoming")
        con.execute("INSERT INTO meta.loaded_files VALUES (?, ?, ?, ?, ?, ?)",
                    [source.name, name, sha, rows.num_rows, loaded_at, run_id])
    return LoadResult(source.name, name, rows.num_rows, skipped=False,
                      parse_errors=parse_errors, ignored_columns=tuple(ignored))


def load_source(con: duckdb.DuckDBPyConnection, table: str, input_dir: Path,
                *, run_id: str | None = None) -> list[LoadResult]:
    """Load every not-yet-loaded file of ``table``; a table with no file stays an empty table."""
    source = SOURCES[table]
    con.execute(raw_ddl(source))
    files = source_files(input_dir, table)
    if not files and source.required:
        raise SourceFileError(f"{input_dir / (table + '.csv')}: required source table "
                              f"'{table}' has no file")
    return [load_source_file(con, source, f, name=f.relative_to(input_dir).as_posix(),
                             run_id=run_id) for f in files]
