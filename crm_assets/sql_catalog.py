"""The SQL catalogue: every ``sql/<layer>/<name>.sql`` file is one definition of ``<layer>.<name>``.

Loading a catalogue never needs a warehouse. :func:`load_catalog` reads the files and checks each
with DuckDB's own parser (exactly one read-only ``SELECT``; the functions and table functions it
calls, against the allow-list of :mod:`crm_assets.functions`; no string used as a table) and with
sqlglot (dependencies, output columns, fingerprint). It then binds every definition, in dependency
order, in an in-memory DuckDB over empty tables typed by the input contracts: DuckDB itself reports
unknown tables and columns and gives every output schema, which becomes the empty table the next
definitions bind against. That database can read no file and no Python variable, so validating a
hostile file has no side effect. All problems of all files are collected in one pass as
``path:line:col: message``.

Within one process, a file whose text did not change since the last load is not parsed again, and
a query bound before over the same input schemas is not bound again (:func:`clear_parse_cache`).

A file starts with a comment header whose text (each line stripped of ``--``) is YAML::

    -- description: Customers who bought a croissant at least once.
    -- owner: growth@bakery.example
    -- kind: segment            # default from the folder
    -- tags: [behavioural, transactional]
    -- grain: [customer_id]
    -- columns:
    --   customer_id: The person.
    -- tests:
    --   - not_null: first_purchase_at
    select ...
"""

from __future__ import annotations

import difflib
import functools
import gc
import hashlib
import itertools
import json
import os
import pickle
import re
import sys
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import sqlglot
import yaml
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.optimizer.scope import traverse_scope
from sqlglot.tokens import Token, TokenType

from crm_assets.data_tests import TestDeclaration, TestDeclarationError, parse_declaration
from crm_assets.functions import ALLOWED_FUNCTIONS, ALLOWED_TABLE_FUNCTIONS, register_functions
from crm_assets.warehouse import LAYERS, SCHEMAS

DIALECT = "duckdb"
_DUCKDB = Dialect.get_or_raise(DIALECT)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster

KINDS = ("model", "segment", "event")
DEFAULT_KIND = {"staging": "model", "core": "model", "segments": "segment", "events": "event",
                "marts": "model"}
SQL_LAYERS = tuple(DEFAULT_KIND)
HEADER_KEYS = {"name", "description", "owner", "kind", "tags", "grain", "columns", "tests"}
REQUIRED_COLUMNS = {"segment": {"customer_id": None},
                    "event": {"customer_id": None, "occurred_at": "TIMESTAMP WITH TIME ZONE"}}
REJECT_COLUMNS = ("_problem", "_reject_reason")
"""Staging outputs that are split off into ``staging.rejects`` (see :mod:`crm_assets.factory`)."""
VERSION_COLUMNS = ("_source_file", "_row_number", "_loaded_at")
"""What a staging model outputting ``_problem`` needs so the factory can pick the latest version."""
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_NO_LOCATION = 2**64 - 1  # DuckDB's query_location of a node it did not read from the text

Schema = list[tuple[str, str]]
Position = tuple[int, int]


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one file, printable as ``path:line:col: message``."""

    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


class CatalogError(Exception):
    """Raised when the catalogue has problems; carries every one of them."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class Definition:
    """One SQL file: its header, its query, what it reads and what it produces.

    ``ast`` is sqlglot's parse of the query (``None`` when the file is not a valid query); it may
    be shared between loads of an unchanged file (see :func:`clear_parse_cache`), so treat it as
    read-only and ``.copy()`` it to transform it. A definition restored from the on-disk cache
    parses its query again the first time ``ast`` is asked for.
    """

    path: Path
    display_path: str
    layer: str
    name: str
    text: str
    body: str = ""
    header: dict = field(default_factory=dict)
    kind: str = "model"
    deps: list[str] = field(default_factory=list)
    version: str = ""
    schema: Schema = field(default_factory=list)
    _ast: exp.Expression | None = field(default=None, repr=False, compare=False)
    # where things are in ``text``, for messages: header keys and ``tests[i]`` entries (line, col),
    # the first reference to each dependency, each output column and the final SELECT (offsets)
    positions: dict[str, Position] = field(default_factory=dict, repr=False)
    dep_offsets: dict[str, int] = field(default_factory=dict, repr=False)
    output_offsets: dict[str, int] = field(default_factory=dict, repr=False)
    select_offset: int = field(default=0, repr=False)
    # the data tests of the header (grain tests first), each with where it is declared
    declarations: list[tuple[TestDeclaration, Position]] = field(default_factory=list, repr=False)

    @property
    def table(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def uses_as_of(self) -> bool:
        """Whether the query calls ``as_of_date()`` or ``as_of_end()`` (its result depends on the
        as-of date of the run)."""
        return self.ast is not None and any(
            f.name.lower() in ("as_of_date", "as_of_end") for f in self.ast.find_all(exp.Anonymous))

    @property
    def splits_rejects(self) -> bool:
        """A staging model whose rows with a reason go to ``staging.rejects``: it outputs
        ``_problem`` (the factory keeps the latest version of each grain) or ``_reject_reason``."""
        return self.layer == "staging" and any(n in REJECT_COLUMNS for n, _ in self.schema)

    @property
    def published_schema(self) -> Schema:
        """The columns of the table the factory writes (without the reject columns)."""
        if not self.splits_rejects:
            return list(self.schema)
        return [(n, t) for n, t in self.schema if n not in REJECT_COLUMNS]

    @property
    def ast(self) -> exp.Expression | None:
        if self._ast is None and self.version:  # a valid query, restored from the disk cache
            self._ast = _DUCKDB.parse(self.body)[0]
        return self._ast

    @property
    def description(self) -> str:
        return str(self.header.get("description") or "").strip()

    @property
    def owner(self) -> str | None:
        return self.header.get("owner")

    @property
    def tags(self) -> list[str]:
        tags = self.header.get("tags") or []
        return [tags] if isinstance(tags, str) else [str(t) for t in tags]

    @property
    def grain(self) -> list[str]:
        grain = self.header.get("grain")
        if grain is None:
            return ["customer_id"] if self.kind == "segment" else []
        return [grain] if isinstance(grain, str) else [str(g) for g in grain]

    @property
    def column_docs(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.header.get("columns") or {}).items()}

    @property
    def tests(self) -> list:
        return list(self.header.get("tests") or [])


