"""The SQL catalogue: every ``sql/<layer>/<name>.sql`` file is one definition of ``<layer>.<name>``.

Loading a catalogue never needs a warehouse. :func:`load_catalog` reads the files, parses each with
sqlglot (one read-only ``SELECT``, dependencies, fingerprint) and with DuckDB's own parser (the
functions and table functions it calls, checked against an allow-list), then builds every definition
as a *view* in an in-memory DuckDB over empty tables typed by the input contract, in dependency
order. DuckDB itself then reports unknown tables and columns, and ``DESCRIBE`` gives every output
schema. All problems of all files are collected in one pass as ``path:line:col: message``.

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

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import sqlglot
import yaml
from sqlglot import exp
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.scope import traverse_scope

from crm_assets.functions import ALLOWED_FUNCTIONS, ALLOWED_TABLE_FUNCTIONS, register_functions
from crm_assets.warehouse import LAYERS, SCHEMAS

DIALECT = "duckdb"

KINDS = ("model", "segment", "event")
DEFAULT_KIND = {"staging": "model", "core": "model", "segments": "segment", "events": "event",
                "marts": "model"}
SQL_LAYERS = tuple(DEFAULT_KIND)
HEADER_KEYS = {"name", "description", "owner", "kind", "tags", "grain", "columns", "tests"}
REQUIRED_COLUMNS = {"segment": {"customer_id": None},
                    "event": {"customer_id": None, "occurred_at": "TIMESTAMP WITH TIME ZONE"}}

Schema = list[tuple[str, str]]


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
    """One SQL file: its header, its query, what it reads and what it produces."""

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
    ast: exp.Expression | None = None

    @property
    def table(self) -> str:
        return f"{self.layer}.{self.name}"

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

    def by_table(self) -> dict[str, Definition]:
        return {d.table: d for d in self.definitions}

    def schema_of(self, table: str) -> Schema:
        if table in self.external:
            return self.external[table]
        return self.by_table()[table].schema

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


def _line_col(text: str, offset: int) -> tuple[int, int]:
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def _first_code_offset(text: str) -> int:
    """Offset of the first character that is not blank and not inside a comment."""
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
    return 0


# --------------------------------------------------------------------------------------------
# header


def parse_header(text: str) -> tuple[dict, int, str | None]:
    """Return (header, line number of its first line, error) for the leading ``--`` comment block."""
    lines = text.splitlines()
    block: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not stripped.startswith("--"):
            break
        content = stripped[2:]
        block.append(content[1:] if content.startswith(" ") else content)
    if not block:
        return {}, 1, None
    try:
        header = yaml.safe_load("\n".join(block))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = (mark.line + 1) if mark else 1
        problem = getattr(err, "problem", None) or str(err)
        return {}, line, f"header is not valid YAML: {problem}"
    if header is None or isinstance(header, str):
        return {}, 1, None  # a plain comment, not a header
    if not isinstance(header, dict):
        return {}, 1, "header must be YAML key: value lines"
    return header, 1, None


# --------------------------------------------------------------------------------------------
# sqlglot: statement kind, dependencies, fingerprint


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

    Identifiers are case-insensitive in DuckDB, so they are lower-cased and all quoted before the
    query is rendered; the rendering of sqlglot's AST does not keep comments or layout.
    """
    normalized = normalize_identifiers(expression.copy(), dialect=DIALECT)
    for node in normalized.find_all(exp.Identifier):
        node.set("this", node.this.lower())
    rendered = normalized.sql(dialect=DIALECT, identify=True, comments=False, normalize=True)
    return hashlib.sha256(rendered.encode("utf-8")).hexdigest()


def _statement_body(text: str) -> str:
    """The query text without a trailing ``;`` (and anything after it), comments kept."""
    tokens = sqlglot.tokenize(text, read=DIALECT)
    if not tokens:
        return text
    end = tokens[-1].end + 1
    if tokens[-1].token_type == sqlglot.TokenType.SEMICOLON:
        end = tokens[-2].end + 1 if len(tokens) > 1 else 0
    return text[:end]


