"""Python values as DuckDB SQL literals: the generator inlines its reference lists into the SQL."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def q(value: object) -> str:
    """A SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def lst(values: Sequence[object]) -> str:
    """A DuckDB list literal; index it 1-based."""
    return "[" + ", ".join(q(v) for v in values) + "]"


def nested_lst(lists: Sequence[Sequence[object]]) -> str:
    """A DuckDB list of lists literal (``[[...], [...]]``); index both levels 1-based."""
    return "[" + ", ".join(lst(x) for x in lists) + "]"


def path_literal(path: Path) -> str:
    """A file path as the string literal a ``COPY ... TO`` takes."""
    return q(str(path))
