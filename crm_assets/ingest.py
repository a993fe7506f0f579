"""Landing source files into the append-only ``raw`` layer.

**Which files.** A source table ``<table>`` is fed, in the input folder and in the landing folder
alike, by ``<table>.csv``, by ``<table>_<anything>.csv`` (``orders_2026-07-01.csv``) and by any
``<table>/*.csv`` (see :func:`table_of`). Input files load first, then landing files, each group in
name order; ``_source_file`` records the path relative to its folder, prefixed ``landing/`` for the
landing folder. A landing file modified less than :data:`LANDING_SETTLE_SECONDS` ago is left for the
next run, so a file still being copied in is never read half-written.

**Each file once.** Its sha256 is recorded in ``meta.loaded_files`` in the same transaction as its
rows, so a re-run, a crash half-way or the same bytes under another name never duplicate anything,
and a refused file leaves nothing behind.

**Reading** (:func:`read_source_file`) is done by Arrow's CSV reader (multi-line quoted fields),
never by a Python loop over rows. Values are kept as text; staging judges them.

* Encoding: UTF-8 with or without BOM, or Windows-1251 (:func:`detect_encoding`). A file that is
  UTF-8 except for a few bytes is **refused** with the line of the first bad byte, never read as
  cp1251 mojibake: a corrupt byte means a damaged transfer or mixed encodings, and every name of
  the file is suspect. A non-UTF-8 file that ``charset-normalizer`` does not accept as Windows-1251
  text (KOI8-R, CP866, binary) is refused too.
* Separator: the most frequent of ``,`` ``;`` tab ``|`` in the header line.
* Refused whole (:class:`SourceFileError`, the message names file, line and column): an empty file,
  undecodable bytes, a header lacking a required column, naming a column twice or with an empty
  name. The file stays where it is; nothing of it is loaded.
* Kept and flagged: a record with more or fewer fields than the header, or the last record of a
  file that ends inside a quoted field or inside a UTF-8 character (a truncated file). It lands in
  raw with the reason in ``_parse_error`` (and its text, for a field-count mismatch, whose fields
  are left null), so staging sends it to ``staging.rejects`` and no row of the file is lost.
* Unknown extra columns are ignored and reported; missing optional columns are null.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from crm_assets.contracts import LINEAGE_COLUMNS, SOURCES, SourceTable
from crm_assets.warehouse import transaction

RAW_EXTRA_COLUMNS: dict[str, str] = {"_parse_error": "VARCHAR"}
"""A raw row that could not be split into the contract's columns says why here (else NULL)."""

LANDING_PREFIX = "landing/"
"""What ``_source_file`` of a landing-folder file starts with, to tell it from an input file."""

LANDING_SETTLE_SECONDS = 5.0
"""A landing file younger than this (by mtime) may still be being written: left for a later run."""

DELIMITERS = (",", ";", "\t", "|")
_UTF8_BOM = b"\xef\xbb\xbf"
_EOF_SENTINEL = b"__crm_ingest_end_of_file_7c1e__"
_MAX_TEXT = 1000  # characters of a malformed record's text kept in _parse_error


class SourceFileError(ValueError):
    """A file that breaks the input contract; the message names the file, line and column."""


@dataclass(frozen=True)
class SourceFile:
    """One file feeding a source table, and the name ``_source_file`` records for it."""

    table: str
    path: Path
    name: str


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


@dataclass(frozen=True)
class ReadResult:
    """A file read into text columns in the contract's order, plus what was found on the way."""

    rows: pa.Table
    parse_errors: int
    ignored_columns: tuple[str, ...]
    encoding: str
    delimiter: str


def raw_schema(source: SourceTable) -> list[tuple[str, str]]:
    """The columns of ``raw.<source>``: contract columns as text, parse errors, then lineage."""
    return ([(c.name, "VARCHAR") for c in source.columns] + list(RAW_EXTRA_COLUMNS.items())
            + list(LINEAGE_COLUMNS.items()))