@dataclass
class Catalog:
    """Every definition, in dependency order, and the tables they may read that are not SQL."""

    definitions: list[Definition]
    external: dict[str, Schema]
    problems: list[Problem]
    parsed: int = 0
    """Files this load parsed and checked; the others came from a cache (in memory or on disk)."""
    bound: int = 0
    """Queries this load bound in DuckDB; the others' schemas came from a cache."""
    _index: dict[str, Definition] = field(default_factory=dict, init=False, repr=False,
                                          compare=False)

    def by_table(self) -> dict[str, Definition]:
        """``{"segments.x": definition}``; a fresh dict, built once per list of definitions."""
        if len(self._index) != len(self.definitions) or any(
                self._index.get(d.table) is not d for d in self.definitions[-1:]):
            self._index = {d.table: d for d in self.definitions}
        return dict(self._index)

    def schema_of(self, table: str) -> Schema:
        if table in self.external:
            return self.external[table]
        if self._index.get(table) is None or len(self._index) != len(self.definitions):
            self.by_table()
        return self._index[table].published_schema

    def raise_for_problems(self) -> None:
        if self.problems:
            raise CatalogError(self.problems)

    def downstream(self, tables: Iterable[str]) -> list[str]:
        """Tables that read any of ``tables``, directly or not (``tables`` included), in order."""
        hit = set(tables)
        for d in self.definitions:  # dependency order, so one pass is enough
            if hit.intersection(d.deps):
                hit.add(d.table)
        return [d.table for d in self.definitions if d.table in hit]


# --------------------------------------------------------------------------------------------
# positions


def _line_col(text: str, offset: int) -> Position:
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def _first_code_offset(text: str, default: int = 0) -> int:
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


def _char_offset(text: str, byte_offset: int) -> int:
    """DuckDB reports positions in UTF-8 bytes; messages count characters."""
    if byte_offset < 0 or byte_offset == _NO_LOCATION:
        return -1
    if text.isascii():
        return byte_offset
    return len(text.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))


# --------------------------------------------------------------------------------------------
# header


class HeaderError(ValueError):
    """The comment header cannot be read; ``line`` and ``col`` point into the file."""

    def __init__(self, line: int, col: int, message: str):
        super().__init__(message)
        self.line, self.col, self.message = line, col, message


_HEADER_START = re.compile(r"[A-Za-z_][\w-]*[ \t]*:(\s|$)")
_KNOWN_KEY = re.compile(rf"({'|'.join(sorted(HEADER_KEYS))})[ \t]*:(\s|$)")


def parse_header(text: str) -> tuple[dict, dict[str, Position]]:
    """The YAML of the leading ``--`` comment block and where each key (and test entry) is.

    The block is a header when its first line reads ``key: ...`` or any line starts with a
    header key (``description:``, ``tests:``...); any other leading comment (say
    ``-- delete from x``, or prose) is just a comment. Positions are ``(line, col)`` in the file,
    keyed by header key and by ``tests[i]`` for the i-th entry of ``tests``.

    Raises:
        HeaderError: the block is not valid YAML, not a mapping, or repeats a key.
    """
    block: list[str] = []
    starts: list[int] = []
    for line in text.split("\n"):
        stripped = line.lstrip()
        if not stripped.startswith("--"):
            break
        start = len(line) - len(stripped) + 2
        if line[start:start + 1] == " ":
            start += 1
        block.append(line[start:].rstrip("\r"))
        starts.append(start)
    first = next((b for b in block if b.strip()), "")
    if not _HEADER_START.match(first) and not any(_KNOWN_KEY.match(b) for b in block):
        return {}, {}  # prose or commented-out SQL, not a header

    def pos(mark) -> Position:
        if mark is None:
            return 1, 1
        line = min(mark.line, len(starts) - 1)
        return line + 1, starts[line] + mark.column + 1

    loader = _YAML_LOADER("\n".join(block))
    try:
        node = loader.get_single_node()
        header = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        problem = getattr(err, "problem", None) or str(err).split("\n")[0]
        raise HeaderError(*pos(mark), f"header is not valid YAML: {problem}") from None
    finally:
        loader.dispose()
    if not isinstance(header, dict) or not isinstance(node, yaml.MappingNode):
        raise HeaderError(1, starts[0] + 1, "header must be YAML 'key: value' lines")
    positions: dict[str, Position] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key in positions:
            raise HeaderError(*pos(key_node.start_mark), f"header key '{key}' appears twice")
        positions[key] = pos(key_node.start_mark)
        if key == "tests" and isinstance(value_node, yaml.SequenceNode):
            for i, item in enumerate(value_node.value):
                positions[f"tests[{i}]"] = pos(item.start_mark)
    return header, positions


# --------------------------------------------------------------------------------------------
# sqlglot: statement, dependencies, fingerprint


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
    outer = _outer_select(expression)
    for projection in outer.expressions if outer is not None else []:
        alias = projection.args.get("alias") if isinstance(projection, exp.Alias) else None
        if isinstance(alias, exp.Identifier):
            outputs.add(id(alias))
    identifiers = [(node, node.this) for node in expression.find_all(exp.Identifier)
                   if isinstance(node.this, str) and id(node) not in outputs]
    for node, name in identifiers:
        node.args["this"] = name.lower()
    try:
        rendered = _DUCKDB.generator(identify=True, normalize=False, comments=False).generate(
            expression, copy=False)
    finally:
        for node, name in identifiers:
            node.args["this"] = name
    return hashlib.sha256(rendered.encode("utf-8")).hexdigest()


def _body_end(tokens: list[Token], text: str) -> int:
    """End offset of the query: after its last token, trailing ``;`` (and comments) dropped."""
    i = len(tokens) - 1
    while i >= 0 and tokens[i].token_type == TokenType.SEMICOLON:
        i -= 1
    return tokens[i].end + 1 if i >= 0 else 0


def _statement_body(text: str) -> str:
    """The query text without a trailing ``;`` (and anything after it), comments kept."""
    tokens = _DUCKDB.tokenize(text)
    return text[:_body_end(tokens, text)] if tokens else text


def _final_select_offset(tokens: list[Token], default: int) -> int:
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


def _outer_select(statement: exp.Expression) -> exp.Select | None:
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


