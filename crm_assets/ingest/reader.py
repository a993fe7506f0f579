"""Reading one CSV file into text columns in the contract's order, by Arrow's CSV reader.

The file streams: Arrow parses it a block at a time (:data:`BLOCK_SIZE`) and each block goes on to
DuckDB before the next is read, so a file of any size loads in bounded memory. Never a Python loop
over rows; multi-line quoted fields are fine. Values are kept as text; staging judges them.

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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from crm_assets.ingest.contracts import SourceFileError, SourceTable
from crm_assets.ingest.encoding import (
    Encoding,
    chunks,
    detect_encoding,
    read_at,
    sniff_delimiter,
)

_MAX_TEXT = 1000  # characters of a malformed record's text kept in _parse_error


BLOCK_SIZE = 1 << 22
"""Bytes of CSV Arrow parses at a time: what a file costs in memory while it streams in, whatever
its size."""


@dataclass(frozen=True)
class ReadResult:
    """A whole file read into text columns in the contract's order (:func:`read_source_bytes`)."""

    rows: pa.Table
    parse_errors: int
    ignored_columns: tuple[str, ...]
    encoding: str
    delimiter: str


def _header(fh: BinaryIO, enc: Encoding, path: Path | str, source: SourceTable
            ) -> tuple[list[str], str]:
    """The header's column names (trimmed, lower-cased) and the delimiter; refuses a bad one."""
    head = read_at(fh, enc.start, min(enc.end - enc.start, _MAX_HEADER))
    newline = head.find(b"\n")
    line = head[:None if newline < 0 else newline].decode(enc.codec).rstrip("\r")
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


_MAX_HEADER = 1 << 20  # bytes of the file the header line is looked for in


def _is_blank(fh: BinaryIO) -> bool:
    """Whether the file holds nothing but white space (and a BOM)."""
    return all(re.search(rb"[^\s\xef\xbb\xbf]", block) is None for _, block in chunks(fh))


_SENTINEL = "\n__crm_ingest_end_of_file_7c1e__"


class _Framed(io.RawIOBase):
    """Bytes ``start`` to ``end`` of a file, then ``suffix``: what Arrow reads, block by block."""

    def __init__(self, fh: BinaryIO, start: int, end: int, suffix: bytes):
        super().__init__()
        self._fh, self._left, self._suffix = fh, end - start, suffix
        fh.seek(start)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._left > 0:
            got = self._fh.readinto(view[:min(len(view), self._left)])
            self._left = self._left - got if got else 0
            if got:
                return got
        size = min(len(view), len(self._suffix))
        view[:size], self._suffix = self._suffix[:size], self._suffix[size:]
        return size


