"""Positions in a file's text, for ``path:line:col`` messages."""

from __future__ import annotations

from crm_assets.catalog.definition import Position

NO_LOCATION = 2**64 - 1  # DuckDB's query_location of a node it did not read from the text


def line_col(text: str, offset: int) -> Position:
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def first_code_offset(text: str, default: int = 0) -> int:
    """Offset of the first character that is not blank and not inside a comment (or default)."""
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
        elif text.startswith("--", i):
            j = text.find("\n", i)
            i = len(text) if j < 0 else j + 1
        elif text.startswith("/*", i):
            j = text.find("*/", i)
            i = len(text) if j < 0 else j + 2
        else:
            return i
    return default


def char_offset(text: str, byte_offset: int) -> int:
    """DuckDB reports positions in UTF-8 bytes; messages count characters."""
    if byte_offset < 0 or byte_offset == NO_LOCATION:
        return -1
    if text.isascii():
        return byte_offset
    return len(text.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))
