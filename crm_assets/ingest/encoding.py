"""Which encoding and separator a CSV file is in, or why it is refused.

UTF-8 with or without BOM, or Windows-1251 (:func:`detect_encoding`). A file that is UTF-8 except
for a few bytes is **refused** with the line of the first bad byte, never read as cp1251 mojibake: a
corrupt byte means a damaged transfer or mixed encodings, and every name of the file is suspect. A
non-UTF-8 file that ``charset-normalizer`` does not accept as Windows-1251 text (KOI8-R, CP866,
binary) is refused too. The separator is the most frequent of ``,`` ``;`` tab ``|`` in the header.
"""

from __future__ import annotations

import codecs
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from crm_assets.ingest.contracts import SourceFileError

DELIMITERS = (",", ";", "\t", "|")
_UTF8_BOM = b"\xef\xbb\xbf"


_CHUNK = 1 << 23
"""Bytes read at a time: every check streams the file, so memory does not grow with it."""


def chunks(fh: BinaryIO, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
    """``(offset, bytes)`` of consecutive pieces of ``fh`` from ``start`` up to ``stop`` (or its
    end)."""
    fh.seek(start)
    offset = start
    while stop is None or offset < stop:
        block = fh.read(_CHUNK if stop is None else min(_CHUNK, stop - offset))
        if not block:
            return
        yield offset, block
        offset += len(block)


def read_at(fh: BinaryIO, offset: int, size: int) -> bytes:
    """``size`` bytes of ``fh`` from ``offset`` (fewer at its end)."""
    fh.seek(offset)
    return fh.read(size)


def _position(fh: BinaryIO, offset: int) -> str:
    """``line L, byte B of the line`` of the byte at ``offset``."""
    lines, line_start = 1, 0
    for at, block in chunks(fh, 0, offset):
        lines += block.count(b"\n")
        last = block.rfind(b"\n")
        if last >= 0:
            line_start = at + last + 1
    return f"line {lines}, byte {offset - line_start + 1} of the line"


def _first_invalid_utf8(fh: BinaryIO, start: int) -> tuple[int, str] | None:
    """Offset and reason of the first byte that is not UTF-8, or None; streams the file."""
    pending, base = b"", start  # bytes of a character cut by a chunk boundary, and their offset
    for _, block in chunks(fh, start):
        data = pending + block
        try:
            _, consumed = codecs.utf_8_decode(data, "strict", False)
        except UnicodeDecodeError as err:
            return base + err.start, err.reason
        pending, base = data[consumed:], base + consumed
    try:
        codecs.utf_8_decode(pending, "strict", True)
    except UnicodeDecodeError as err:
        return base + err.start, err.reason
    return None


def _looks_like_damaged_utf8(fh: BinaryIO, start: int) -> bool:
    """At least as many well-formed multi-byte UTF-8 characters as bad bytes: damaged UTF-8.

    Windows-1251 Cyrillic is almost never valid UTF-8 (a capital letter is a lead byte, but the
    next byte is rarely a continuation byte: ``СЁ`` is one of the few pairs that are), so a cp1251
    file has nearly only bad bytes, while a damaged UTF-8 file has a few among many good ones.
    """
    bad = non_ascii = 0
    pending = b""
    pieces = (block for _, block in chunks(fh, start))
    for block in itertools.chain(pieces, [None]):
        final = block is None
        data = pending + (block or b"")
        text, consumed = codecs.utf_8_decode(data, "replace", final)
        pending = data[consumed:]
        bad += text.count("\ufffd")
        non_ascii += len(text) - len(text.encode("ascii", "ignore"))
    non_ascii -= bad
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


def detect_encoding(fh: BinaryIO, size: int, path: Path | str = "<bytes>") -> Encoding:
    """UTF-8 (with or without BOM) or Windows-1251, else :class:`SourceFileError`.

    ``fh`` is the file opened for binary reading, ``size`` its length; it is read a chunk at a
    time, never whole.

    * A UTF-8 BOM means UTF-8; the rest must then be valid UTF-8.
    * Valid UTF-8 throughout means UTF-8. A file ending inside a multi-byte character is UTF-8
      whose last record is truncated (flagged, not refused).
    * Invalid UTF-8 in what is otherwise UTF-8 text (see :func:`_looks_like_damaged_utf8`) is
      refused, naming the line of the first bad byte.
    * Otherwise the file must decode as Windows-1251 and read as text (:func:`_is_cp1251_text`).
    """
    head = read_at(fh, 0, 1 << 16)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SourceFileError(f"{path}: line 1: UTF-16 is not supported; export as UTF-8 or "
                              "Windows-1251")
    if b"\x00" in head:
        raise SourceFileError(f"{path}: line 1: NUL bytes: not a text CSV file (UTF-16? binary?)")
    bom = head.startswith(_UTF8_BOM)
    start = len(_UTF8_BOM) if bom else 0
    bad = _first_invalid_utf8(fh, start)
    if bad is None:
        return Encoding("utf-8", start, size)
    offset, reason = bad
    if reason == "unexpected end of data" and offset >= size - 3:
        return Encoding("utf-8", start, offset,
                        "the file ends in the middle of a UTF-8 character (truncated file?)")
    if bom or _looks_like_damaged_utf8(fh, start):
        raise SourceFileError(
            f"{path}: {_position(fh, offset)}: byte 0x{read_at(fh, offset, 1)[0]:02X} is not "
            f"valid UTF-8 ({reason}) in a file that is otherwise UTF-8; the file is damaged or "
            "mixes encodings: fix or re-export it (nothing of it was loaded)")
    for at, block in chunks(fh):
        try:
            block.decode("cp1251")  # one byte per character: a chunk boundary splits none
        except UnicodeDecodeError as err:
            raise SourceFileError(
                f"{path}: {_position(fh, at + err.start)}: byte 0x{block[err.start]:02X} is "
                "neither UTF-8 nor Windows-1251 text") from None
    sample_start = max(0, offset - 4096)
    if not _is_cp1251_text(read_at(fh, sample_start, offset + (1 << 20) - sample_start)):
        raise SourceFileError(
            f"{path}: {_position(fh, offset)}: not UTF-8, and not readable as Windows-1251 "
            "text either (KOI8-R? CP866?); export as UTF-8 or Windows-1251")
    return Encoding("cp1251", 0, size)


def sniff_delimiter(header_line: str) -> str:
    """The delimiter of the header: the most frequent of ``,``, ``;``, tab and ``|``."""
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","