def _start(node: exp.Expression | None) -> int | None:
    if node is None:
        return None
    ident = node if isinstance(node, exp.Identifier) else node.find(exp.Identifier)
    start = ident.meta.get("start") if ident is not None else None
    return int(start) if start is not None else None


# --------------------------------------------------------------------------------------------
# DuckDB's parser: statement kinds, functions and table functions


def _serialize(con: duckdb.DuckDBPyConnection, texts: list[str]) -> list[dict]:
    """DuckDB's parse of each text as JSON, in one call (``json_serialize_sql``)."""
    if not texts:
        return []
    raw = con.execute(
        "SELECT list_transform(?::VARCHAR[], lambda t: json_serialize_sql(t, skip_null := true, "
        "skip_empty := true))", [texts]).fetchall()[0][0]  # drained: no open transaction
    return [json.loads(r) for r in raw]


def _walk_references(tree) -> list[tuple[str, str, int]]:
    """(kind, name, byte offset) of every function, table function and table in a parse tree."""
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
        elif node_type == "BASE_TABLE":
            name = f"{node.get('schema_name', '')}.{node.get('table_name', '')}"
            if node.get("catalog_name"):
                name = f"{node['catalog_name']}.{name}"
            found.append(("table", name, int(node.get("query_location", -1))))
        stack.extend(v for v in node.values() if type(v) is dict or type(v) is list)
    return found


def _outer_stars(tree: dict) -> list[int]:
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


def _statement_problems(con: duckdb.DuckDBPyConnection, text: str, tree: dict
                        ) -> list[tuple[int, str]]:
    """(offset, message) when ``text`` is not exactly one read-only SELECT (per DuckDB)."""
    if tree.get("error") and tree.get("error_type") == "parser":
        message = str(tree.get("error_message") or "cannot parse")
        if not message.startswith("syntax error"):
            message = f"syntax error: {message}"
        return [(_char_offset(text, int(tree.get("position") or 0)), message)]
    if not tree.get("error") and len(tree.get("statements", [])) == 1:
        return []
    try:
        statements = con.extract_statements(text)
    except duckdb.Error as err:
        return [(_first_code_offset(text), f"syntax error: {str(err).splitlines()[0]}")]
    offsets, cursor = [], 0
    for statement in statements:
        found = text.find(statement.query.strip(), cursor)
        offsets.append(found if found >= 0 else _first_code_offset(text))
        cursor = max(cursor, found + 1)
    for statement, offset in zip(statements, offsets, strict=True):
        if statement.type != duckdb.StatementType.SELECT:
            return [(offset, "only a read-only SELECT is allowed; found "
                             f"{_statement_name(statement)} statement")]
    if len(statements) == 1:  # one SELECT that DuckDB parses but cannot serialise: refuse it
        return [(offsets[0], f"DuckDB cannot inspect this query: {tree.get('error_message')}")]
    return [(offsets[1] if len(offsets) > 1 else _first_code_offset(text),
             f"expected exactly one SELECT statement, found {len(statements)} statements")]


# --------------------------------------------------------------------------------------------
# one file


def discover(sql_dir: Path, paths: Iterable[Path] | None = None) -> list[Path]:
    """The files of ``sql_dir`` (sorted), then the extra ``paths`` not among them (sorted).

    The order matters for duplicates: a file of the catalogue wins over an extra one.
    """
    files = sorted({p.resolve() for p in sql_dir.glob("*/*.sql")})
    extra = {Path(p).resolve() for p in paths or [] if Path(p).suffix == ".sql"}
    return files + sorted(extra - set(files))


