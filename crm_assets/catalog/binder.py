"""Binding every definition in DuckDB over empty tables typed as its inputs: the output schemas.

Each definition, in dependency order, is bound (not run) in an in-memory DuckDB whose tables are
empty and typed by the input contracts and by the schemas bound before: DuckDB itself reports
unknown tables and columns and gives every output schema. That database can read no file, no
extension and no Python variable, so binding a hostile query has no side effect. Definitions that
do not read each other are bound in parallel (DuckDB releases the GIL while binding).
"""

from __future__ import annotations

import itertools
import os
import re
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import duckdb
from sqlglot import exp

from crm_assets.catalog import cache
from crm_assets.catalog.data_tests import TestDeclaration
from crm_assets.catalog.definition import (
    REQUIRED_COLUMNS,
    VERSION_COLUMNS,
    Definition,
    Position,
    Problem,
    Schema,
)
from crm_assets.catalog.graph import levels
from crm_assets.catalog.parse_tree import serialize, walk_references
from crm_assets.catalog.text import first_code_offset, line_col
from crm_assets.functions.allow_list import (
    ALLOWED_FUNCTIONS,
    ALLOWED_TABLE_FUNCTIONS,
    NOT_DETERMINISTIC,
)
from crm_assets.functions.registry import register_functions
from crm_assets.layers import SCHEMAS
from crm_assets.quoting import identifier

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


class Validator:
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


