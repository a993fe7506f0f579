"""Everything that can be said of one SQL file on its own, before the graph and the binder.

:func:`check_file` runs the steps in order and stops at the first one that makes the rest
meaningless (a file in an unknown folder, an unreadable header, a query that is not one
``SELECT``). On the way it fills in the :class:`~crm_assets.catalog.definition.Definition`: header,
kind, declared tests, query body, dependencies, output positions and version.
"""

from __future__ import annotations

import re

import duckdb
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from crm_assets.catalog.data_tests import (
    TestDeclarationError,
    grain_declaration,
    parse_declaration,
)
from crm_assets.catalog.definition import (
    DEFAULT_KIND,
    DIALECT,
    DUCKDB,
    KINDS,
    SQL_LAYERS,
    Definition,
    Position,
)
from crm_assets.catalog.header import HEADER_KEYS, HeaderError, parse_header
from crm_assets.catalog.parse_tree import outer_stars, statement_problems, walk_references
from crm_assets.catalog.query import (
    body_end,
    final_select_offset,
    find_tables,
    fingerprint,
    outer_select,
    start_offset,
)
from crm_assets.catalog.text import char_offset, first_code_offset, line_col
from crm_assets.functions.allow_list import (
    ALLOWED_FUNCTIONS,
    ALLOWED_TABLE_FUNCTIONS,
    NOT_DETERMINISTIC,
)

NAME = re.compile(r"[a-z][a-z0-9_]*")
"""What a file name (and so a table name) must look like."""

FileProblem = tuple[int, int, str]

_HEADER_TYPES = (
    ("description", lambda v: isinstance(v, str), "a text"),
    ("owner", lambda v: isinstance(v, str), "a text"),
    ("tags", lambda v: isinstance(v, str) or (isinstance(v, list) and all(
        isinstance(t, str) for t in v)), "a tag or a list of tags"),
    ("grain", lambda v: isinstance(v, str) or (isinstance(v, list) and v and all(
        isinstance(t, str) for t in v)), "a column name or a list of them"),
    ("columns", lambda v: isinstance(v, dict), "a mapping of column: description"),
    ("tests", lambda v: isinstance(v, list), "a list of tests"),
    ("references", lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(t, str) for k, t in v.items()),
     "a mapping of column: staging table"),
    ("incremental", lambda v: isinstance(v, dict) and isinstance(v.get("from"), str)
     and set(v) <= {"from", "via", "removed"} and isinstance(v.get("via") or {}, dict)
     and isinstance(v.get("removed") or "", str),
     "{from: table, via: {table: column}, removed: table.column}"),
)


class _Report:
    """The problems of one file, each placed at an offset or a (line, col) of its text."""

    def __init__(self, text: str):
        self.text = text
        self.problems: list[FileProblem] = []

    def add(self, where: int | Position | None, message: str) -> None:
        if where is None:
            where = first_code_offset(self.text)
        line, col = where if isinstance(where, tuple) else line_col(self.text, where)
        self.problems.append((line, col, message))


def check_file(d: Definition, con: duckdb.DuckDBPyConnection, tree: dict | None
               ) -> list[FileProblem]:
    """Everything that can be said of one file on its own, as (line, col, message).

    ``tree`` is DuckDB's parse of ``d.text`` (:func:`~crm_assets.catalog.parse_tree.serialize`),
    ``None`` when the file name already disqualifies the file.
    """
    report = _Report(d.text)
    if not (_check_place(d, report) and _check_header(d, report)):
        return report.problems
    _declare_tests(d, report)
    statement = _parse_query(d, con, tree, report)
    if statement is None:
        return report.problems
    _check_references(d, tree, statement, report)
    _check_outputs(d, tree, statement, report)
    d._ast = statement
    d.version = fingerprint(statement)
    return report.problems


def _check_place(d: Definition, report: _Report) -> bool:
    """The folder must be a layer and the file name a table name."""
    if d.layer not in SQL_LAYERS:
        report.add((1, 1), f"unknown layer folder '{d.layer}'; expected one of "
                           f"{', '.join(SQL_LAYERS)}")
        return False
    if not NAME.fullmatch(d.name):
        report.add((1, 1), f"file name '{d.name}' must be lower_snake_case (it becomes a table "
                           "name)")
        return False
    return True


def _check_header(d: Definition, report: _Report) -> bool:
    """Read the header into ``d``; known keys only, each of the right type, a known kind."""
    try:
        header, positions = parse_header(d.text)
    except HeaderError as err:
        report.add((err.line, err.col), err.message)
        return False
    d.header, d.positions = header, positions
    at = positions.get
    for key in header:
        if key not in HEADER_KEYS:
            report.add(at(str(key)), f"unknown header key '{key}'; allowed: "
                                     f"{', '.join(sorted(HEADER_KEYS))}")
    if header.get("name") not in (None, d.path.stem):
        report.add(at("name"), f"header name '{header['name']}' does not match the file name "
                               f"'{d.path.stem}'")
    for key, ok, expected in _HEADER_TYPES:
        if header.get(key) is not None and not ok(header[key]):
            report.add(at(key), f"header '{key}' must be {expected}, got {header[key]!r}")
            header.pop(key)  # so the definition's properties see a sane header
    d.kind = str(header.get("kind") or DEFAULT_KIND[d.layer])
    if d.kind not in KINDS:
        report.add(at("kind"), f"unknown kind '{d.kind}'; expected one of {', '.join(KINDS)}")
        return False
    return True