def _display(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it is below it; both already resolved."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _check_file(d: Definition, con: duckdb.DuckDBPyConnection, tree: dict | None
                ) -> list[tuple[int, int, str]]:
    """Everything that can be said of one file on its own, as (line, col, message).

    ``tree`` is DuckDB's parse of ``d.text`` (:func:`_serialize`), ``None`` when the file name
    already disqualifies the file.
    """
    problems: list[tuple[int, int, str]] = []
    text = d.text

    def problem(where: int | Position | None, message: str) -> None:
        if where is None:
            where = _first_code_offset(text)
        line, col = where if isinstance(where, tuple) else _line_col(text, where)
        problems.append((line, col, message))

    if d.layer not in SQL_LAYERS:
        problem((1, 1), f"unknown layer folder '{d.layer}'; expected one of "
                        f"{', '.join(SQL_LAYERS)}")
        return problems
    if not _NAME.fullmatch(d.name):
        problem((1, 1), f"file name '{d.name}' must be lower_snake_case (it becomes a table name)")
        return problems

    try:
        header, positions = parse_header(text)
    except HeaderError as err:
        problem((err.line, err.col), err.message)
        return problems
    d.header, d.positions = header, positions
    at = positions.get
    for key in header:
        if key not in HEADER_KEYS:
            problem(at(str(key)), f"unknown header key '{key}'; allowed: "
                                  f"{', '.join(sorted(HEADER_KEYS))}")
    if header.get("name") not in (None, d.name):
        problem(at("name"), f"header name '{header['name']}' does not match the file name "
                            f"'{d.name}'")
    for key, ok, expected in (
        ("description", lambda v: isinstance(v, str), "a text"),
        ("owner", lambda v: isinstance(v, str), "a text"),
        ("tags", lambda v: isinstance(v, str) or (isinstance(v, list) and all(
            isinstance(t, str) for t in v)), "a tag or a list of tags"),
        ("grain", lambda v: isinstance(v, str) or (isinstance(v, list) and v and all(
            isinstance(t, str) for t in v)), "a column name or a list of them"),
        ("columns", lambda v: isinstance(v, dict), "a mapping of column: description"),
        ("tests", lambda v: isinstance(v, list), "a list of tests"),
    ):
        if header.get(key) is not None and not ok(header[key]):
            problem(at(key), f"header '{key}' must be {expected}, got {header[key]!r}")
            header.pop(key)  # so the properties above see a sane header
    d.kind = str(header.get("kind") or DEFAULT_KIND[d.layer])
    if d.kind not in KINDS:
        problem(at("kind"), f"unknown kind '{d.kind}'; expected one of {', '.join(KINDS)}")
        return problems

    grain_at = at("grain") or (1, 1)
    if d.grain:
        d.declarations.append((parse_declaration({"unique": d.grain}), grain_at))
        d.declarations.append((parse_declaration({"not_null": d.grain}), grain_at))
    for i, entry in enumerate(d.tests):
        try:
            decl = parse_declaration(entry)
        except TestDeclarationError as err:
            problem(at(f"tests[{i}]") or at("tests"), f"bad test: {err}")
            continue
        if decl.name not in {x.name for x, _ in d.declarations}:
            d.declarations.append((decl, at(f"tests[{i}]") or at("tests") or (1, 1)))

    if _first_code_offset(text, -1) < 0:
        problem((1, 1), "file holds no query; expected one SELECT statement")
        return problems
    assert tree is not None
    for offset, message in _statement_problems(con, text, tree):
        problem(offset, message)
        return problems

    try:
        tokens = _DUCKDB.tokenize(text)
        statement = _DUCKDB.parser().parse(tokens, text)[0]
    except (ParseError, TokenError) as err:
        first = err.errors[0] if isinstance(err, ParseError) and err.errors else {}
        desc = str(first.get("description") or err).split("\n")[0]
        problem((int(first.get("line") or 1), int(first.get("col") or 1)),
                f"sqlglot cannot parse this query (it needs to, for dependencies and versions): "
                f"{desc}")
        return problems
    if isinstance(statement, exp.Command):
        problem(None, "sqlglot cannot parse this query (it needs to, for dependencies and "
                      "versions): unsupported syntax")
        return problems
    if not isinstance(statement, exp.Query):  # DESCRIBE, SUMMARIZE, SHOW: DuckDB calls them SELECT
        word = text[_first_code_offset(text):].split(None, 1)[0].upper()
        problem(None, f"only a read-only SELECT is allowed; found {word} statement")
        return problems
    d.body = text[:_body_end(tokens, text)]
    d.select_offset = _final_select_offset(tokens, _first_code_offset(text))

    # functions, table functions and strings used as tables, as DuckDB reads them
    string_tables: set[int] = set()
    duck_tables: dict[str, int] = {}
    for kind, name, byte_offset in _walk_references(tree["statements"]):
        offset = _char_offset(text, byte_offset)
        if kind == "table_function" and name not in ALLOWED_TABLE_FUNCTIONS:
            problem(offset, f"table function '{name}()' is not allowed: a definition may read only "
                            "catalogue tables (no files, no other databases)")
        elif kind == "function" and name not in ALLOWED_FUNCTIONS:
            problem(offset, f"function '{name}()' is not on the allow-list of SQL functions")
        elif kind == "table" and 0 <= offset < len(text) and text[offset] == "'":
            string_tables.add(offset)
            problem(offset, f"a string used as a table ({name.lstrip('.')!r}): a definition may "
                            "read only catalogue tables, not files")
        elif kind == "table" and not name.startswith("."):
            duck_tables.setdefault(name.lower(), offset)

    # dependencies, as sqlglot reads them (CTE names are not dependencies)
    for table in find_tables(statement):
        start = _start(table.parts[0])
        offset = start if start is not None else _first_code_offset(text)
        if offset in string_tables or offset - 1 in string_tables:
            continue
        if table.catalog:
            problem(offset, f"table '{table.sql(dialect=DIALECT)}' names a database; "
                            "a definition may read only catalogue tables")
        elif not table.db:
            problem(offset, f"table '{table.name}' must be qualified with its layer "
                            f"(e.g. staging.{table.name})")
        else:
            d.dep_offsets.setdefault(f"{table.db.lower()}.{table.name.lower()}", offset)
    for name, offset in duck_tables.items():  # belt and braces: DuckDB's parser has the last word
        if name.count(".") == 1 and not any(p in string_tables for p in (offset, offset - 1)):
            d.dep_offsets.setdefault(name, offset)
    d.deps = sorted(d.dep_offsets)

    # the output: no SELECT * in segments and events, no duplicate names
    if d.kind in ("segment", "event"):
        for byte_offset in _outer_stars(tree):
            offset = _char_offset(text, byte_offset)
            problem(offset if offset >= 0 else d.select_offset,
                    f"SELECT * is not allowed in a {d.kind}: list the output columns")
    outer = _outer_select(statement)
    for projection in (outer.expressions if outer is not None else []):
        name = projection.alias_or_name
        if not name or isinstance(projection, exp.Star) or name == "*":
            continue
        where = _start(projection.args.get("alias")) if isinstance(projection, exp.Alias) else None
        where = where if where is not None else _start(projection)
        if name.lower() in d.output_offsets:
            problem(where, f"duplicate output column '{name}'")
        else:
            d.output_offsets[name.lower()] = where if where is not None else d.select_offset

    d._ast = statement
    d.version = fingerprint(statement)
    return problems


# --------------------------------------------------------------------------------------------
# the graph


def _graph_problems(defs: list[Definition], external: Mapping[str, Schema]
                    ) -> tuple[list[Problem], list[Definition]]:
    """Problems between files (duplicates, unknown tables, layers, cycles), and the duplicates.

    A duplicate is a file defining a table that an earlier file (or Python code) already
    defines; it is reported and left out of the catalogue, so the files reading that table are
    still checked against the first definition.
    """
    problems: list[Problem] = []
    by_table: dict[str, Definition] = {}
    duplicates: list[Definition] = []
    for d in defs:
        if d.table in external:
            problems.append(Problem(d.display_path, 1, 1, f"duplicate definition of {d.table}: it "
                                    "is built by Python code (ingest or identity)"))
            duplicates.append(d)
        elif d.table in by_table:
            problems.append(Problem(d.display_path, 1, 1, f"duplicate definition of {d.table}: "
                                    f"also defined by {by_table[d.table].display_path}"))
            duplicates.append(d)
        else:
            by_table[d.table] = d
    known = sorted({*by_table, *external})
    for d in defs:
        if by_table.get(d.table) is not d:
            continue
        for dep in list(d.deps):
            schema = dep.split(".")[0]
            offset = d.dep_offsets.get(dep)
            where = _line_col(d.text, offset if offset is not None else d.select_offset)
            if dep == d.table:
                problems.append(Problem(d.display_path, *where, f"{d.table} reads itself"))
                d.deps.remove(dep)
            elif dep not in by_table and dep not in external:
                hint = "" if schema in SCHEMAS else f" (unknown layer '{schema}')"
                close = difflib.get_close_matches(dep, known, n=1, cutoff=0.8)
                hint += f"; did you mean {close[0]}?" if close else ""
                problems.append(Problem(d.display_path, *where,
                                        f"table {dep} is not defined by any file or source{hint}"))
                d.deps.remove(dep)
            elif schema in LAYERS and LAYERS.index(schema) > LAYERS.index(d.layer):
                problems.append(Problem(d.display_path, *where,
                                        f"{d.layer} may not read {dep} from the later layer "
                                        f"'{schema}'"))
    for cycle in _cycles(by_table):
        names = " -> ".join(by_table[t].display_path for t in [*cycle, cycle[0]])
        for t, nxt in zip(cycle, [*cycle[1:], cycle[0]], strict=True):
            d = by_table[t]
            where = _line_col(d.text, d.dep_offsets.get(nxt, _first_code_offset(d.text)))
            problems.append(Problem(d.display_path, *where, f"dependency cycle: {names}"))
    return problems, duplicates