def raw_ddl(source: SourceTable) -> str:
    """``CREATE TABLE IF NOT EXISTS raw.<source>`` with :func:`raw_schema`'s columns."""
    cols = ", ".join(f'"{name}" {type_}' for name, type_ in raw_schema(source))
    return f'CREATE TABLE IF NOT EXISTS raw."{source.name}" ({cols})'


# --------------------------------------------------------------------------------------------
# which files feed which table


def table_of(relative: str | PurePosixPath) -> str | None:
    """The source table a file feeds, from its path relative to the input or landing folder.

    ``orders.csv``, ``orders_2026-07.csv`` and ``orders/anything.csv`` feed ``orders``; the longest
    table name wins (``order_items_1.csv`` feeds ``order_items``). Hidden and editor lock files
    (``.x.csv``, ``~$x.csv``), other extensions and deeper folders feed nothing.
    """
    parts = PurePosixPath(relative).parts
    if not parts or not parts[-1].lower().endswith(".csv") or parts[-1][0] in ".~":
        return None
    if len(parts) == 2:
        return parts[0] if parts[0] in SOURCES else None
    if len(parts) != 1:
        return None
    stem = parts[0][:-4]
    if stem in SOURCES:
        return stem
    prefixed = [t for t in SOURCES if stem.startswith(t + "_")]
    return max(prefixed, key=len) if prefixed else None


def _sort_key(relative: str) -> tuple[int, str]:
    # the base file first, then increments in name order
    return (0 if "/" not in relative and relative[:-4] in SOURCES else 1, relative)


def folder_files(folder: Path | None) -> dict[str, list[str]]:
    """Paths (relative, POSIX) of the CSV files in ``folder`` per table they feed, in load order."""
    out: dict[str, list[str]] = {}
    if folder is None or not folder.is_dir():
        return out
    candidates = [*folder.glob("*"), *folder.glob("*/*")]  # any case of ".csv"
    for path in candidates:
        if not path.is_file():
            continue
        relative = path.relative_to(folder).as_posix()
        table = table_of(relative)
        if table:
            out.setdefault(table, []).append(relative)
    return {t: sorted(files, key=_sort_key) for t, files in out.items()}


def source_files(input_dir: Path, table: str, landing_dir: Path | None = None,
                 *, now: float | None = None) -> list[SourceFile]:
    """The files feeding ``table``: input folder first, then landing folder, each in load order.

    Landing files modified within :data:`LANDING_SETTLE_SECONDS` of ``now`` are left out.
    """
    files = [SourceFile(table, input_dir / rel, rel)
             for rel in folder_files(input_dir).get(table, [])]
    if landing_dir is not None and landing_dir.resolve() != input_dir.resolve():
        now = time.time() if now is None else now
        for rel in folder_files(landing_dir).get(table, []):
            path = landing_dir / rel
            try:
                settled = now - path.stat().st_mtime >= LANDING_SETTLE_SECONDS
            except FileNotFoundError:  # moved away since the listing
                continue
            if settled:
                files.append(SourceFile(table, path, LANDING_PREFIX + rel))
    return files