def _declare_tests(d: Definition, report: _Report) -> None:
    """The grain's test (unique and not null, one check), then each ``tests:`` entry, with
    where it is declared."""
    at = d.positions.get
    grain_at = at("grain") or (1, 1)
    if d.grain:
        d.declarations.append((grain_declaration(d.grain), grain_at))
    for i, entry in enumerate(d.tests):
        try:
            decl = parse_declaration(entry)
        except TestDeclarationError as err:
            report.add(at(f"tests[{i}]") or at("tests"), f"bad test: {err}")
            continue
        if decl.name not in {x.name for x, _ in d.declarations}:
            d.declarations.append((decl, at(f"tests[{i}]") or at("tests") or (1, 1)))


def _parse_query(d: Definition, con: duckdb.DuckDBPyConnection, tree: dict | None,
                 report: _Report) -> exp.Query | None:
    """The query as sqlglot's tree, if the file is exactly one read-only SELECT; sets the body."""
    text = d.text
    if first_code_offset(text, -1) < 0:
        report.add((1, 1), "file holds no query; expected one SELECT statement")
        return None
    assert tree is not None
    for offset, message in statement_problems(con, text, tree):
        report.add(offset, message)
        return None
    try:
        tokens = DUCKDB.tokenize(text)
        statement = DUCKDB.parser().parse(tokens, text)[0]
    except (ParseError, TokenError) as err:
        first = err.errors[0] if isinstance(err, ParseError) and err.errors else {}
        desc = str(first.get("description") or err).split("\n")[0]
        report.add((int(first.get("line") or 1), int(first.get("col") or 1)),
                   "sqlglot cannot parse this query (it needs to, for dependencies and "
                   f"versions): {desc}")
        return None
    if isinstance(statement, exp.Command):
        report.add(None, "sqlglot cannot parse this query (it needs to, for dependencies and "
                         "versions): unsupported syntax")
        return None
    if not isinstance(statement, exp.Query):  # DESCRIBE, SUMMARIZE, SHOW: DuckDB calls them SELECT
        word = text[first_code_offset(text):].split(None, 1)[0].upper()
        report.add(None, f"only a read-only SELECT is allowed; found {word} statement")
        return None
    d.body = text[:body_end(tokens, text)]
    d.select_offset = final_select_offset(tokens, first_code_offset(text))
    return statement


def _check_references(d: Definition, tree: dict, statement: exp.Query, report: _Report) -> None:
    """Allowed functions and table functions only, no string as a table; the dependencies."""
    text = d.text
    string_tables: set[int] = set()
    duck_tables: dict[str, int] = {}
    for kind, name, byte_offset in walk_references(tree["statements"]):  # as DuckDB reads them
        offset = char_offset(text, byte_offset)
        if kind == "table_function" and name not in ALLOWED_TABLE_FUNCTIONS:
            report.add(offset, f"table function '{name}()' is not allowed: a definition may read "
                               "only catalogue tables (no files, no other databases)")
        elif kind in ("function", "keyword") and name in NOT_DETERMINISTIC:
            if kind == "function" or text[offset:offset + 1] != '"':  # "current_date": a column
                shown = name if kind == "keyword" else f"{name}()"
                report.add(offset, f"'{shown}' {NOT_DETERMINISTIC[name]}")
        elif kind == "function" and name not in ALLOWED_FUNCTIONS:
            report.add(offset, f"function '{name}()' is not on the allow-list of SQL functions")
        elif kind == "table" and 0 <= offset < len(text) and text[offset] == "'":
            string_tables.add(offset)
            report.add(offset, f"a string used as a table ({name.lstrip('.')!r}): a definition "
                               "may read only catalogue tables, not files")
        elif kind == "table" and not name.startswith("."):
            duck_tables.setdefault(name.lower(), offset)

    # dependencies, as sqlglot reads them (CTE names are not dependencies)
    for table in find_tables(statement):
        start = start_offset(table.parts[0])
        offset = start if start is not None else first_code_offset(text)
        if offset in string_tables or offset - 1 in string_tables:
            continue
        if table.catalog:
            report.add(offset, f"table '{table.sql(dialect=DIALECT)}' names a database; "
                               "a definition may read only catalogue tables")
        elif not table.db:
            report.add(offset, f"table '{table.name}' must be qualified with its layer "
                               f"(e.g. staging.{table.name})")
        else:
            d.dep_offsets.setdefault(f"{table.db.lower()}.{table.name.lower()}", offset)
    for name, offset in duck_tables.items():  # belt and braces: DuckDB's parser has the last word
        if name.count(".") == 1 and not any(p in string_tables for p in (offset, offset - 1)):
            d.dep_offsets.setdefault(name, offset)
    d.deps = sorted(d.dep_offsets)


def _check_outputs(d: Definition, tree: dict, statement: exp.Query, report: _Report) -> None:
    """No ``SELECT *`` in segments and events, no duplicate output names; where each output is."""
    if d.kind in ("segment", "event"):
        for byte_offset in outer_stars(tree):
            offset = char_offset(d.text, byte_offset)
            report.add(offset if offset >= 0 else d.select_offset,
                       f"SELECT * is not allowed in a {d.kind}: list the output columns")
    outer = outer_select(statement)
    for projection in (outer.expressions if outer is not None else []):
        name = projection.alias_or_name
        if not name or isinstance(projection, exp.Star) or name == "*":
            continue
        where = (start_offset(projection.args.get("alias")) if isinstance(projection, exp.Alias)
                 else None)
        where = where if where is not None else start_offset(projection)
        if name.lower() in d.output_offsets:
            report.add(where, f"duplicate output column '{name}'")
        else:
            d.output_offsets[name.lower()] = where if where is not None else d.select_offset