# --------------------------------------------------------------------------------------------
# DuckDB's parser: functions and table functions


def _walk_json(node, found: list[tuple[str, str, int]]):
    if isinstance(node, dict):
        if "function_name" in node and not node.get("is_operator"):
            found.append(("function", str(node["function_name"]).lower(),
                          int(node.get("query_location", -1))))
        if node.get("type") == "TABLE_FUNCTION":
            fn = node.get("function") or {}
            found.append(("table_function", str(fn.get("function_name", "")).lower(),
                          int(node.get("query_location", -1))))
            for arg in fn.get("arguments", []) or []:
                _walk_json(arg, found)
            for key, value in node.items():
                if key != "function":
                    _walk_json(value, found)
            return
        if node.get("type") == "BASE_TABLE":
            found.append(("table", f"{node.get('schema_name', '')}.{node.get('table_name', '')}",
                          int(node.get("query_location", -1))))
        for value in node.values():
            _walk_json(value, found)
    elif isinstance(node, list):
        for value in node:
            _walk_json(value, found)


def duckdb_references(con: duckdb.DuckDBPyConnection, text: str) -> tuple[list, str | None]:
    """(kind, name, offset) of every function, table function and table in ``text``, per DuckDB."""
    raw = con.execute("SELECT json_serialize_sql(?)", [text]).fetchone()[0]
    tree = json.loads(raw)
    if tree.get("error"):
        return [], str(tree.get("error_message"))
    found: list[tuple[str, str, int]] = []
    _walk_json(tree.get("statements", []), found)
    return found, None


_FOUND_KIND = {
    exp.Insert: "INSERT", exp.Update: "UPDATE", exp.Delete: "DELETE", exp.Create: "CREATE",
    exp.Drop: "DROP", exp.Copy: "COPY", exp.Attach: "ATTACH", exp.Pragma: "PRAGMA", exp.Set: "SET",
    exp.Install: "INSTALL", exp.Merge: "MERGE", exp.Alter: "ALTER", exp.Use: "USE",
}


def _statement_kind(statement: exp.Expression, text: str) -> str:
    for cls, name in _FOUND_KIND.items():
        if isinstance(statement, cls):
            return name
    first = text[_first_code_offset(text):].split(None, 1)
    return (first[0] if first else type(statement).__name__).upper().rstrip(";")


# --------------------------------------------------------------------------------------------
# loading


