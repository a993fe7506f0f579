"""A definition's query over a part of one of its tables: the text, with that table's name swapped.

Incremental steps run a definition's own SQL over the rows that changed: every reference to the
table they come from is replaced by a temporary table holding just those rows. The places come
from DuckDB's own parse tree (``json_serialize_sql``), and only those spans of the text change, so
what runs is the file as written, never a re-rendering of it.
"""

from __future__ import annotations

import functools
import json
import re

import duckdb

from crm_assets.catalog.parse_tree import walk_references
from crm_assets.catalog.text import char_offset

_PART = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_QUALIFIED = re.compile(rf"{_PART}\s*\.\s*{_PART}")


def read_instead(con: duckdb.DuckDBPyConnection, sql: str, table: str, relation: str) -> str:
    """``sql`` reading ``relation`` wherever it reads ``table`` (``schema.name``).

    Raises:
        ValueError: ``sql`` does not read ``table``.
    """
    spans = _spans(sql, table.lower(), _tree(con, sql))
    if not spans:
        raise ValueError(f"the query does not read {table}")
    for start, end in reversed(spans):
        sql = sql[:start] + relation + sql[end:]
    return sql


def _tree(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    return con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0]


@functools.lru_cache(maxsize=256)
def _spans(sql: str, table: str, tree: str) -> list[tuple[int, int]]:
    spans = []
    for kind, name, byte_offset in walk_references(json.loads(tree).get("statements", [])):
        if kind != "table" or name.lower() != table:
            continue
        start = char_offset(sql, byte_offset)
        match = _QUALIFIED.match(sql, start)
        if start < 0 or match is None:
            raise ValueError(f"cannot find the reference to {table} at offset {start}")
        spans.append((start, match.end()))
    return sorted(spans)