def file_sha256(path: Path) -> str:
    """Hex sha256 of the file's bytes: its identity for "loaded once"."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# encodings and delimiters


def _position(data: bytes, offset: int) -> str:
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return f"line {line}, byte {column} of the line"


def _first_invalid_utf8(data: bytes, start: int = 0) -> tuple[int, str] | None:
    """Offset and reason of the first byte that is not UTF-8, or None; streams, no big copy."""
    view = memoryview(data)
    i, n, chunk = start, len(data), 1 << 23
    while i < n:
        j = min(n, i + chunk)
        try:
            _, consumed = codecs.utf_8_decode(view[i:j], "strict", j == n)
        except UnicodeDecodeError as err:
            return i + err.start, err.reason
        if consumed == 0:  # an incomplete character at a chunk boundary: take a larger bite
            chunk *= 2
            continue
        i += consumed
    return None


def _looks_like_damaged_utf8(data: bytes, start: int) -> bool:
    """At least as many well-formed multi-byte UTF-8 characters as bad bytes: damaged UTF-8.

    Windows-1251 Cyrillic is almost never valid UTF-8 (a capital letter is a lead byte, but the
    next byte is rarely a continuation byte: ``СЁ`` is one of the few pairs that are), so a cp1251
    file has nearly only bad bytes, while a damaged UTF-8 file has a few among many good ones.
    """
    text = codecs.utf_8_decode(memoryview(data)[start:], "replace", True)[0]
    bad = text.count("\ufffd")
    non_ascii = len(text) - len(text.encode("ascii", "ignore")) - bad
    return non_ascii > 0 and non_ascii >= bad


_INVERTED_CASE = re.compile(r"(?<![А-Яа-яЁё])[а-яё][А-ЯЁ]{2,}")
_NORMAL_CASE = re.compile(r"(?<![А-Яа-яЁё])[А-ЯЁ]?[а-яё]{2,}")


def _is_cp1251_text(sample: bytes) -> bool:
    """Whether ``sample`` reads as Windows-1251 text rather than another Cyrillic code page.

    ``charset-normalizer``, allowed only cp1251, rejects CP866 and ISO-8859-5 gibberish by its mess
    detector. KOI8-R read as cp1251 swaps the case of every letter (``Доставка`` becomes
    ``дПУФБЧЛБ``), which short samples can pass, so words starting lower-case and going on
    upper-case outnumbering ordinary words also means "not cp1251".
    """
    from charset_normalizer import from_bytes

    if from_bytes(sample, cp_isolation=["cp1251"]).best() is None:
        return False
    text = sample.decode("cp1251", errors="replace")
    return len(_INVERTED_CASE.findall(text)) <= len(_NORMAL_CASE.findall(text))


@dataclass(frozen=True)
class Encoding:
    """How to decode a file: codec, where the text starts (after a BOM) and ends (before a
    truncated character), and a problem of its last record, if any."""

    codec: str
    start: int
    end: int
    tail_problem: str | None = None


def detect_encoding(data: bytes, path: Path | str = "<bytes>") -> Encoding:
    """UTF-8 (with or without BOM) or Windows-1251, else :class:`SourceFileError`.

    * A UTF-8 BOM means UTF-8; the rest must then be valid UTF-8.
    * Valid UTF-8 throughout means UTF-8. A file ending inside a multi-byte character is UTF-8
      whose last record is truncated (flagged, not refused).
    * Invalid UTF-8 in what is otherwise UTF-8 text (see :func:`_looks_like_damaged_utf8`) is
      refused, naming the line of the first bad byte.
    * Otherwise the file must decode as Windows-1251 and read as text (:func:`_is_cp1251_text`).
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SourceFileError(f"{path}: line 1: UTF-16 is not supported; export as UTF-8 or "
                              "Windows-1251")
    if b"\x00" in data[:1 << 16]:
        raise SourceFileError(f"{path}: line 1: NUL bytes: not a text CSV file (UTF-16? binary?)")
    bom = data.startswith(_UTF8_BOM)
    start = len(_UTF8_BOM) if bom else 0
    bad = _first_invalid_utf8(data, start)
    if bad is None:
        return Encoding("utf-8", start, len(data))
    offset, reason = bad
    if reason == "unexpected end of data" and offset >= len(data) - 3:
        return Encoding("utf-8", start, offset,
                        "the file ends in the middle of a UTF-8 character (truncated file?)")
    if bom or _looks_like_damaged_utf8(data, start):
        raise SourceFileError(
            f"{path}: {_position(data, offset)}: byte 0x{data[offset]:02X} is not valid UTF-8 "
            f"({reason}) in a file that is otherwise UTF-8; the file is damaged or mixes "
            "encodings: fix or re-export it (nothing of it was loaded)")
    try:
        data.decode("cp1251")
    except UnicodeDecodeError as err:
        raise SourceFileError(
            f"{path}: {_position(data, err.start)}: byte 0x{data[err.start]:02X} is neither "
            "UTF-8 nor Windows-1251 text") from None
    if not _is_cp1251_text(data[max(0, offset - 4096):offset + (1 << 20)]):
        raise SourceFileError(
            f"{path}: {_position(data, offset)}: not UTF-8, and not readable as Windows-1251 "
            "text either (KOI8-R? CP866?); export as UTF-8 or Windows-1251")
    return Encoding("cp1251", 0, len(data))


