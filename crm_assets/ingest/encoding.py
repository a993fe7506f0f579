"""Which encoding and separator a CSV file is in, or why it is refused.

UTF-8 with or without BOM, or Windows-1251 (:func:`detect_encoding`). A file that is UTF-8 except
for a few bytes is **refused** with the line of the first bad byte, never read as cp1251 mojibake: a
corrupt byte means a damaged transfer or mixed encodings, and every name of the file is suspect. A
non-UTF-8 file that ``charset-normalizer`` does not accept as Windows-1251 text (KOI8-R, CP866,
binary) is refused too. The separator is the most frequent of ``,`` ``;`` tab ``|`` in the header.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

from crm_assets.ingest.contracts import SourceFileError

DELIMITERS = (",", ";", "\t", "|")
_UTF8_BOM = b"\xef\xbb\xbf"


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
