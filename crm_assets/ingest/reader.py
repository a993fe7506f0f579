"""Reading one CSV file into text columns in the contract's order, by Arrow's CSV reader.

Never a Python loop over rows; multi-line quoted fields are fine. Values are kept as text; staging
judges them.

* Refused whole (:class:`~crm_assets.ingest.contracts.SourceFileError`, the message names file,
  line and column): an empty file, undecodable bytes, a header lacking a required column, naming a
  column twice or with an empty name.
* Kept and flagged: a record with more or fewer fields than the header, or the last record of a
  file that ends inside a quoted field or inside a UTF-8 character (a truncated file). It lands in
  raw with the reason in ``_parse_error`` (and its text, for a field-count mismatch, whose fields
  are left null), so staging sends it to ``staging.rejects`` and no row of the file is lost.
* Unknown extra columns are ignored and reported; missing optional columns are null.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from crm_assets.ingest.contracts import SourceFileError, SourceTable
from crm_assets.ingest.encoding import Encoding, detect_encoding, sniff_delimiter

_MAX_TEXT = 1000  # characters of a malformed record's text kept in _parse_error


@dataclass(frozen=True)
class ReadResult:
    """A file read into text columns in the contract's order, plus what was found on the way."""

    rows: pa.Table
    parse_errors: int
    ignored_columns: tuple[str, ...]
    encoding: str
    delimiter: str


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
    parsed = _parse(data, enc, names, delimiter, path)
    rows, flagged = _rows(parsed, enc, names, source)
    return ReadResult(rows, flagged, ignored, "utf-8-sig" if enc.start else enc.codec, delimiter)


@dataclass
class _Parsed:
    """What Arrow read: the good records, the malformed ones by record number, and whether the
    file ended inside a quoted field."""

    table: pa.Table
    bad: dict[int, str]
    ended_in_quotes: bool


_SENTINEL = "\n__crm_ingest_end_of_file_7c1e__"


def _parse(data: bytes, enc: Encoding, names: list[str], delimiter: str,
           path: Path | str) -> _Parsed:
    """Arrow's CSV reader over the records, every value as text; malformed records set aside.

    A sentinel line after the data tells whether the file ended inside a quoted field: if it did,
    the sentinel is swallowed into the open field instead of standing as a record of its own (with
    the wrong number of fields, so it reaches the invalid-row handler).
    """
    parsed = _Parsed(pa.table({}), {}, True)  # ended in quotes until the sentinel shows up

    def on_invalid(row: pacsv.InvalidRow) -> str:
        if row.text == _SENTINEL[1:]:
            parsed.ended_in_quotes = False
        else:
            text = row.text.removesuffix(_SENTINEL).rstrip("\r\n")
            parsed.bad[row.number - 1] = (
                f"record {row.number - 1}: expected {row.expected_columns} fields, found "
                f"{row.actual_columns}: {text[:_MAX_TEXT]}")
        return "skip"

    payload = pa.py_buffer(data[enc.start:enc.end] + _SENTINEL.encode())
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
    if len(names) == 1 and last_field is not None and last_field[-1].as_py() == _SENTINEL[1:]:
        parsed.ended_in_quotes = False  # a one-column file: the sentinel is a valid record
        table = table.slice(0, table.num_rows - 1)
    parsed.table = table
    return parsed


def _rows(parsed: _Parsed, enc: Encoding, names: list[str], source: SourceTable
          ) -> tuple[pa.Table, int]:
    """Every record in file order, malformed ones with their reason; how many were flagged."""
    table, bad = parsed.table, dict(parsed.bad)
    columns = {c: table.column(c) if c in table.column_names
               else pa.chunked_array([pa.nulls(table.num_rows, pa.string())])
               for c in source.column_names}
    total = table.num_rows + len(bad)
    errors: list[str | None] = [None] * table.num_rows
    tail_problem = enc.tail_problem
    if parsed.ended_in_quotes:
        tail_problem = "the file ends inside a quoted field (unterminated quote; truncated file?)"
        if total not in bad and names[-1] in columns:  # cut the sentinel off the open field
            column, last = columns[names[-1]], table.num_rows - 1
            value = column[last].as_py()
            fixed = value.removesuffix(_SENTINEL) if value is not None else None
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
    return rows, flagged


def read_source_file(path: Path, source: SourceTable) -> ReadResult:
    """:func:`read_source_bytes` of the file at ``path``; messages name the path."""
    return read_source_bytes(path.read_bytes(), source, path)