def sniff_delimiter(header_line: str) -> str:
    """The delimiter of the header: the most frequent of ``,``, ``;``, tab and ``|``."""
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


# --------------------------------------------------------------------------------------------
# reading one file


def _header(data: bytes, enc: Encoding, path: Path | str, source: SourceTable
            ) -> tuple[list[str], str]:
    """The header's column names (trimmed, lower-cased) and the delimiter; refuses a bad one."""
    newline = data.find(b"\n", enc.start, enc.end)
    raw_line = data[enc.start:enc.end if newline < 0 else newline]
    line = raw_line.decode(enc.codec).rstrip("\r")
    delimiter = sniff_delimiter(line)
    header = next(csv.reader(io.StringIO(line), delimiter=delimiter), [])
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
    return names, delimiter


def read_source_bytes(data: bytes, source: SourceTable, path: Path | str = "<bytes>"
                      ) -> ReadResult:
    """Read a CSV file's bytes as text columns in the contract's order.

    Returns:
        A :class:`ReadResult` whose ``rows`` hold every contract column, ``_parse_error`` and
        ``_row_number`` (1 = first record after the header, blank lines not counted), one row per
        record, malformed ones included.

    Raises:
        SourceFileError: see the module docstring for what is refused.
    """
    if re.search(rb"[^\s\xef\xbb\xbf]", data) is None:
        raise SourceFileError(f"{path}: line 1: file is empty (expected a header row)")
    enc = detect_encoding(data, path)
    names, delimiter = _header(data, enc, path, source)
    ignored = tuple(n for n in names if n not in source.column_names)

    bad: dict[int, str] = {}  # record number -> problem
    sentinel = "\n" + _EOF_SENTINEL.decode()
    ended_in_quotes = True  # until the sentinel shows up as a record of its own

    def on_invalid(row: pacsv.InvalidRow) -> str:
        nonlocal ended_in_quotes
        if row.text == sentinel[1:]:
            ended_in_quotes = False
        else:
            text = row.text.removesuffix(sentinel).rstrip("\r\n")
            bad[row.number - 1] = (f"record {row.number - 1}: expected {row.expected_columns} "
                                   f"fields, found {row.actual_columns}: {text[:_MAX_TEXT]}")
        return "skip"

    # A sentinel line after the data tells whether the file ended inside a quoted field: if it
    # did, the sentinel is swallowed into the open field instead of standing as a record of its
    # own (with the wrong number of fields, so it reaches ``on_invalid``).
    payload = pa.py_buffer(data[enc.start:enc.end] + sentinel.encode())
    try:
        table = pacsv.read_csv(
            pa.BufferReader(payload),
            read_options=pacsv.ReadOptions(encoding=enc.codec, use_threads=False,
                                           column_names=names, skip_rows=1,
                                           block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                             invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                 strings_can_be_null=True,
                                                 quoted_strings_can_be_null=True),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as err:
        raise SourceFileError(f"{path}: cannot be read as {enc.codec} CSV: {err}") from err
    last_field = table.column(names[-1]) if table.num_rows else None
    if len(names) == 1 and last_field is not None and last_field[-1].as_py() == sentinel[1:]:
        ended_in_quotes = False  # a one-column file: the sentinel is a valid record
        table = table.slice(0, table.num_rows - 1)

    columns = {c: table.column(c) if c in table.column_names
               else pa.chunked_array([pa.nulls(table.num_rows, pa.string())])
               for c in source.column_names}
    total = table.num_rows + len(bad)
    errors: list[str | None] = [None] * table.num_rows
    tail_problem = enc.tail_problem
    if ended_in_quotes:
        tail_problem = "the file ends inside a quoted field (unterminated quote; truncated file?)"
        if total not in bad and names[-1] in columns:  # cut the sentinel off the open field
            column, last = columns[names[-1]], table.num_rows - 1
            value = column[last].as_py()
            fixed = value.removesuffix(sentinel) if value is not None else None
            columns[names[-1]] = pa.chunked_array(
                [*column.slice(0, last).chunks, pa.array([fixed], pa.string())], pa.string())
    flagged = len(bad)
    if tail_problem and total:
        if total in bad:
            bad[total] += f"; {tail_problem}"
        else:
            errors[-1] = f"record {total}: {tail_problem}"
            flagged += 1

    bad_numbers = np.array(sorted(bad), dtype=np.int64)
    good = np.ones(total, dtype=bool)
    good[bad_numbers - 1] = False  # record numbers of the rows Arrow kept: all but the bad ones
    rows = pa.table({**columns, "_parse_error": pa.array(errors, pa.string()),
                     "_row_number": np.arange(1, total + 1, dtype=np.int64)[good]})
    if bad:
        rejected = pa.table({
            **{c: pa.nulls(len(bad), pa.string()) for c in source.column_names},
            "_parse_error": pa.array([bad[n] for n in sorted(bad)], pa.string()),
            "_row_number": bad_numbers,
        })
        rows = pa.concat_tables([rows, rejected])
        rows = rows.take(pc.sort_indices(rows["_row_number"]))  # back in file order
    return ReadResult(rows, flagged, ignored, "utf-8-sig" if enc.start else enc.codec, delimiter)


def read_source_file(path: Path, source: SourceTable) -> ReadResult:
    """:func:`read_source_bytes` of the file at ``path``; messages name the path."""
    return read_source_bytes(path.read_bytes(), source, path)


# --------------------------------------------------------------------------------------------
# loading


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
    sha = file_sha256(path)
    already = con.execute(
        "SELECT count(*) FROM meta.loaded_files WHERE table_name = ? AND file_sha256 = ?",
        [source.name, sha]).fetchone()[0]
    if already:
        return LoadResult(source.name, name, 0, skipped=True)
    read = read_source_file(path, source)
    loaded_at = loaded_at or datetime.now(UTC)
    con.execute(raw_ddl(source))
    select_cols = ", ".join(f'"{c}"' for c in source.column_names)
    with transaction(con):
        con.register("_incoming", read.rows)
        try:
            con.execute(
                f'INSERT INTO raw."{source.name}" SELECT {select_cols}, _parse_error, '
                "?, ?, _row_number, ? FROM _incoming",
                [name, sha, loaded_at])
        finally:
            con.unregister("_incoming")
        con.execute("INSERT INTO meta.loaded_files VALUES (?, ?, ?, ?, ?, ?)",
                    [source.name, name, sha, read.rows.num_rows, loaded_at, run_id])
    return LoadResult(source.name, name, read.rows.num_rows, skipped=False,
                      parse_errors=read.parse_errors, ignored_columns=read.ignored_columns,
                      encoding=read.encoding, delimiter=read.delimiter)


def load_source(con: duckdb.DuckDBPyConnection, table: str, input_dir: Path,
                *, landing_dir: Path | None = None, run_id: str | None = None,
                files: Iterable[SourceFile] | None = None) -> SourceLoad:
    """Load every not-yet-loaded file of ``table``, each in its own transaction.

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
    for f in files:
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
