"""Python values as DuckDB SQL literals: the generator inlines its reference lists into the SQL."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from crm_assets.quoting import literal


def q(value: object) -> str:
    """A SQL literal (:func:`crm_assets.quoting.literal`)."""
    return literal(value)


def lst(values: Sequence[object]) -> str:
    """A DuckDB list literal; index it 1-based."""
    return "[" + ", ".join(q(v) for v in values) + "]"


def nested_lst(lists: Sequence[Sequence[object]]) -> str:
    """A DuckDB list of lists literal (``[[...], [...]]``); index both levels 1-based."""
    return "[" + ", ".join(lst(x) for x in lists) + "]"


def path_literal(path: Path) -> str:
    """A file path as the string literal a ``COPY ... TO`` takes."""
    return q(str(path))