def discover(sql_dir: Path, paths: Iterable[Path] | None = None) -> list[Path]:
    files = sorted(sql_dir.glob("*/*.sql"))
    if paths:
        extra = [Path(p) for p in paths]
        files = sorted(set(files) | {p.resolve() for p in extra if p.suffix == ".sql"})
    return files


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _check_file(d: Definition, parser_con: duckdb.DuckDBPyConnection) -> list[Problem]:
    """Everything that can be said of one file on its own."""
    problems: list[Problem] = []
    p = d.display_path

    def problem(offset_or_pos, message: str) -> None:
        if isinstance(offset_or_pos, tuple):
            line, col = offset_or_pos
        else:
            line, col = _line_col(d.text, offset_or_pos)
        problems.append(Problem(p, line, col, message))

    if d.layer not in SQL_LAYERS:
        problem((1, 1), f"unknown layer folder '{d.layer}'; expected one of {', '.join(SQL_LAYERS)}")
        return problems
    if not re.fullmatch(r"[a-z][a-z0-9_]*", d.name):
        problem((1, 1), f"file name '{d.name}' must be lower_snake_case (it becomes a table name)")
        return problems

    header, hline, herr = parse_header(d.text)
    if herr:
        problem((hline, 1), herr)
        return problems
    d.header = header
    unknown = sorted(set(header) - HEADER_KEYS)
    if unknown:
        problem((1, 1), f"unknown header key(s): {', '.join(unknown)}; "
                        f"allowed: {', '.join(sorted(HEADER_KEYS))}")
    if header.get("name") not in (None, d.name):
        problem((1, 1), f"header name '{header['name']}' does not match the file name '{d.name}'")
    d.kind = str(header.get("kind") or DEFAULT_KIND[d.layer])
    if d.kind not in KINDS:
        problem((1, 1), f"unknown kind '{d.kind}'; expected one of {', '.join(KINDS)}")
        return problems

    if not d.text[_first_code_offset(d.text):].strip():
        problem((1, 1), "file holds no query; expected one SELECT statement")
        return problems
    try:
        statements = [s for s in sqlglot.parse(d.text, read=DIALECT) if s is not None]
    except sqlglot.errors.ParseError as err:
        first = err.errors[0] if err.errors else {}
        desc = str(first.get("description") or err).split("\n")[0]
        problem((int(first.get("line") or 1), int(first.get("col") or 1)),
                f"syntax error: {desc}")
        return problems
    if len(statements) != 1:
        problem(_first_code_offset(d.text),
                f"expected exactly one SELECT statement, found {len(statements)} statements")
        return problems
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        kind = _statement_kind(statement, d.text)
        problem(_first_code_offset(d.text),
                f"only a read-only SELECT is allowed; found {kind} statement")
        return problems
    d.ast = statement
    d.body = _statement_body(d.text)
    d.version = fingerprint(statement)

    refs, err = duckdb_references(parser_con, d.body)
    if err:
        problem(_first_code_offset(d.text), f"syntax error: {err}")
        return problems
    for kind, name, offset in refs:
        if kind == "table_function" and name not in ALLOWED_TABLE_FUNCTIONS:
            problem(offset, f"table function '{name}()' is not allowed: a definition may read only "
                            "catalogue tables (no files, no other databases)")
        elif kind == "function" and name not in ALLOWED_FUNCTIONS:
            problem(offset, f"function '{name}()' is not on the allow-list of SQL functions")
        elif kind == "table" and 0 <= offset < len(d.body) and d.body[offset] == "'":
            problem(offset, f"a string used as a table ({name.lstrip('.')!r}): a definition may "
                            "read only catalogue tables, not files")

    deps: list[str] = []
    for table in find_tables(statement):
        meta = table.this.meta if isinstance(table.this, exp.Identifier) else {}
        offset = int(meta.get("start", _first_code_offset(d.text)))
        if table.catalog:
            problem(offset, f"table '{table.sql(dialect=DIALECT)}' names a database; "
                            "a definition may read only catalogue tables")
            continue
        if d.body[offset:offset + 1] == "'" or (
            0 < offset and d.body[offset - 1:offset] == "'"
        ):
            continue  # already reported as a string used as a table
        if not table.db:
            problem(offset, f"table '{table.name}' must be qualified with its layer "
                            f"(e.g. staging.{table.name})")
            continue
        deps.append(f"{table.db.lower()}.{table.name.lower()}")
    d.deps = sorted(set(deps))

    if d.kind in ("segment", "event"):
        outer = statement if isinstance(statement, exp.Select) else statement.find(exp.Select)
        for projection in (outer.expressions if outer else []):
            star = projection if isinstance(projection, exp.Star) else projection.find(exp.Star)
            is_star = isinstance(projection, exp.Star) or (
                isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
            )
            if is_star or (star is not None and not projection.find(exp.Func)):
                node = projection.find(exp.Identifier)
                offset = (node.meta.get("start") if node is not None else None)
                problem(offset if offset is not None else _first_code_offset(d.text),
                        f"SELECT * is not allowed in a {d.kind}: list the output columns")
    names = statement.named_selects
    seen: set[str] = set()
    for name in names:
        if name.lower() in seen:
            problem(_first_code_offset(d.text), f"duplicate output column '{name}'")
        seen.add(name.lower())
    return problems