def chunks(items: list, min_size: int = _PARALLEL_MIN) -> list[list]:
    n = max(1, min(_THREADS, len(items) // min_size))
    return [items[i::n] for i in range(n)]


class Binder:
    """Empty typed tables in the validation database, one for each table a query may read."""

    def __init__(self, validator: Validator, schemas: dict[str, Schema]):
        self.validator = validator
        self.schemas = schemas
        self.external = frozenset(schemas)  # tables Python code writes, not SQL files
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
            cols = ", ".join(f"{identifier(n)} {t}" for n, t in self.schemas[table])
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
        parts = chunks(list(enumerate(q for q, _ in queries)))
        results: list[Schema | duckdb.Error] = [[] for _ in queries]
        for chunk_results in self.validator.map(
                lambda con, chunk: [(i, _describe(con, q)) for i, q in chunk], parts):
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


class _Schemas:
    """One pass of :func:`build_schemas`: the problems found, and the tables that are broken."""

    def __init__(self, binder: Binder, skip: set[str]):
        self.binder = binder
        self.problems: list[Problem] = []
        self.broken = set(skip)

    def add(self, d: Definition, where: int | Position, message: str) -> None:
        line, col = where if isinstance(where, tuple) else line_col(d.text, where)
        self.problems.append(Problem(d.display_path, line, col, message))

    def bind_level(self, level: list[Definition]) -> None:
        """Bind every definition of one level (they do not read each other), in parallel."""
        unbound: list[tuple[Definition, tuple]] = []
        for d in level:
            if d.table in self.broken:
                continue
            bad_deps = [dep for dep in d.deps if dep in self.broken]
            if bad_deps:
                self.add(d, d.dep_offsets.get(bad_deps[0], d.select_offset),
                         f"not checked: it reads {', '.join(bad_deps)}, which is invalid")
                self.broken.add(d.table)
                continue
            key = (d.body, tuple((dep, tuple(self.binder.schemas.get(dep, ())))
                                 for dep in d.deps))
            schema = cache.SCHEMAS.get(key)
            if schema is None:
                unbound.append((d, key))
            else:
                self.binder.used.add(key)
                self.accept(d, schema)
        if not unbound:
            return
        results = self.binder.describe_many([(d.body, d.deps) for d, _ in unbound])
        self.binder.bound += len(unbound)
        for (d, key), result in zip(unbound, results, strict=True):
            if isinstance(result, duckdb.Error):
                where = _duckdb_position("DESCRIBE " + d.body, str(result), len("DESCRIBE "))
                self.add(d, where or first_code_offset(d.text), _duckdb_message(result))
                self.broken.add(d.table)
                continue
            cache.remember(cache.SCHEMAS, key, result)
            self.binder.used.add(key)
            self.accept(d, result)

    def accept(self, d: Definition, schema: Schema) -> None:
        """``schema`` is ``d``'s output: check it against what its kind and layer require."""
        d.schema = list(schema)
        self.binder.schemas[d.table] = d.published_schema  # what readers of the table will find
        names = [n.lower() for n, _ in d.schema]
        types = {n.lower(): t for n, t in d.schema}
        dupes = sorted({n for n in names if names.count(n) > 1} - set(d.output_offsets))
        for name in dupes:
            self.add(d, d.select_offset, f"duplicate output column '{name}' (from a * expansion)")
        missing = self._required_columns(d, types) | self._staging_contract(d, types)
        missing |= self._references(d, types) | self._incremental(d, types)
        if missing or dupes:
            self.broken.add(d.table)
        for column in d.grain:
            if column.lower() not in types and column not in missing:
                self.add(d, d.positions.get("grain", (1, 1)),
                         f"grain column '{column}' is not an output column")

    def _required_columns(self, d: Definition, types: dict[str, str]) -> set[str]:
        """Segments output ``customer_id``; events ``customer_id`` and ``occurred_at`` (zoned)."""
        missing: set[str] = set()
        for column, required_type in REQUIRED_COLUMNS.get(d.kind, {}).items():
            if column not in types:
                self.add(d, d.select_offset, f"a {d.kind} must output a '{column}' column")
                missing.add(column)
            elif required_type and types[column] != required_type:
                self.add(d, d.output_offsets.get(column, d.select_offset),
                         f"'{column}' must be {required_type} (an instant, not a local time), "
                         f"found {types[column]}")
        return missing

    def _staging_contract(self, d: Definition, types: dict[str, str]) -> set[str]:
        """A staging model outputting ``_problem`` needs a grain and the lineage columns."""
        if d.layer != "staging" or "_problem" not in types:
            return set()
        missing: set[str] = set()
        where = d.output_offsets.get("_problem", d.select_offset)
        if "_reject_reason" in types:
            self.add(d, where, "output '_problem' (the latest version of each grain is kept) or "
                               "'_reject_reason' (rows kept as they are), not both")
            missing.add("_reject_reason")
        if "grain" not in d.header:
            self.add(d, where, "a staging model that outputs '_problem' must declare its grain: "
                               "the latest version of each grain is kept")
            missing.add("grain")
        for column in VERSION_COLUMNS:
            if column not in types:
                self.add(d, where, f"a staging model that outputs '_problem' must output "
                                   f"'{column}', to pick the latest version of each grain")
                missing.add(column)
        if (found := _across_rows(d.ast)) is not None:
            self.add(d, d.select_offset,
                     f"a staging model that outputs '_problem' judges each raw row on its own "
                     f"(a night judges only new rows and those a changed reference concerns): "
                     f"{found} combines rows; keep the latest version to the framework (grain) "
                     f"or do it in core")
            missing.add("row_by_row")
        return missing


    def _columns(self, table: str) -> set[str]:
        return {n.lower() for n, _ in self.binder.schemas.get(table, ())}

    def _references(self, d: Definition, types: dict[str, str]) -> set[str]:
        """Staging keeping versions: every staging table it reads is named in ``references``,
        by an output column holding that table's one-column grain."""
        if not d.keeps_versions:
            if d.references:
                self.add(d, d.positions.get("references", (1, 1)), "'references' is for staging "
                         "models that output '_problem' (whose rows are judged incrementally)")
                return {"references"}
            return set()
        where, bad = d.positions.get("references", d.positions.get("grain", (1, 1))), set()
        for column, table in d.references.items():
            if column.lower() not in types:
                self.add(d, where, f"references: '{column}' is not an output column")
                bad.add("references")
            if table not in d.deps or not table.startswith("staging."):
                self.add(d, where, f"references: {table} must be a staging table this query "
                                   "reads")
                bad.add("references")
        named = set(d.references.values())
        for dep in d.deps:
            if (dep.startswith("staging.") and dep not in named and dep != d.table
                    and dep not in self.binder.external):
                self.add(d, d.dep_offsets.get(dep, d.select_offset),
                         f"{d.table} reads {dep}: say in the header which output column holds "
                         f"its key (references: {{column: {dep}}}), so that a change of a key "
                         "there judges the rows holding it here again")
                bad.add("references")
        return bad

    def _incremental(self, d: Definition, types: dict[str, str]) -> set[str]:
        """``incremental``: a model with a grain, merged from tables that carry ``_batch``."""
        spec = d.incremental
        if spec is None:
            return set()
        where = d.positions.get("incremental", (1, 1))
        problems: list[str] = []
        if d.kind != "model" or d.layer == "staging":
            problems.append("only a model after staging is merged by key (staging judges new "
                            "rows by itself)")
        if not d.grain:
            problems.append("an incremental model needs a grain (its merge key)")
        source_columns = self._columns(spec.source)
        if spec.source not in d.deps:
            problems.append(f"from: {spec.source} is not a table this query reads")
        elif not {g.lower() for g in d.grain} <= source_columns:
            problems.append(f"from: {spec.source} must hold the grain columns "
                            f"{', '.join(d.grain)}")
        for table, column in spec.via.items():
            if table not in d.deps:
                problems.append(f"via: {table} is not a table this query reads")
            elif column.lower() not in source_columns & self._columns(table):
                problems.append(f"via: '{column}' must be a column of both {spec.source} "
                                f"and {table}")
        for table in [spec.source, *spec.via]:
            if table in self.binder.schemas and "_batch" not in self._columns(table):
                problems.append(f"{table} does not record which batch wrote each row (_batch): "
                                "it cannot tell what is new")
        if spec.removed:
            table, _, column = spec.removed.rpartition(".")
            if column.lower() not in self._columns(table):
                problems.append(f"removed: {spec.removed} is not a known table.column")
        for message in problems:
            self.add(d, where, f"incremental: {message}")
        return {"incremental"} if problems else set()


def build_schemas(binder: Binder, catalog_defs: list[Definition], skip: set[str]
                  ) -> list[Problem]:
    """Bind each definition over empty tables typed as its inputs; collect errors.

    Each definition's output schema is what DuckDB binds its query to; it becomes an empty table
    for the definitions that read it (a table rather than a view, so binding a query never binds
    everything upstream of it again). Definitions that do not read each other are bound in
    parallel. A schema already bound for the same query over the same input schemas (in this
    process, or found in the disk cache) is reused without asking DuckDB.
    """
    schemas = _Schemas(binder, skip)
    for level in levels(catalog_defs):
        schemas.bind_level(level)
    for d in catalog_defs:
        if d.table not in schemas.broken:
            schemas.problems.extend(_test_problems(d, binder))
    return schemas.problems


def _test_problems(d: Definition, binder: Binder) -> list[Problem]:
    """Each declared test must name output columns, known tables and allowed functions only."""
    problems: list[Problem] = []
    names = {n.lower() for n, _ in d.schema}
    for decl, where in d.declarations:
        def add(message: str, where: Position = where, decl: TestDeclaration = decl) -> None:
            problems.append(Problem(d.display_path, *where, f"test {decl.name}: {message}"))

        if decl.args.get("columns") == d.grain and decl.kind in ("unique", "not_null", "grain"):
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


def _expression_problem(decl: TestDeclaration, d: Definition, binder: Binder) -> str | None:
    """Why the SQL of an ``expression`` test is not allowed, or None when it is."""
    sql = decl.failing_count_sql(d.table)
    key = ("expression", sql, tuple(d.schema))
    if key in cache.SCHEMAS:  # the same condition over the same columns, reading nothing else
        binder.used.add(key)
        return cache.SCHEMAS[key]
    message = _check_expression(sql, d, binder)
    if message is not None or not cache.EXPRESSION_READS.get(sql):
        cache.remember(cache.SCHEMAS, key, message)
        binder.used.add(key)
    return message


def _check_expression(sql: str, d: Definition, binder: Binder) -> str | None:
    tree = serialize(binder.validator.con, [sql])[0]
    if tree.get("error") or len(tree.get("statements", [])) != 1:
        detail = tree.get("error_message") if tree.get("error_type") == "parser" else None
        return "the expression must be one SQL condition" + (f" ({detail})" if detail else "")
    tables = []
    for kind, name, _ in walk_references(tree["statements"]):
        if kind == "table_function" and name not in ALLOWED_TABLE_FUNCTIONS:
            return f"table function '{name}()' is not allowed"
        if kind in ("function", "keyword") and name in NOT_DETERMINISTIC:
            return f"'{name if kind == 'keyword' else name + '()'}' {NOT_DETERMINISTIC[name]}"
        if kind == "function" and name not in ALLOWED_FUNCTIONS:
            return f"function '{name}()' is not on the allow-list of SQL functions"
        if kind == "table":
            if name.startswith(".") or name not in binder.schemas:
                return f"table '{name.lstrip('.')}' is not a catalogue table"
            tables.append(name)
    cache.EXPRESSION_READS[sql] = any(t != d.table for t in tables)
    try:
        binder.describe(sql, [d.table, *tables])
    except duckdb.Error as err:
        return _duckdb_message(err)
    return None


_ACROSS_ROWS = ((exp.Window, "a window function"), (exp.AggFunc, "an aggregate"),
                (exp.Group, "GROUP BY"), (exp.Distinct, "DISTINCT"), (exp.Limit, "LIMIT"),
                (exp.Qualify, "QUALIFY"), (exp.Having, "HAVING"))


def _across_rows(ast: exp.Expression | None) -> str | None:
    """What in a query combines rows (a window, an aggregate, DISTINCT, LIMIT ...), if anything.

    Reading a reference table through such a construct is as suspect as the source itself: a
    staging judgement may depend on the row and on the keys of what it references, nothing else.
    """
    if ast is None:
        return None
    for node in ast.walk():
        for kind, name in _ACROSS_ROWS:
            if isinstance(node, kind):
                return name
    return None