def _cycles(by_table: dict[str, Definition]) -> list[list[str]]:
    """Strongly connected components of more than one node, Tarjan's algorithm.

    Each is returned in the order of its edges (a reads b reads ... reads a), from its smallest
    name, so messages name the files in the order the cycle runs.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in by_table[v].deps:
            if w not in by_table:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(_cycle_order(set(component), by_table))

    for v in sorted(by_table):
        if v not in index:
            visit(v)
    return result


def _cycle_order(component: set[str], by_table: dict[str, Definition]) -> list[str]:
    """A path through the component following its edges from its smallest table back to it."""
    start = min(component)
    path, seen = [start], {start}
    while True:
        nxt = [w for w in sorted(by_table[path[-1]].deps) if w in component]
        step = next((w for w in nxt if w not in seen), None)
        if step is None:
            return path
        path.append(step)
        seen.add(step)


def _toposort(defs: list[Definition]) -> list[Definition]:
    by_table = {d.table: d for d in defs}
    order: list[Definition] = []
    state: dict[str, int] = {}

    def visit(d: Definition) -> None:
        if state.get(d.table):
            return  # done, or on the path (a cycle, reported elsewhere)
        state[d.table] = 1
        for dep in d.deps:
            if dep in by_table:
                visit(by_table[dep])
        state[d.table] = 2
        order.append(d)

    for d in sorted(defs, key=lambda d: (LAYERS.index(d.layer) if d.layer in LAYERS else 99,
                                         d.name)):
        visit(d)
    return order


# --------------------------------------------------------------------------------------------
# DuckDB: bind every definition over empty typed tables


_DUCK_LINE = re.compile(r"LINE (\d+): (.*)\n( *)(\^+)")


def _duckdb_position(query: str, message: str, prefix: int) -> Position | None:
    """(line, col) in ``query[prefix:]`` of DuckDB's ``LINE n: ...`` caret, if it has one.

    DuckDB shortens long lines to a window with ``...``: the window is found in the real line.
    """
    match = _DUCK_LINE.search(message)
    if not match:
        return None
    line = int(match.group(1))
    shown = match.group(2)
    caret = len(match.group(3)) - len(f"LINE {match.group(1)}: ")
    lead = 3 if shown.startswith("...") else 0
    core = shown[lead:]
    core = core[:-3] if core.endswith("...") else core
    lines = query.split("\n")
    real = lines[line - 1] if 0 < line <= len(lines) else ""
    found = real.find(core) if core else 0
    col = (found if found >= 0 else 0) + caret - lead + 1
    if line == 1:
        col -= prefix
    return line, max(col, 1)


def _duckdb_message(err: Exception) -> str:
    first = str(err).split("\n")[0]
    first = re.sub(r"^(\w+ )?Error: ", "", first).rstrip("!")
    if "does not exist" in first and first.startswith("Table with name"):
        first = first.replace("Table with name", "unknown table")
    return first[0].lower() + first[1:] if first else str(err)


class _Validator:
    """The in-memory DuckDB of one load, opened only when something must be asked of DuckDB.

    A load whose files and schemas all come from the caches never opens it.
    """

    def __init__(self, as_of: date | None):
        self.as_of = as_of
        self._con: duckdb.DuckDBPyConnection | None = None
        self._database = ""
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._pool: ThreadPoolExecutor | None = None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con, self._database = _validation_connection(self.as_of)
        return self._con

    def map(self, fn, chunks: list[list]) -> list[list]:
        """``fn(cursor, chunk)`` for each chunk, on one cursor per chunk, the chunks in parallel.

        DuckDB releases the GIL while it parses and binds, so two cursors bind about 1.75 times
        as fast as one on two cores. Each cursor is a connection of its own to the same database
        and has the project's functions (macros are per connection).
        """
        if len(chunks) == 1:
            return [fn(self.con, chunks[0])]
        while len(self._cursors) < len(chunks):
            cursor = self.con.cursor()
            cursor.execute("SET python_enable_replacements = false")
            cursor.execute("SET TimeZone = 'UTC'")
            cursor.execute(f"USE {self._database}")
            register_functions(cursor, self.as_of, udfs=False)  # the instance has them
            self._cursors.append(cursor)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(_THREADS, thread_name_prefix="crm-catalog")
        return list(self._pool.map(fn, self._cursors, chunks))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        for cursor in self._cursors:
            cursor.close()
        if self._con is not None:
            _release(self._con, self._database)


_THREADS = max(1, min(4, os.cpu_count() or 1))
_PARALLEL_MIN = 16  # fewer queries than this are bound on one cursor: threads would cost more


def _chunks(items: list, min_size: int = _PARALLEL_MIN) -> list[list]:
    n = max(1, min(_THREADS, len(items) // min_size))
    return [items[i::n] for i in range(n)]


class _Binder:
    """Empty typed tables in the validation database, one for each table a query may read."""

    def __init__(self, validator: _Validator, schemas: dict[str, Schema]):
        self.validator = validator
        self.schemas = schemas
        self.created: set[str] = set()
        self.used: set[tuple] = set()  # the schema-cache keys this load used (for the disk cache)
        self.bound = 0  # definitions bound by DuckDB (not found in a cache)

    def ensure(self, tables: Iterable[str]) -> None:
        """Create (once) the empty table of each of ``tables`` whose schema is known."""
        ddl = []
        if not self.created:
            ddl.extend(f"CREATE SCHEMA IF NOT EXISTS {s}" for s in SCHEMAS)
        for table in tables:
            if table in self.created or table not in self.schemas:
                continue
            cols = ", ".join('"' + n.replace('"', '""') + f'" {t}' for n, t in self.schemas[table])
            ddl.append(f"CREATE TABLE {table} ({cols})")
            self.created.add(table)
        if ddl:
            self.validator.con.execute(";\n".join(ddl))

    def describe(self, query: str, tables: Iterable[str]) -> Schema:
        """The output schema of ``query``; raises duckdb.Error (with a LINE/caret if it can)."""
        self.ensure(tables)
        result = _describe(self.validator.con, query)
        if isinstance(result, duckdb.Error):
            raise result
        return result

    def describe_many(self, queries: list[tuple[str, list[str]]]) -> list[Schema | duckdb.Error]:
        """The output schema (or the error) of each independent ``(query, tables)``, in order."""
        self.ensure(t for _, tables in queries for t in tables)
        chunks = _chunks(list(enumerate(q for q, _ in queries)))
        results: list[Schema | duckdb.Error] = [[] for _ in queries]
        for chunk_results in self.validator.map(
                lambda con, chunk: [(i, _describe(con, q)) for i, q in chunk], chunks):
            for i, result in chunk_results:
                results[i] = result
        return results


def _describe(con: duckdb.DuckDBPyConnection, query: str) -> Schema | duckdb.Error:
    """The output schema of ``query`` bound (not run) on ``con``, or DuckDB's error."""
    try:
        relation = con.sql(query)  # binds without running
        return list(zip(relation.columns, (str(t) for t in relation.types), strict=True))
    except duckdb.Error as first:
        try:  # the relation API's errors carry no position; DESCRIBE's do
            con.execute("DESCRIBE " + query + "\n").fetchall()
        except duckdb.Error as err:
            return err
        return first


