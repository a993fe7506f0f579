"""What DuckDB's own parser says of a file: statement kinds, functions, tables, stars.

``json_serialize_sql`` gives DuckDB's parse tree as JSON; walking it finds every function, table
function and table a query names, exactly as DuckDB will read it, which is what the allow-list is
checked against.
"""

from __future__ import annotations

import json

import duckdb

from crm_assets.catalog.text import char_offset, first_code_offset


def serialize(con: duckdb.DuckDBPyConnection, texts: list[str]) -> list[dict]:
    """DuckDB's parse of each text as JSON, in one call (``json_serialize_sql``)."""
    if not texts:
        return []
    raw = con.execute(
        "SELECT list_transform(?::VARCHAR[], lambda t: json_serialize_sql(t, skip_null := true, "
        "skip_empty := true))", [texts]).fetchall()[0][0]  # drained: no open transaction
    return [json.loads(r) for r in raw]


CLOCK_KEYWORDS = frozenset({"current_date", "current_timestamp", "current_time", "localtime",
                            "localtimestamp"})
"""SQL keywords that read the clock without parentheses."""


def walk_references(tree) -> list[tuple[str, str, int]]:
    """(kind, name, byte offset) of every function, table function, table and clock keyword
    (kind ``keyword``) in a parse tree."""
    found: list[tuple[str, str, int]] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if type(node) is list:
            stack.extend(v for v in node if type(v) is dict or type(v) is list)
            continue
        if type(node) is not dict:
            continue
        node_type = node.get("type")
        if node_type == "TABLE_FUNCTION":
            fn = node.get("function") or {}
            found.append(("table_function", str(fn.get("function_name", "")).lower(),
                          int(node.get("query_location", -1))))
            stack.extend(fn.get("arguments") or fn.get("children") or [])
            stack.extend(v for k, v in node.items()
                         if k != "function" and (type(v) is dict or type(v) is list))
            continue
        if "function_name" in node and not node.get("is_operator"):
            found.append(("function", str(node["function_name"]).lower(),
                          int(node.get("query_location", -1))))
        elif (node_type == "COLUMN_REF" and len(node.get("column_names") or []) == 1
              and str(node["column_names"][0]).lower() in CLOCK_KEYWORDS):
            # ``current_date`` and friends parse as a column reference (unless a column of that
            # name exists, DuckDB then reads the clock): reported as the function they are
            found.append(("keyword", str(node["column_names"][0]).lower(),
                          int(node.get("query_location", -1))))
        elif node_type == "BASE_TABLE":
            name = f"{node.get('schema_name', '')}.{node.get('table_name', '')}"
            if node.get("catalog_name"):
                name = f"{node['catalog_name']}.{name}"
            found.append(("table", name, int(node.get("query_location", -1))))
        stack.extend(v for v in node.values() if type(v) is dict or type(v) is list)
    return found


def outer_stars(tree: dict) -> list[int]:
    """Byte offsets of ``*`` / ``COLUMNS(*)`` in the output list of the outermost query."""
    stack = [tree["statements"][0]["node"]]
    stars: list[int] = []
    while stack:
        node = stack.pop()
        if node.get("type") == "SET_OPERATION_NODE":
            stack.extend(node.get("children") or [n for n in (node.get("left"),
                                                               node.get("right")) if n])
        elif node.get("type") == "SELECT_NODE":
            stars.extend(int(e.get("query_location", -1)) for e in node.get("select_list", [])
                         if e.get("class") == "STAR")
    return stars


def _statement_name(statement) -> str:
    words = statement.query.split(None, 2)
    word = words[0].upper() if words else ""
    if word == "FORCE" and len(words) > 1:
        word = words[1].upper()
    if not word.isalpha() or word == "WITH":
        word = {"VARIABLE_SET": "SET", "MULTI": "PIVOT"}.get(statement.type.name,
                                                            statement.type.name)
    return word


def statement_problems(con: duckdb.DuckDBPyConnection, text: str, tree: dict
                        ) -> list[tuple[int, str]]:
    """(offset, message) when ``text`` is not exactly one read-only SELECT (per DuckDB)."""
    if tree.get("error") and tree.get("error_type") == "parser":
        message = str(tree.get("error_message") or "cannot parse")
        if not message.startswith("syntax error"):
            message = f"syntax error: {message}"
        return [(char_offset(text, int(tree.get("position") or 0)), message)]
    if not tree.get("error") and len(tree.get("statements", [])) == 1:
        return []
    try:
        statements = con.extract_statements(text)
    except duckdb.Error as err:
        return [(first_code_offset(text), f"syntax error: {str(err).splitlines()[0]}")]
    offsets, cursor = [], 0
    for statement in statements:
        query = statement.query.strip()
        found = text.find(query, cursor)
        # DuckDB 2.0.1 gives a statement with the comments before it: point at its code
        offsets.append(found + first_code_offset(query) if found >= 0
                       else first_code_offset(text))
        cursor = max(cursor, found + 1)
    for statement, offset in zip(statements, offsets, strict=True):
        if statement.type != duckdb.StatementType.SELECT:
            return [(offset, "only a read-only SELECT is allowed; found "
                             f"{_statement_name(statement)} statement")]
    if len(statements) == 1:  # one SELECT that DuckDB parses but cannot serialise: refuse it
        return [(offsets[0], f"DuckDB cannot inspect this query: {tree.get('error_message')}")]
    return [(offsets[1] if len(offsets) > 1 else first_code_offset(text),
             f"expected exactly one SELECT statement, found {len(statements)} statements")]