class SourceReader:
    """One file, header checked and encoding known, streamed as record batches (:meth:`batches`).

    Each batch holds every contract column as text, ``_parse_error`` and ``_row_number``
    (1 = first record after the header, blank lines not counted); malformed records come as rows
    of nulls with their reason, at most one block after where they stood. Memory stays at a few
    blocks (:data:`BLOCK_SIZE`) whatever the file's size. After the batches are consumed,
    :attr:`rows` and :attr:`parse_errors` say how many records and flagged ones there were.
    """

    def __init__(self, fh: BinaryIO, size: int, source: SourceTable, path: Path | str):
        if _is_blank(fh):
            raise SourceFileError(f"{path}: line 1: file is empty (expected a header row)")
        self._fh, self._path, self._source = fh, path, source
        self._enc = detect_encoding(fh, size, path)
        self._names, self.delimiter = _header(fh, self._enc, path, source)
        self.ignored_columns = tuple(n for n in self._names if n not in source.column_names)
        self.encoding = "utf-8-sig" if self._enc.start else self._enc.codec
        self.schema = pa.schema([*((c, pa.string()) for c in source.column_names),
                                 ("_parse_error", pa.string()), ("_row_number", pa.int64())])
        self.rows = 0
        self.parse_errors = 0
        self.failure: SourceFileError | None = None
        """Why the file could not be read to its end, when :meth:`batches` stopped on it (an
        error raised inside a stream DuckDB reads reaches the caller as DuckDB's own)."""

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The file's records, in blocks; raises :class:`SourceFileError` (also kept in
        :attr:`failure`) if Arrow cannot read it."""
        try:
            yield from self._batches()
        except (pa.ArrowInvalid, UnicodeDecodeError) as err:
            self.failure = SourceFileError(
                f"{self._path}: cannot be read as {self._enc.codec} CSV: {err}")
            raise self.failure from err

    def _batches(self) -> Iterator[pa.RecordBatch]:
        names, enc = self._names, self._enc
        bad: dict[int, str] = {}  # malformed records not yet handed out, by record number
        bad_numbers: list[int] = []  # every malformed record's number, in file order
        ended_in_quotes = True  # until the sentinel shows up as a record of its own

        def on_invalid(row: pacsv.InvalidRow) -> str:
            nonlocal ended_in_quotes
            if row.text == _SENTINEL[1:]:
                ended_in_quotes = False
            else:
                text = row.text.removesuffix(_SENTINEL).rstrip("\r\n")
                bad[row.number - 1] = (
                    f"record {row.number - 1}: expected {row.expected_columns} fields, found "
                    f"{row.actual_columns}: {text[:_MAX_TEXT]}")
                bad_numbers.append(row.number - 1)
            return "skip"

        reader = pacsv.open_csv(
            _Framed(self._fh, enc.start, enc.end, _SENTINEL.encode(enc.codec)),
            read_options=pacsv.ReadOptions(encoding=enc.codec, use_threads=False,
                                           column_names=names, skip_rows=1,
                                           block_size=BLOCK_SIZE),
            parse_options=pacsv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True,
                                             invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                 strings_can_be_null=True,
                                                 quoted_strings_can_be_null=True))
        good = 0  # well-formed records read so far
        held: pa.RecordBatch | None = None  # the latest block: the file's last record may be in it
        for batch in reader:
            if len(names) == 1 and batch.num_rows and batch[0][-1].as_py() == _SENTINEL[1:]:
                ended_in_quotes = False  # a one-column file: the sentinel is a valid record
                batch = batch.slice(0, batch.num_rows - 1)
            if not batch.num_rows:
                continue
            numbered = self._numbered(batch, good, bad_numbers)
            good += batch.num_rows
            if held is not None:
                yield from self._release(held, bad)
            held = numbered
        total = good + len(bad_numbers)
        tail_problem = enc.tail_problem
        if ended_in_quotes:
            tail_problem = ("the file ends inside a quoted field (unterminated quote; "
                            "truncated file?)")
        if tail_problem and total:
            if total in bad:
                bad[total] += f"; {tail_problem}"
            else:  # the last record is well-formed, so it is the held block's last row
                held = self._flag_last(held, tail_problem, ended_in_quotes)
        if held is not None:
            yield from self._release(held, bad)
        yield from self._release(None, bad)
        self.rows = total

    def _numbered(self, batch: pa.RecordBatch, before: int, bad_numbers: list[int]
                  ) -> pa.RecordBatch:
        """The block in the contract's columns, each record numbered in the file.

        The k-th well-formed record is record k + (malformed records before it); the j-th
        malformed record (number b_j) has b_j - j well-formed ones before it.
        """
        k = np.arange(before + 1, before + batch.num_rows + 1, dtype=np.int64)
        bad = np.asarray(bad_numbers, dtype=np.int64)
        numbers = k + np.searchsorted(bad - np.arange(1, len(bad) + 1), k, side="left")
        present = set(batch.schema.names)
        columns = [batch.column(c) if c in present else pa.nulls(batch.num_rows, pa.string())
                   for c in self._source.column_names]
        return pa.RecordBatch.from_arrays(
            [*columns, pa.nulls(batch.num_rows, pa.string()), pa.array(numbers)],
            schema=self.schema)

    def _flag_last(self, held: pa.RecordBatch, problem: str, cut_sentinel: bool
                   ) -> pa.RecordBatch:
        """``held`` with its last row flagged, and the sentinel cut off its last field if the
        file ended inside that field's quotes."""
        last = held.num_rows - 1
        arrays = list(held.columns)
        if cut_sentinel and self._names[-1] in self._source.column_names:
            i = self._source.column_names.index(self._names[-1])
            value = arrays[i][last].as_py()
            arrays[i] = pa.concat_arrays([arrays[i].slice(0, last), pa.array(
                [value.removesuffix(_SENTINEL) if value is not None else None], pa.string())])
        number = arrays[-1][last].as_py()
        error = len(self.schema) - 2
        arrays[error] = pa.concat_arrays([arrays[error].slice(0, last),
                                          pa.array([f"record {number}: {problem}"])])
        self.parse_errors += 1
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _release(self, held: pa.RecordBatch | None, bad: dict[int, str]
                 ) -> Iterator[pa.RecordBatch]:
        """``held`` and the malformed records up to its last one (all of them when ``held`` is
        None, at the end of the file), taken out of ``bad``."""
        upto = held.column(len(self.schema) - 1)[-1].as_py() if held is not None else None
        numbers = sorted(n for n in bad if upto is None or n < upto)
        if numbers:
            self.parse_errors += len(numbers)
            yield pa.RecordBatch.from_pydict({
                **{c: pa.nulls(len(numbers), pa.string()) for c in self._source.column_names},
                "_parse_error": pa.array([bad.pop(n) for n in numbers], pa.string()),
                "_row_number": pa.array(numbers, pa.int64())}, schema=self.schema)
        if held is not None:
            yield held


def read_source_bytes(data: bytes, source: SourceTable, path: Path | str = "<bytes>"
                      ) -> ReadResult:
    """A whole file's bytes read as text columns in the contract's order (tests, small files).

    Returns:
        A :class:`ReadResult` whose ``rows`` hold every contract column, ``_parse_error`` and
        ``_row_number``, one row per record, malformed ones included.

    Raises:
        SourceFileError: see the module docstring for what is refused.
    """
    reader = SourceReader(io.BytesIO(data), len(data), source, path)
    rows = pa.Table.from_batches(list(reader.batches()), schema=reader.schema)
    return ReadResult(rows, reader.parse_errors, reader.ignored_columns, reader.encoding,
                      reader.delimiter)