_SCHEMA_CACHE: OrderedDict[tuple, Schema] = OrderedDict()
_FILE_CACHE: OrderedDict[tuple, dict] = OrderedDict()
_CACHE_SIZE = 8192


def clear_parse_cache() -> None:
    """Forget every file parsed and every schema bound by earlier loads in this process.

    The on-disk cache (``cache_path`` of :func:`load_catalog`) is read again by the next load
    that names it; delete its file to start from nothing.
    """
    _FILE_CACHE.clear()
    _SCHEMA_CACHE.clear()
    _EXPRESSION_READS.clear()
    _DISK_SEEN.clear()


def _remember(cache: OrderedDict, key, value) -> None:
    cache[key] = value
    if len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)


def _levels(defs: list[Definition]) -> list[list[Definition]]:
    """``defs`` (in dependency order) grouped so that nothing reads a table of its own group."""
    depth: dict[str, int] = {}
    levels: list[list[Definition]] = []
    for d in defs:
        level = max((depth[dep] + 1 for dep in d.deps if dep in depth), default=0)
        depth[d.table] = level
        while len(levels) <= level:
            levels.append([])
        levels[level].append(d)
    return levels


def build_schemas(binder: _Binder, catalog_defs: list[Definition], skip: set[str]
                  ) -> list[Problem]:
    """Bind each definition over empty tables typed as its inputs; collect errors.

    Each definition's output schema is what DuckDB binds its query to; it becomes an empty table
    for the definitions that read it (a table rather than a view, so binding a query never binds
    everything upstream of it again). Definitions that do not read each other are bound in
    parallel. A schema already bound for the same query over the same input schemas (in this
    process, or found in the disk cache) is reused without asking DuckDB.
    """
    problems: list[Problem] = []
    broken = set(skip)

    def add(d: Definition, where: int | Position, message: str) -> None:
        line, col = where if isinstance(where, tuple) else _line_col(d.text, where)
        problems.append(Problem(d.display_path, line, col, message))

    def accept(d: Definition, schema: Schema) -> None:
        d.schema = list(schema)
        binder.schemas[d.table] = d.published_schema  # what readers of the table will find
        names = [n.lower() for n, _ in d.schema]
        types = {n.lower(): t for n, t in d.schema}
        dupes = sorted({n for n in names if names.count(n) > 1} - set(d.output_offsets))
        for name in dupes:
            add(d, d.select_offset, f"duplicate output column '{name}' (from a * expansion)")
        missing: set[str] = set()
        for column, required_type in REQUIRED_COLUMNS.get(d.kind, {}).items():
            if column not in types:
                add(d, d.select_offset, f"a {d.kind} must output a '{column}' column")
                missing.add(column)
            elif required_type and types[column] != required_type:
                add(d, d.output_offsets.get(column, d.select_offset),
                    f"'{column}' must be {required_type} (an instant, not a local time), "
                    f"found {types[column]}")
        if d.layer == "staging" and "_problem" in types:
            where = d.output_offsets.get("_problem", d.select_offset)
            if "_reject_reason" in types:
                add(d, where, "output '_problem' (the latest version of each grain is kept) or "
                              "'_reject_reason' (rows kept as they are), not both")
                missing.add("_reject_reason")
            if "grain" not in d.header:
                add(d, where, "a staging model that outputs '_problem' must declare its grain: "
                              "the latest version of each grain is kept")
                missing.add("grain")
            for column in VERSION_COLUMNS:
                if column not in types:
                    add(d, where, f"a staging model that outputs '_problem' must output "
                                  f"'{column}', to pick the latest version of each grain")
                    missing.add(column)
        if missing or dupes:
            broken.add(d.table)
        for column in d.grain:
            if column.lower() not in types and column not in missing:
                add(d, d.positions.get("grain", (1, 1)),
                    f"grain column '{column}' is not an output column")

    for level in _levels(catalog_defs):
        unbound: list[tuple[Definition, tuple]] = []
        for d in level:
            if d.table in broken:
                continue
            bad_deps = [dep for dep in d.deps if dep in broken]
            if bad_deps:
                add(d, d.dep_offsets.get(bad_deps[0], d.select_offset),
                    f"not checked: it reads {', '.join(bad_deps)}, which is invalid")
                broken.add(d.table)
                continue
            key = (d.body, tuple((dep, tuple(binder.schemas.get(dep, ()))) for dep in d.deps))
            schema = _SCHEMA_CACHE.get(key)
            if schema is None:
                unbound.append((d, key))
            else:
                binder.used.add(key)
                accept(d, schema)
        results = binder.describe_many([(d.body, d.deps) for d, _ in unbound]) if unbound else []
        binder.bound += len(unbound)
        for (d, key), result in zip(unbound, results, strict=True):
            if isinstance(result, duckdb.Error):
                message = str(result)
                where = _duckdb_position("DESCRIBE " + d.body, message, len("DESCRIBE "))
                add(d, where or _first_code_offset(d.text), _duckdb_message(result))
                broken.add(d.table)
                continue
            _remember(_SCHEMA_CACHE, key, result)
            binder.used.add(key)
            accept(d, result)
    for d in catalog_defs:
        if d.table not in broken:
            problems.extend(_test_problems(d, binder))
    return problems