def _graph_problems(defs: list[Definition], external: Mapping[str, Schema]) -> list[Problem]:
    problems: list[Problem] = []
    by_table: dict[str, Definition] = {}
    for d in defs:
        if d.table in external:
            problems.append(Problem(d.display_path, 1, 1, f"duplicate definition of {d.table}: it "
                                    "is built by Python code (ingest or identity)"))
        elif d.table in by_table:
            problems.append(Problem(d.display_path, 1, 1, f"duplicate definition of {d.table}: "
                                    f"also defined by {by_table[d.table].display_path}"))
        else:
            by_table[d.table] = d
    for d in defs:
        if by_table.get(d.table) is not d:
            continue
        for dep in list(d.deps):
            schema = dep.split(".")[0]
            offset = _dep_offset(d, dep)
            if dep == d.table:
                problems.append(Problem(d.display_path, *_line_col(d.text, offset),
                                        f"{d.table} reads itself"))
                d.deps.remove(dep)
            elif dep not in by_table and dep not in external:
                hint = "" if schema in SCHEMAS else f" (unknown layer '{schema}')"
                problems.append(Problem(d.display_path, *_line_col(d.text, offset),
                                        f"table {dep} is not defined by any file or source{hint}"))
                d.deps.remove(dep)
            elif schema in LAYERS and LAYERS.index(schema) > LAYERS.index(d.layer):
                problems.append(Problem(d.display_path, *_line_col(d.text, offset),
                                        f"{d.layer} may not read {dep} from the later layer "
                                        f"'{schema}'"))
    for cycle in _cycles(by_table):
        names = " -> ".join(by_table[t].display_path for t in [*cycle, cycle[0]])
        for t in cycle:
            problems.append(Problem(by_table[t].display_path, 1, 1, f"dependency cycle: {names}"))
    return problems


def _dep_offset(d: Definition, dep: str) -> int:
    schema, name = dep.split(".")
    match = re.search(rf'"?{re.escape(schema)}"?\s*\.\s*"?{re.escape(name)}"?\b', d.body,
                      flags=re.IGNORECASE)
    return match.start() if match else _first_code_offset(d.text)


def _cycles(by_table: dict[str, Definition]) -> list[list[str]]:
    """Strongly connected components of more than one node (or a self loop), Tarjan's algorithm."""
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
                result.append(sorted(component))

    for v in sorted(by_table):
        if v not in index:
            visit(v)
    return result


def _toposort(defs: list[Definition]) -> list[Definition]:
    by_table = {d.table: d for d in defs}
    order: list[Definition] = []
    state: dict[str, int] = {}

    def visit(d: Definition) -> None:
        if state.get(d.table) == 2:
            return
        if state.get(d.table) == 1:
            return  # cycle, already reported
        state[d.table] = 1
        for dep in sorted(d.deps):
            if dep in by_table:
                visit(by_table[dep])
        state[d.table] = 2
        order.append(d)

    for d in sorted(defs, key=lambda d: (LAYERS.index(d.layer) if d.layer in LAYERS else 99,
                                         d.name)):
        visit(d)
    return order


_DUCK_LINE = re.compile(r"LINE (\d+): (.*)\n( *)(\^+)")


def _duckdb_problem(d: Definition, err: Exception, prefix: str) -> Problem:
    message = str(err)
    line, col = _line_col(d.text, _first_code_offset(d.text))
    match = _DUCK_LINE.search(message)
    if match:
        line = int(match.group(1))
        col = len(match.group(3)) - len(f"LINE {match.group(1)}: ") + 1
        if line == 1:
            col -= len(prefix)
        col = max(col, 1)
    first = message.split("\n")[0]
    first = re.sub(r"^(\w+ )?Error: ", "", first).rstrip("!")
    if "does not exist" in first and first.startswith("Table with name"):
        first = first.replace("Table with name", "unknown table")
    return Problem(d.display_path, line, col, first[0].lower() + first[1:] if first else message)


