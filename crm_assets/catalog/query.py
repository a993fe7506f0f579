"""What sqlglot says of a query: the tables it reads, its outputs, its fingerprint.

sqlglot parses each definition once; its tree gives the dependencies (CTE names excluded), the
output columns and the version (a fingerprint blind to layout). DuckDB's own parser has the last
word on what a query calls (:mod:`~crm_assets.catalog.parse_tree`).
"""

from __future__ import annotations

import hashlib

from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope
from sqlglot.tokens import Token, TokenType

from crm_assets.catalog.definition import DUCKDB


def find_tables(expression: exp.Expression) -> list[exp.Table]:
    """Tables a query reads, CTE names excluded, including those in nested subqueries.

    Follows SQLMesh's ``find_tables``: walk every scope and keep the sources that are real tables,
    so a CTE named like a real table shadows it, as it does when the query runs.
    """
    tables: dict[int, exp.Table] = {}
    try:
        scopes = traverse_scope(expression)
    except Exception:  # noqa: BLE001 - sqlglot cannot scope some DuckDB syntax; fall back below
        scopes = []
    if scopes:
        for scope in scopes:
            for source in scope.sources.values():
                if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier):
                    tables[id(source)] = source
        return list(tables.values())
    ctes = {cte.alias_or_name.lower() for cte in expression.find_all(exp.CTE)}
    return [
        t for t in expression.find_all(exp.Table)
        if isinstance(t.this, exp.Identifier) and not (not t.db and t.name.lower() in ctes)
    ]


def fingerprint(expression: exp.Expression) -> str:
    """sha256 of the normalised AST: blind to whitespace, comments, keyword case and quoting.

    The AST is rendered as DuckDB SQL with identifiers lower-cased and all quoted (identifiers are
    case-insensitive in DuckDB) and without comments; sqlglot's rendering keeps no layout. The
    aliases of the output keep their case, since DuckDB publishes them as written (``as Orders``
    makes a column ``Orders``, which BI tools and Parquet readers see; an unaliased column keeps
    its table's name, whatever case the query wrote it in). No copy is made:
    identifiers are lower-cased in place for the rendering and then restored, and the DuckDB
    generator has no preprocessing step that would change the tree.
    """
    outputs = set()  # output aliases keep their case: DuckDB publishes them as written
    outer = outer_select(expression)
    for projection in outer.expressions if outer is not None else []:
        alias = projection.args.get("alias") if isinstance(projection, exp.Alias) else None
        if isinstance(alias, exp.Identifier):
            outputs.add(id(alias))
    identifiers = [(node, node.this) for node in expression.find_all(exp.Identifier)
                   if isinstance(node.this, str) and id(node) not in outputs]
    for node, name in identifiers:
        node.args["this"] = name.lower()
    try:
        rendered = DUCKDB.generator(identify=True, normalize=False, comments=False).generate(
            expression, copy=False)
    finally:
        for node, name in identifiers:
            node.args["this"] = name
    return hashlib.sha256(rendered.encode("utf-8")).hexdigest()


def body_end(tokens: list[Token], text: str) -> int:
    """End offset of the query: after its last token, trailing ``;`` (and comments) dropped."""
    i = len(tokens) - 1
    while i >= 0 and tokens[i].token_type == TokenType.SEMICOLON:
        i -= 1
    return tokens[i].end + 1 if i >= 0 else 0


def statement_body(text: str) -> str:
    """The query text without a trailing ``;`` (and anything after it), comments kept."""
    tokens = DUCKDB.tokenize(text)
    return text[:body_end(tokens, text)] if tokens else text


def final_select_offset(tokens: list[Token], default: int) -> int:
    """Offset of the outermost SELECT keyword (after the CTEs), for messages about the output."""
    depth = 0
    for token in tokens:
        kind = token.token_type
        if kind == TokenType.L_PAREN:
            depth += 1
        elif kind == TokenType.R_PAREN:
            depth -= 1
        elif kind == TokenType.SELECT and depth == 0:
            return token.start
    return default


def outer_select(statement: exp.Expression) -> exp.Select | None:
    node = statement
    while True:
        if isinstance(node, exp.Select):
            return node
        if isinstance(node, exp.SetOperation):
            node = node.this
        elif isinstance(node, exp.Subquery):
            node = node.this
        else:
            return None


def start_offset(node: exp.Expression | None) -> int | None:
    if node is None:
        return None
    ident = node if isinstance(node, exp.Identifier) else node.find(exp.Identifier)
    start = ident.meta.get("start") if ident is not None else None
    return int(start) if start is not None else None