def _test_problems(d: Definition, binder: _Binder) -> list[Problem]:
    """Each declared test must name output columns, known tables and allowed functions only."""
    problems: list[Problem] = []
    names = {n.lower() for n, _ in d.schema}
    for decl, where in d.declarations:
        def add(message: str, where: Position = where, decl: TestDeclaration = decl) -> None:
            problems.append(Problem(d.display_path, *where, f"test {decl.name}: {message}"))

        if decl.args.get("columns") == d.grain and decl.kind in ("unique", "not_null"):
            continue  # the grain, checked above
        for column in decl.columns:
            if column.lower() not in names:
                add(f"column '{column}' is not an output column of {d.table}")
        if decl.kind == "relationships":
            to, fld = decl.args["to"], decl.args["field"]
            if to not in binder.schemas:
                add(f"table {to} is not defined by any file or source")
            elif fld.lower() not in {n.lower() for n, _ in binder.schemas[to]}:
                add(f"column '{fld}' is not a column of {to}")
        elif decl.kind == "expression":
            message = _expression_problem(decl, d, binder)
            if message:
                add(message)
    return problems


def _expression_problem(decl: TestDeclaration, d: Definition, binder: _Binder) -> str | None:
    """Why the SQL of an ``expression`` test is not allowed, or None when it is."""
    sql = decl.failing_count_sql(d.table)
    key = ("expression", sql, tuple(d.schema))
    if key in _SCHEMA_CACHE:  # the same condition over the same columns, reading nothing else
        binder.used.add(key)
        return _SCHEMA_CACHE[key]
    message = _check_expression(sql, d, binder)
    if message is not None or not _EXPRESSION_READS.get(sql):
        _remember(_SCHEMA_CACHE, key, message)
        binder.used.add(key)
    return message


_EXPRESSION_READS: dict[str, bool] = {}


def _check_expression(sql: str, d: Definition, binder: _Binder) -> str | None:
    tree = _serialize(binder.validator.con, [sql])[0]
    if tree.get("error") or len(tree.get("statements", [])) != 1:
        detail = tree.get("error_message") if tree.get("error_type") == "parser" else None
        return "the expression must be one SQL condition" + (f" ({detail})" if detail else "")
    tables = []
    for kind, name, _ in _walk_references(tree["statements"]):
        if kind == "table_function" and name not in ALLOWED_TABLE_FUNCTIONS:
            return f"table function '{name}()' is not allowed"
        if kind == "function" and name not in ALLOWED_FUNCTIONS:
            return f"function '{name}()' is not on the allow-list of SQL functions"
        if kind == "table":
            if name.startswith(".") or name not in binder.schemas:
                return f"table '{name.lstrip('.')}' is not a catalogue table"
            tables.append(name)
    _EXPRESSION_READS[sql] = any(t != d.table for t in tables)
    try:
        binder.describe(sql, [d.table, *tables])
    except duckdb.Error as err:
        return _duckdb_message(err)
    return None


# --------------------------------------------------------------------------------------------
# loading


_INSTANCE: duckdb.DuckDBPyConnection | None = None
_INSTANCE_PID = 0
_INSTANCE_LOCK = threading.Lock()
_COUNTER = itertools.count()


def _validation_connection(as_of: date | None) -> tuple[duckdb.DuckDBPyConnection, str]:
    """A connection to a fresh, empty in-memory database, with the project's functions.

    One in-memory DuckDB instance serves every load in the process: its Python UDFs are
    registered once (DuckDB keeps them per instance; the macros are per connection, so each
    load's connection creates them), and each load gets its own attached
    ``:memory:`` database, dropped afterwards. The instance can read no file, no extension and
    no Python variable, so binding a query never has a side effect.
    """
    global _INSTANCE, _INSTANCE_PID
    with _INSTANCE_LOCK:
        if _INSTANCE is None or _INSTANCE_PID != os.getpid():  # never reuse one across a fork
            instance = duckdb.connect(":memory:")
            instance.execute("SET enable_external_access = false")
            instance.execute("SET autoinstall_known_extensions = false")
            instance.execute("SET autoload_known_extensions = false")
            _INSTANCE, _INSTANCE_PID = instance, os.getpid()
        con = _INSTANCE.cursor()
    database = f"catalog_{next(_COUNTER)}"
    con.execute("SET python_enable_replacements = false")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"ATTACH ':memory:' AS {database}")
    con.execute(f"USE {database}")
    register_functions(con, as_of)
    return con, database


def _release(con: duckdb.DuckDBPyConnection, database: str) -> None:
    try:
        con.execute("USE memory")
        con.execute(f"DETACH {database}")
    finally:
        con.close()


_CACHED_FIELDS = ("header", "positions", "kind", "body", "deps", "dep_offsets", "version", "_ast",
                  "output_offsets", "select_offset", "declarations")


def _checked(d: Definition, con: duckdb.DuckDBPyConnection, tree: dict | None,
             key: tuple) -> list[tuple[int, int, str]]:
    problems = _check_file(d, con, tree)
    snapshot = {f: getattr(d, f) for f in _CACHED_FIELDS}
    _remember(_FILE_CACHE, key, {"fields": snapshot, "problems": problems})
    return problems


def _restore(d: Definition, cached: dict) -> list[tuple[int, int, str]]:
    for name, value in cached["fields"].items():
        if isinstance(value, (list, dict)):
            value = type(value)(value)  # the graph step edits deps; keep the cache intact
        setattr(d, name, value)
    return cached["problems"]