def build_views(con: duckdb.DuckDBPyConnection, catalog_defs: list[Definition],
                external: Mapping[str, Schema], skip: set[str]) -> list[Problem]:
    """Create empty external tables and every definition as a view, in order; collect errors."""
    problems: list[Problem] = []
    for schema in SCHEMAS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for table, columns in external.items():
        cols = ", ".join(f'"{name}" {type_}' for name, type_ in columns)
        con.execute(f"CREATE TABLE {table} ({cols})")
    broken = set(skip)
    for d in catalog_defs:
        if d.table in broken:
            continue
        bad_deps = [dep for dep in d.deps if dep in broken]
        if bad_deps:
            problems.append(Problem(d.display_path, 1, 1,
                                    f"not checked: it reads {', '.join(bad_deps)}, which is invalid"))
            broken.add(d.table)
            continue
        prefix = f"CREATE VIEW {d.table} AS "
        try:
            con.execute(prefix + d.body + "\n")
            d.schema = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {d.table}").fetchall()]
        except duckdb.Error as err:
            problems.append(_duckdb_problem(d, err, prefix))
            broken.add(d.table)
            continue
        types = dict(d.schema)
        for column, required_type in REQUIRED_COLUMNS.get(d.kind, {}).items():
            if column not in types:
                problems.append(Problem(d.display_path, *_line_col(d.text, _first_code_offset(
                    d.text)), f"a {d.kind} must output a '{column}' column"))
                broken.add(d.table)
            elif required_type and types[column] != required_type:
                problems.append(Problem(d.display_path, *_line_col(d.text, _first_code_offset(
                    d.text)), f"'{column}' must be {required_type} (an instant, not a local "
                              f"time), found {types[column]}"))
                broken.add(d.table)
        for column in d.grain:
            if column not in types:
                problems.append(Problem(d.display_path, 1, 1,
                                        f"grain column '{column}' is not an output column"))
    return problems


def load_catalog(sql_dir: Path, external: Mapping[str, Schema], *,
                 paths: Iterable[Path] | None = None, root: Path | None = None,
                 as_of: date | None = None) -> Catalog:
    """Read, check and build every definition under ``sql_dir`` (plus ``paths``).

    Args:
        sql_dir: the ``sql/`` folder; each ``<layer>/<name>.sql`` below it is a definition.
        external: tables built by Python code (raw ingest, identity), ``{"raw.orders": schema}``.
        paths: extra files to check (e.g. a file not yet moved into ``sql/``); their layer is
            their parent folder's name.
        root: paths in messages are relative to it (default: the parent of ``sql_dir``).
        as_of: the date ``as_of_date()`` returns while validating.

    Returns:
        The catalogue, in dependency order, with every problem found (empty when all is well).
    """
    root = root or sql_dir.parent
    files = discover(sql_dir, paths)
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET python_enable_replacements = false")
        con.execute("SET TimeZone = 'UTC'")
        register_functions(con, as_of)
        defs: list[Definition] = []
        problems: list[Problem] = []
        invalid: set[str] = set()
        for path in files:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as err:
                problems.append(Problem(_display(path, root), 1, 1, f"cannot read file: {err}"))
                continue
            d = Definition(path=path, display_path=_display(path, root), layer=path.parent.name,
                           name=path.stem, text=text)
            file_problems = _check_file(d, con)
            problems.extend(file_problems)
            if d.layer in SQL_LAYERS and re.fullmatch(r"[a-z][a-z0-9_]*", d.name):
                defs.append(d)
                if file_problems:
                    invalid.add(d.table)
        problems.extend(_graph_problems(defs, external))
        invalid |= {d.table for d in defs if any(p.path == d.display_path for p in problems)}
        ordered = _toposort(defs)
        problems.extend(build_views(con, ordered, external, invalid))
    finally:
        con.close()
    return Catalog(definitions=ordered, external=dict(external), problems=sorted(set(problems)))