def load_catalog(sql_dir: Path, external: Mapping[str, Schema], *,
                 paths: Iterable[Path] | None = None, root: Path | None = None,
                 as_of: date | None = None, cache_path: Path | None = None) -> Catalog:
    """Read, check and bind every definition under ``sql_dir`` (plus ``paths``).

    Args:
        sql_dir: the ``sql/`` folder; each ``<layer>/<name>.sql`` below it is a definition.
        external: tables built by Python code (raw ingest, identity), ``{"raw.orders": schema}``.
        paths: extra files to check (e.g. a file not yet moved into ``sql/``); their layer is
            their parent folder's name.
        root: paths in messages are relative to it (default: the parent of ``sql_dir``).
        as_of: the date ``as_of_date()`` returns while validating.
        cache_path: a file keeping, across processes, what each file's text and each query's
            input schemas gave (dbt's partial parsing, for every process that loads the
            definitions: the code server, each run and each step). ``None``: this process only.

    Returns:
        The catalogue, in dependency order, with every problem found (empty when all is well).
        Files unchanged since an earlier load (in this process, or in the disk cache) are not
        parsed again, and queries over unchanged input schemas are not bound again.
    """
    with _LOAD_LOCK:  # loads share the caches (and the GC switch): one at a time
        return _load(sql_dir, external, paths, (root or sql_dir.parent).resolve(), as_of,
                     cache_path)


_LOAD_LOCK = threading.RLock()


def _load(sql_dir: Path, external: Mapping[str, Schema], paths: Iterable[Path] | None,
          root: Path, as_of: date | None, cache_path: Path | None) -> Catalog:
    gc_was_enabled = gc.isenabled()
    gc.disable()  # parsing allocates many small objects; cyclic GC passes cost ~25% here
    if cache_path is not None:
        _read_disk_cache(cache_path)
    validator = _Validator(as_of)
    try:
        defs: list[Definition] = []
        problems: list[Problem] = []
        pending: list[tuple[Definition, tuple]] = []
        file_keys: list[tuple] = []
        for path in discover(sql_dir, paths):
            display = _display(path, root)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as err:
                problems.append(Problem(display, 1, 1, f"cannot read file: {err}"))
                continue
            d = Definition(path=path, display_path=display, layer=path.parent.name,
                           name=path.stem, text=text)
            key = (d.layer, d.name, hashlib.sha256(text.encode("utf-8")).hexdigest())
            file_keys.append(key)
            cached = _FILE_CACHE.get(key)
            if cached is not None:
                _FILE_CACHE.move_to_end(key)
                file_problems = _restore(d, cached)
                problems.extend(Problem(display, *p) for p in file_problems)
            else:
                pending.append((d, key))
            if d.layer in SQL_LAYERS and _NAME.fullmatch(d.name):
                defs.append(d)
        if pending:
            texts = _chunks([d.text for d, _ in pending])
            trees = [t for chunk in validator.map(_serialize, texts) for t in chunk]
            for (d, key), tree in zip([p for c in _chunks(pending) for p in c], trees,
                                      strict=True):
                problems.extend(Problem(d.display_path, *p)
                                for p in _checked(d, validator.con, tree, key))
        graph_problems, duplicates = _graph_problems(defs, external)
        problems.extend(graph_problems)
        defs = [d for d in defs if d not in duplicates]
        bad_paths = {p.path for p in problems}
        invalid = {d.table for d in defs if d.display_path in bad_paths}
        ordered = _toposort(defs)
        binder = _Binder(validator, dict(external))
        problems.extend(build_schemas(binder, ordered, invalid))
        if cache_path is not None:
            _write_disk_cache(cache_path, file_keys, binder.used)
    finally:
        validator.close()
        if gc_was_enabled:
            gc.enable()
    return Catalog(definitions=ordered, external=dict(external), problems=sorted(set(problems)),
                   parsed=len(pending), bound=binder.bound)


# --------------------------------------------------------------------------------------------
# the disk cache

_DISK_FORMAT = 1
_DISK_SEEN: dict[Path, tuple] = {}  # path -> (mtime_ns, size, keys) of what this process read


@functools.cache
def _code_salt() -> str:
    """What every cached result depends on besides the files: this package's code and the
    versions of Python, DuckDB, sqlglot and PyYAML (a change to any of them empties the cache)."""
    digest = hashlib.sha256(f"{_DISK_FORMAT} {sys.version} {duckdb.__version__} "
                            f"{sqlglot.__version__} {yaml.__version__}".encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _read_disk_cache(path: Path) -> None:
    """Add what ``path`` holds to this process's caches (once per version of the file).

    A missing, unreadable or foreign file (another version of the code) is ignored: the cache
    only ever saves work, it never decides anything.
    """
    try:
        stat = path.stat()
    except OSError:
        return
    seen = _DISK_SEEN.get(path)
    if seen is not None and seen[:2] == (stat.st_mtime_ns, stat.st_size):
        return
    try:
        with path.open("rb") as fh:
            data = pickle.load(fh)  # noqa: S301 - written by this module, under the project
        if data.get("salt") != _code_salt():
            return
        files, schemas = data["files"], data["schemas"]
    except Exception:  # noqa: BLE001 - a torn or foreign file is a cache miss, nothing more
        return
    for key, entry in files.items():
        _FILE_CACHE.setdefault(key, entry)
    for key, schema in schemas.items():
        _SCHEMA_CACHE.setdefault(key, schema)
    _DISK_SEEN[path] = (stat.st_mtime_ns, stat.st_size, frozenset(files) | frozenset(schemas))


def _write_disk_cache(path: Path, file_keys: list[tuple], schema_keys: set[tuple]) -> None:
    """Keep exactly what this load used in ``path``, unless that is what it already holds.

    The file is replaced atomically, so a process reading it at the same moment sees the old
    or the new one; a folder that cannot be written only costs the next process the work.
    """
    files = {k: _FILE_CACHE[k] for k in file_keys if k in _FILE_CACHE}
    files = {k: {"fields": {f: v for f, v in e["fields"].items() if f != "_ast"},
                 "problems": e["problems"]} for k, e in files.items()}
    schemas = {k: _SCHEMA_CACHE[k] for k in schema_keys if k in _SCHEMA_CACHE}
    keys = frozenset(files) | frozenset(schemas)
    seen = _DISK_SEEN.get(path)
    if seen is not None and seen[2] == keys:
        return
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp", delete=False) as fh:
            tmp = fh.name
            pickle.dump({"salt": _code_salt(), "files": files, "schemas": schemas}, fh,
                        protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        stat = path.stat()
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        return
    _DISK_SEEN[path] = (stat.st_mtime_ns, stat.st_size, keys)
