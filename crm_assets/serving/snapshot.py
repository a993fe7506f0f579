"""Serving BI: a snapshot of the warehouse that readers never share with the pipeline.

BI tools (Metabase, Superset, Tableau, a DuckDB client) open ``<serving_dir>/crm.duckdb``
read-only. That file holds only views, one per published table, over Parquet files under
``<serving_dir>/data/``, and the pipeline never opens it: a publish writes the Parquet files whose
content changed, then a new views file beside the old one, and swaps it in with one atomic rename.
So a reader never blocks a run and a connected BI tool never makes one fail, and a reader never
sees a half-written table: a session keeps the snapshot it opened. The views file is written in
DuckDB's ``v1.0.0`` storage format, which the DuckDB 1.x drivers bundled in BI tools can open.

What a publish writes grows with what changed, not with the warehouse. Each table, and each month
of an event table (by ``event_date``), is fingerprinted inside DuckDB (its columns, row count and
the sum of its rows' hashes; one scan); a Parquet file is named by its fingerprint and written only
when no file of that name exists: one changed part by a ``COPY`` to its file (large ones on all
cores, rows in no particular order), many (a first publish) by one partitioned ``COPY``. Files that
no snapshot of the last :data:`KEEP` publishes or of the last :data:`KEEP_HOURS` hours uses are
deleted, so a reader that opened one of those still finds its files. After an erasure, the
snapshots before it expire :data:`KEEP_HOURS` later whatever follows (``expire_previous``).
A DuckDB process keeps the database it opened (its connections to one path share an instance):
a BI tool sees a new snapshot once it has closed its connections to the old one and reconnects.

A view returns its table's column types exactly: Parquet has no 128-bit integer, so ``HUGEINT``
and ``UHUGEINT`` (a ``sum`` of ``BIGINT``) are written as ``DECIMAL(38,0)`` (not ``DOUBLE``, which
would round them past 2^53), and the view casts every column whose type Parquet does not give back
(those, ``ENUM``, ``BIT``, fixed-size arrays, ``TIMESTAMP_S``/``_MS``, nested types holding
them) to its warehouse type. Views carry the descriptions of their tables and columns (``COMMENT
ON``), from the SQL catalogue and the framework's tables. The BI snapshot also holds
``events._all_events`` (every event's occurrences in one view) and table macros in ``main`` that
answer the history questions from any DuckDB client, 1.1 included (:func:`history_macros`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

from crm_assets.quoting import identifier, literal
from crm_assets.warehouse.tables import (
    BUILT_VERSIONS,
    CHANGED_PARTS,
    CLOSED_BY_MONTH,
    EVENT_DAYS,
    FRAMEWORK_TABLES,
    OPEN_PART,
    SEGMENT_MEMBERSHIP_HISTORY,
    month_column,
)

SERVED_SCHEMAS: tuple[str, ...] = ("core", "segments", "events", "marts")
"""What BI reads: golden records and facts, segments, events and marts (not raw, staging, meta)."""

DIRECT_IDENTIFIERS: frozenset[str] = frozenset({
    "first_name", "last_name", "middle_name", "full_name", "name_key", "email", "email_key",
    "phone", "birth_date", "address", "street", "postcode", "passport",
})
"""Columns that name, reach or pinpoint a person: never in the BI snapshot, whatever table holds
them (a new SQL file outputting ``email`` too); only the contacts snapshot serves them."""


@dataclass(frozen=True)
class Tier:
    """Who reads a snapshot, and so what it holds.

    Attributes:
        tables: the tables it serves (``schema.table``); ``None``: every table of ``schemas``.
        withheld: columns never served.
        history: whether it holds ``events._all_events`` and the history macros
            (:func:`history_macros`).
    """

    name: str
    schemas: tuple[str, ...]
    tables: frozenset[str] | None = None
    withheld: frozenset[str] = frozenset()
    history: bool = False


BI = Tier("bi", SERVED_SCHEMAS, withheld=DIRECT_IDENTIFIERS, history=True)
"""The default snapshot: every served table, without direct identifiers (dashboards, analysts),
and the history macros."""

CONTACTS = Tier("contacts", ("core",), tables=frozenset({"core.customers"}))
"""The contacts snapshot: the golden records whole, contacts and consents with them (campaign
tools, ``crm audience``, the trigger exports). Its own folder, so file permissions can keep it
from BI users."""
VIEWS_FILE = "crm.duckdb"
MANIFEST_FILE = "manifest.json"
STORAGE_VERSION = "v1.0.0"
PARQUET_COMPRESSION = "zstd, COMPRESSION_LEVEL 1"
"""zstd at its fastest level: 40 % faster to write than the default level, 5 % larger files."""
KEEP = 3
"""Snapshots whose files are kept at least: the current one and the two before it ..."""
KEEP_HOURS = 24
"""... and every snapshot published in the last day, for BI sessions that stay open overnight."""
UNORDERED_ROWS = 500_000
"""Parts of at least this many rows are written by all cores in no particular order (a third
faster at 1M rows; SQL tables have no order, and BI tools sort); smaller ones, the marts among
them, keep their table's order."""
PARTITION_FLUSH_ROWS = 60_000
"""A first publish writes a table's months in one partitioned ``COPY``; each thread flushes a
month's rows to its file once it holds this many (DuckDB's default, 524,288, holds up to the
whole table in memory across months and threads, and under the run's ``memory_limit`` the
write slows down: 15M order lines, 18 months, 2GB: 7.0 s against 4.8 s, the same files)."""
PARQUET_LAYOUT = 2
"""What a Parquet file holds for the same rows; a new layout writes every file again (in the
fingerprint). 2: ``HUGEINT`` and ``UHUGEINT`` as ``DECIMAL(38,0)`` (1: as ``DOUBLE``, rounded)."""

ROUND_TRIP_TYPES: frozenset[str] = frozenset({
    "BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER",
    "UBIGINT", "FLOAT", "DOUBLE", "VARCHAR", "BLOB", "DATE", "TIME", "TIME WITH TIME ZONE",
    "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "INTERVAL", "UUID", "JSON",
})
"""Types a Parquet file written by DuckDB gives back as they were (``DECIMAL(p,s)`` too), read
by DuckDB 1.1 as by 2.0 (a ``TIME WITH TIME ZONE`` keeps its instant of the day, at offset +00).
A view casts every other column to its warehouse type: ``HUGEINT`` and ``UHUGEINT`` (written as
``DECIMAL(38,0)``), ``ENUM`` and ``BIT`` (read as ``VARCHAR``), ``TIMESTAMP_S``/``_MS``
(``TIMESTAMP``), fixed-size arrays (lists), nested types."""

WIDE_INTEGER = re.compile(r"(?<![\w\"])U?HUGEINT(?=$|[,)\[])")
"""``HUGEINT``/``UHUGEINT`` as a type in a type's name (``STRUCT(n HUGEINT)`` too, not a field
named so): Parquet would store them as ``DOUBLE``; they are written as ``DECIMAL(38,0)``, exact to
38 digits (a larger value fails the publish rather than being rounded)."""

NOT_CAST = re.compile(r"\bUNION\(")
"""Types a cast cannot rebuild from what Parquet gives back (a ``UNION`` comes back a
``STRUCT``): served as Parquet gives them."""


@dataclass(frozen=True)
class TableDoc:
    """What a table holds and what its columns mean, as BI tools show them (``COMMENT ON``)."""

    description: str = ""
    columns: Mapping[str, str] = field(default_factory=dict)


LAYER_COLUMN_DOCS: dict[str, dict[str, str]] = {
    "events": {
        "event_date": "The business day of occurred_at, in the business time zone "
                      "(CRM_TIMEZONE): the day partition the row belongs to.",
        "definition_version": "The version of the event's SQL definition that computed the row "
                              "(crm versions NAME lists them).",
    },
    "segments": {
        "as_of_date": "The day the members were computed as of (the run's as-of date).",
        "definition_version": "The version of the segment's SQL definition that computed the "
                              "members (crm versions NAME lists them).",
    },
}
"""Columns the framework adds to every table of a layer: described once, for every table."""

ALL_EVENTS = ("events", "_all_events")
"""Every event's occurrences in one view: the history macros take an event's name as a value. No
SQL file can define it (definition names start with a letter)."""

ALL_EVENTS_COLUMNS: dict[str, str] = {
    "event": "The event's name (events.<event>).",
    "customer_id": "Who met the event.",
    "occurred_at": "The instant it happened.",
    "event_date": LAYER_COLUMN_DOCS["events"]["event_date"],
    "definition_version": LAYER_COLUMN_DOCS["events"]["definition_version"],
}


@dataclass(frozen=True)
class PublishResult:
    path: Path
    tables: int
    rows: int
    files_written: int
    files_reused: int
    files_removed: int


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()[:24]


def _served_tables(con: duckdb.DuckDBPyConnection, tier: Tier) -> list[_Table]:
    columns: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table, column, type_ in con.execute(
            "SELECT c.schema_name, c.table_name, c.column_name, c.data_type "
            "FROM duckdb_columns() c JOIN duckdb_tables() t USING (database_name, schema_name, "
            "table_name) WHERE c.database_name = current_database() AND NOT t.temporary "
            "AND list_contains(?, c.schema_name) AND NOT starts_with(c.table_name, '_crm_') "
            "ORDER BY 1, 2, c.column_index",
            [list(tier.schemas)]).fetchall():
        if tier.tables is not None and f"{schema}.{table}" not in tier.tables:
            continue
        if column.lower() not in tier.withheld:
            columns.setdefault((schema, table), []).append((column, type_))
    return [_Table(schema, table, cols) for (schema, table), cols in sorted(columns.items())]


def _manifest(serving_dir: Path) -> dict | None:
    """The last publish's manifest, its paths under ``serving_dir`` wherever it was written
    (``None`` if unreadable).

    The manifest names files by absolute path (what Spark and scripts read), and records the
    folder it was written in: a warehouse folder moved or restored elsewhere keeps its files, and
    the next publish reuses them instead of writing every table again."""
    try:
        manifest = json.loads((serving_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict):
        return None
    written_in = manifest.get("serving_dir")
    if written_in and Path(written_in) != serving_dir:
        def moved(path: str) -> str:
            try:
                return str(serving_dir / Path(path).relative_to(written_in))
            except ValueError:  # not under the folder it was written in: as it is
                return path

        try:
            manifest["tables"] = {name: [moved(p) for p in files]
                                  for name, files in manifest["tables"].items()}
            manifest["generations"] = [{**g, "files": [moved(p) for p in g["files"]]}
                                       for g in manifest.get("generations", [])]
        except (KeyError, TypeError, AttributeError):
            return None
    return manifest


def _previous_tables(serving_dir: Path) -> dict[str, list[Path]]:
    """The files each table had in the last publish (none if its manifest is unreadable)."""
    try:
        manifest = _manifest(serving_dir)
        return {name: [Path(p) for p in files] for name, files in manifest["tables"].items()
                if all(Path(p).exists() for p in files)}
    except (KeyError, TypeError, AttributeError):
        return {}


def _touched(con: duckdb.DuckDBPyConnection, table: _Table, since: int) -> set[str] | None:
    """The parts of ``table`` written after batch ``since``: an empty set when it was not
    rebuilt, ``None`` when it was and which months cannot be told (fingerprint all of it)."""
    built = con.execute(f"SELECT batch FROM {BUILT_VERSIONS.name} WHERE table_name = ?",
                        [table.key]).fetchone()
    if built is None:
        return None  # a table that does not record its builds
    if built[0] <= since:
        return set()
    names = {c for c, _ in table.columns}
    if table.schema == "events" and "event_date" in names:
        return {r[0] for r in con.execute(
            f"SELECT DISTINCT strftime(event_date, '%Y-%m') FROM {EVENT_DAYS.name} "
            "WHERE event = ? AND batch > ?", [table.name, since]).fetchall()}
    if table.part != "'all'":
        parts = {r[0] for r in con.execute(
            f"SELECT DISTINCT part FROM {CHANGED_PARTS.name} WHERE table_name = ? "
            "AND batch > ?", [table.key, since]).fetchall()}
        return parts if parts and "*" not in parts else None
    return None


def _row_count(con: duckdb.DuckDBPyConnection, table: _Table) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table.relation}").fetchone()[0])


def _publish_table(con: duckdb.DuckDBPyConnection, table: _Table, data: Path,
                   months: set[str] | None) -> tuple[dict[str, Path], int, int]:
    """Fingerprint ``table`` (only ``months`` of it, when given) and write the parts whose
    fingerprint has no file yet; the part files, how many were written, the rows looked at."""
    salt = f"{duckdb.__version__}/{PARQUET_LAYOUT}"  # row hashes may differ between versions
    shape = _digest(salt, json.dumps(table.columns))
    folder = data / table.schema / table.name
    part, relation = _month_of(con, table, months), table.relation
    # A few months are read in one scan, by ranges of the month column that DuckDB checks first
    # (cheap, and answered from a row group's min/max where it can), so only their rows have
    # their month computed.
    where = ("" if not months else
             f" WHERE ({' OR '.join(table.month_range(m) for m in sorted(months))}) "
             f"AND {part} IN ({', '.join(literal(m) for m in sorted(months))})")
    parts = con.execute(
        f"SELECT {part} AS part, count(*), sum(hash(t)::HUGEINT) FROM (SELECT "
        f"{table.served_columns} FROM {relation}{where}) AS t GROUP BY part ORDER BY part"
    ).fetchall()
    if not parts and not months:
        parts = [("all", 0, 0)]  # an empty table keeps its columns
    wanted = {key: folder / key / f"{_digest(shape, n, h)}.parquet" for key, n, h in parts}
    missing = [key for key, path in wanted.items() if not path.exists()]
    with _write_order(con, sum(n for key, n, _ in parts if key in missing)):
        _write_parts(con, table, part, folder, wanted, missing, months)
    return wanted, len(missing), sum(n for _, n, _ in parts)


@contextmanager
def _write_order(con: duckdb.DuckDBPyConnection, rows: int) -> Iterator[None]:
    """Writes of :data:`UNORDERED_ROWS` rows or more on all cores, in no particular row order;
    fewer rows keep the table's order (a mart written ``ORDER BY`` reads back in it)."""
    if rows < UNORDERED_ROWS:
        yield
        return
    with _setting(con, "preserve_insertion_order", "false"):
        yield


@contextmanager
def _setting(con: duckdb.DuckDBPyConnection, name: str, value: str) -> Iterator[None]:
    """DuckDB's setting ``name`` at ``value`` for the block, then back at the value it had."""
    kept = con.execute(f"SELECT current_setting({literal(name)})").fetchone()[0]
    con.execute(f"SET {name} = {value}")
    try:
        yield
    finally:
        con.execute(f"SET {name} = {literal(str(kept))}")


def _write_parts(con: duckdb.DuckDBPyConnection, table: _Table, part: str, folder: Path,
                 wanted: dict[str, Path], missing: list[str], months: set[str] | None) -> None:
    """The parts ``missing`` of ``table`` (split by ``part``) to their files (``wanted``)."""
    relation = table.relation
    if len(missing) == 1 or months:  # one part, or a few months: each straight to its file
        for key in missing:
            where = ("" if part == "'all'" or key == "all"  # (an empty table's one part)
                     else f" WHERE {table.month_range(key)} AND {part} = {literal(key)}")
            _write(con, f"SELECT {table.written_columns} FROM {relation}{where}", wanted[key])
    elif missing:  # many parts (a first publish): in one statement, then each to its own name
        tmp = folder / f".{uuid.uuid4().hex}.tmp"
        tmp.mkdir(parents=True)
        keys = ", ".join(literal(key) for key in missing)
        with _setting(con, "partitioned_write_flush_threshold", str(PARTITION_FLUSH_ROWS)):
            con.execute(
                f"COPY (SELECT {table.written_columns}, {part} AS _part FROM {relation} "
                f"WHERE {part} IN ({keys})) TO {literal(str(tmp))} (FORMAT parquet, COMPRESSION "
                f"{PARQUET_COMPRESSION}, PARTITION_BY (_part), OVERWRITE_OR_IGNORE true)")
        for key in missing:
            wanted[key].parent.mkdir(parents=True, exist_ok=True)
            found = sorted((tmp / f"_part={key}").glob("*.parquet"))
            if len(found) > 1:  # never serve part of a part
                raise RuntimeError(f"{table.key}: DuckDB wrote {len(found)} files for part {key}")
            if found:
                os.replace(found[0], wanted[key])
            else:  # an empty table writes no partition
                _write(con, f"SELECT {table.written_columns} FROM {relation} LIMIT 0",
                       wanted[key])
        shutil.rmtree(tmp)


def _write(con: duckdb.DuckDBPyConnection, select: str, path: Path) -> None:
    """``select`` to the Parquet file ``path``, which appears complete or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    con.execute(f"COPY ({select}) TO {literal(str(tmp))} (FORMAT parquet, COMPRESSION "
                f"{PARQUET_COMPRESSION})")
    os.replace(tmp, path)


@dataclass(frozen=True)
class _Table:
    schema: str
    name: str
    columns: list[tuple[str, str]]

    @property
    def relation(self) -> str:
        return f"{identifier(self.schema)}.{identifier(self.name)}"

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def part(self) -> str:
        """The expression naming the file a row goes to: its month, :data:`OPEN_PART` or the
        month it closed (:data:`CLOSED_BY_MONTH`), or ``'all'``."""
        if closing := CLOSED_BY_MONTH.get(self.key):
            return f"coalesce(strftime({identifier(closing)}, '%Y-%m'), {literal(OPEN_PART)})"
        month = month_column([c for c, _ in self.columns])
        return f"strftime({identifier(month)}, '%Y-%m')" if month else "'all'"

    @property
    def month_type(self) -> str:
        return dict(self.columns)[month_column([c for c, _ in self.columns])]

    def month_range(self, month: str) -> str:
        """``month`` (``YYYY-MM``) as a range of the table's month column, in the column's type
        (a ``TIMESTAMPTZ`` bound is read in the session's time zone, as ``strftime`` is); for a
        table of :data:`CLOSED_BY_MONTH`, its closing column's (``NULL`` for the open part)."""
        if closing := CLOSED_BY_MONTH.get(self.key):
            if month == OPEN_PART:
                return f"{identifier(closing)} IS NULL"
            kind = dict(self.columns)[closing]
            low, high = (_month_start(m, kind) for m in (month, _next_month(month)))
            return f"{identifier(closing)} >= {low} AND {identifier(closing)} < {high}"
        column = identifier(month_column([c for c, _ in self.columns]))
        low, high = (_month_start(m, self.month_type) for m in (month, _next_month(month)))
        return f"{column} >= {low} AND {column} < {high}"

    @property
    def served(self) -> list[tuple[str, str]]:
        """The tier's columns but the framework's own ``_batch`` (which batch wrote a row)."""
        return [(c, t) for c, t in self.columns if c != "_batch"]

    @property
    def served_columns(self) -> str:
        return ", ".join(identifier(c) for c, _ in self.served)

    @property
    def written_columns(self) -> str:
        """:attr:`served_columns` as written to Parquet: 128-bit integers as ``DECIMAL(38,0)``."""
        return ", ".join(
            f"CAST({identifier(c)} AS {WIDE_INTEGER.sub('DECIMAL(38,0)', t)}) AS {identifier(c)}"
            if WIDE_INTEGER.search(t) else identifier(c) for c, t in self.served)

    def read_columns(self) -> str:
        """The served columns as a view reads them back from Parquet, in their warehouse types."""
        return ", ".join(_read_back(c, t) for c, t in self.served)


def _read_back(column: str, type_: str) -> str:
    """``column`` of warehouse type ``type_``, read from Parquet, in that type again."""
    if type_ in ROUND_TRIP_TYPES or type_.startswith("DECIMAL(") or NOT_CAST.search(type_):
        return identifier(column)
    return f"CAST({identifier(column)} AS {type_}) AS {identifier(column)}"


def _next_month(month: str) -> str:
    start = datetime.strptime(month, "%Y-%m")
    return (start + timedelta(days=32)).strftime("%Y-%m")


def _month_start(month: str, type_: str) -> str:
    """The first instant of ``month`` (``YYYY-MM``) as a constant of the column type ``type_``."""
    if type_ == "DATE":
        return f"DATE {literal(month + '-01')}"
    return f"CAST(TIMESTAMP {literal(month + '-01 00:00:00')} AS {type_})"


CALENDAR_TYPES = ("DATE", "TIMESTAMP")
"""Month columns whose month is their calendar month, whatever the session's time zone."""

SEARCHED_MONTHS = 1200
"""At most this many months (a century) are told apart by comparisons; a table spanning more (a
placeholder year somewhere) keeps ``strftime``."""

CLOCK_CHECK_MINUTES = 240
"""How far around each month start a time zone's clock is checked, in minutes, before a
``TIMESTAMPTZ`` month is told by its start instants (any clock change of the tz database is
shorter)."""


def _month_of(con: duckdb.DuckDBPyConnection, table: _Table,
              months: set[str] | None = None) -> str:
    """:attr:`_Table.part` (``strftime`` of the month column) as a cheaper expression giving the
    same text: comparisons with the months' first instants, nested as a binary search, over
    the months from ``months``' first to its last (all the table's, by its ``min`` and ``max``,
    when not given), and ``strftime`` itself for any other value (none, or a ``NULL``).

    ``strftime`` of a ``TIMESTAMPTZ`` converts every row to the session's time zone, the most
    expensive part of fingerprinting and splitting a fact table by month (a first publish of
    15M order lines: 1.3-1.6 s against 0.6 s). A time zone whose clock goes back across the
    start of a month (St. John's, 1 November 2009) makes the month of an instant not grow with
    it; the start instants are checked minute by minute around each month start, and such a
    table keeps ``strftime``.
    """
    part = table.part
    if (part == "'all'" or table.key in CLOSED_BY_MONTH
            or table.month_type not in (*CALENDAR_TYPES, "TIMESTAMP WITH TIME ZONE")):
        return part
    column = identifier(month_column([c for c, _ in table.columns]))
    if months and None not in months:
        first, last = min(months), max(months)
    else:
        first, last = con.execute(f"SELECT strftime(min({column}), '%Y-%m'), "
                                  f"strftime(max({column}), '%Y-%m') FROM {table.relation}"
                                  ).fetchone()
        if first is None:
            return part
    spanned = [first]
    while spanned[-1] < last and len(spanned) <= SEARCHED_MONTHS:
        spanned.append(_next_month(spanned[-1]))
    if len(spanned) > SEARCHED_MONTHS:
        return part
    starts = [_month_start(m, table.month_type) for m in [*spanned, _next_month(last)]]
    if table.month_type not in CALENDAR_TYPES:
        edges = ", ".join(f"({literal(m)}, {literal(p)}, {b})" for m, p, b in zip(
            [*spanned[1:], _next_month(last)], spanned, starts[1:], strict=True))
        (wrong,) = con.execute(
            f"SELECT count(*) FROM (VALUES ({literal(first)}, NULL, {starts[0]}), {edges}) "
            f"AS e(month, before, start), range(-{CLOCK_CHECK_MINUTES}, {CLOCK_CHECK_MINUTES}) "
            "AS r(minute) WHERE strftime(to_timestamp(epoch(start) + minute * 60), '%Y-%m') "
            "IS DISTINCT FROM CASE WHEN minute >= 0 THEN month ELSE coalesce(before, "
            "strftime(to_timestamp(epoch(start) + minute * 60), '%Y-%m')) END").fetchone()
        if wrong:
            return part

    def search(low: int, high: int) -> str:  # the month of spanned[low:high] a value is in
        if high - low == 1:
            return literal(spanned[low])
        middle = (low + high) // 2
        return (f"CASE WHEN {column} < {starts[middle]} THEN {search(low, middle)} "
                f"ELSE {search(middle, high)} END")

    return (f"CASE WHEN {column} >= {starts[0]} AND {column} < {starts[-1]} "
            f"THEN {search(0, len(spanned))} ELSE {part} END")


def publish(con: duckdb.DuckDBPyConnection, serving_dir: Path, since: int | None = None,
            tier: Tier = BI, *, expire_previous: bool = False,
            docs: Mapping[str, TableDoc] | None = None) -> PublishResult:
    """Publish what ``tier`` serves of ``con``'s warehouse to ``serving_dir``.

    Args:
        since: the batch the last publish was up to (:mod:`crm_assets.warehouse.state`). A table
            whose last build (``meta.built_versions``) is not newer keeps its files unread; a
            table that records batches (``_batch``, or ``meta.event_days`` for events) has only
            the months it touched fingerprinted again. ``None``: fingerprint every table.
        expire_previous: the snapshots before this one expire :data:`KEEP_HOURS` from now, however
            few publishes follow (an erasure: they hold the erased person; sessions open on
            them keep working until then).
        docs: descriptions of tables and columns by table (``schema.table``), from the SQL
            catalogue; the framework's own (:data:`LAYER_COLUMN_DOCS`, the framework tables) are
            added. ``None``: those the last publish was given (an erasure publishes without the
            catalogue).
    """
    serving_dir = serving_dir.resolve()
    data = serving_dir / "data"
    previous_tables = _previous_tables(serving_dir)
    docs = _previous_docs(serving_dir) if docs is None else docs
    served: list[tuple[_Table, list[Path]]] = []
    written = reused = rows = 0
    for table in _served_tables(con, tier):
        before = previous_tables.get(table.key)
        months = None if since is None or before is None else _touched(con, table, since)
        if months and any(p.parent.name == "all" for p in before):
            months = None  # served whole until now (empty, or split since): every part again
        if months is not None and not months:  # not rebuilt since: the same files
            served.append((table, before))
            reused += len(before)
            rows += _row_count(con, table)
            continue
        kept = {p.parent.name: p for p in before or []} if months else {}
        files, n_written, n_rows = _publish_table(con, table, data, months)
        files = {**{k: p for k, p in kept.items() if k not in (months or ())}, **files}
        served.append((table, [files[k] for k in sorted(files)]))
        written += n_written
        reused += len(files) - n_written
        rows += n_rows if not months else _row_count(con, table)

    now = datetime.now(UTC)
    current = {"published_at": now.isoformat(),
               "files": sorted(str(p) for _, files in served for p in files)}
    previous = _generations(serving_dir)
    if previous and previous[0]["files"] == current["files"]:
        previous.pop(0)  # nothing changed: not a new snapshot, the same one published again
    if expire_previous:
        expiry = (now + timedelta(hours=KEEP_HOURS)).isoformat()
        previous = [{**g, "expires_at": min(g.get("expires_at") or expiry, expiry)}
                    for g in previous]
    generations = [current, *[
        g for i, g in enumerate(previous, 1)
        if (i < KEEP or now - datetime.fromisoformat(g["published_at"]) < timedelta(
            hours=KEEP_HOURS))
        and not (g.get("expires_at") and datetime.fromisoformat(g["expires_at"]) <= now)]]
    _swap_views(serving_dir, served, tier, docs)
    manifest = {
        "published_at": current["published_at"],
        "serving_dir": str(serving_dir),
        "tables": {table.key: [str(p) for p in files] for table, files in served},
        "generations": generations,
        "docs": {key: {"description": doc.description, "columns": dict(doc.columns)}
                 for key, doc in sorted(docs.items())},
    }
    tmp = serving_dir / f".{MANIFEST_FILE}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    os.replace(tmp, serving_dir / MANIFEST_FILE)
    removed = _collect_garbage(data, {p for g in generations for p in g["files"]})
    return PublishResult(serving_dir / VIEWS_FILE, len(served), rows, written, reused, removed)


def _previous_docs(serving_dir: Path) -> dict[str, TableDoc]:
    """The descriptions the last publish was given (none if its manifest is unreadable)."""
    try:
        manifest = _manifest(serving_dir)
        return {key: TableDoc(str(doc.get("description") or ""),
                              {str(c): str(d) for c, d in (doc.get("columns") or {}).items()})
                for key, doc in (manifest.get("docs") or {}).items()}
    except (KeyError, TypeError, AttributeError):
        return {}


def _generations(serving_dir: Path) -> list[dict]:
    """The snapshots the last publish kept, newest first (none if its manifest is unreadable)."""
    try:
        manifest = _manifest(serving_dir)
        return [{"published_at": str(g["published_at"]), "files": list(g["files"]),
                 **({"expires_at": str(g["expires_at"])} if g.get("expires_at") else {})}
                for g in manifest.get("generations", [])]
    except (KeyError, TypeError, AttributeError):
        return []


def _swap_views(serving_dir: Path, served: list[tuple[_Table, list[Path]]], tier: Tier,
                docs: Mapping[str, TableDoc]) -> None:
    """Write a new views file next to the old one and rename it over it (atomic on POSIX).

    It is written by a database of its own, in which it is the default: names in the history
    macros resolve in the snapshot, as they do for a reader that opens it.
    """
    alias = f"serving_{uuid.uuid4().hex[:12]}"
    tmp = serving_dir / f".{VIEWS_FILE}.{alias}.tmp"
    statements = [f"CREATE SCHEMA {identifier(schema)}" for schema in tier.schemas]
    statements += [f"CREATE VIEW {table.relation} AS SELECT {table.read_columns()} "
                   f"FROM {_parquet(files)}" for table, files in served]
    if tier.history:
        statements += _history_statements(served)
    statements += _comments(alias, served, docs, tier)
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {literal(str(tmp))} AS {alias} "
                    f"(STORAGE_VERSION {literal(STORAGE_VERSION)})")
        con.execute(f"USE {alias}")
        con.execute("BEGIN TRANSACTION;\n" + ";\n".join(statements) + ";\nCOMMIT")
        con.execute("USE memory")
        con.execute(f"DETACH {alias}")
    finally:
        con.close()
    os.replace(tmp, serving_dir / VIEWS_FILE)
    Path(f"{tmp}.wal").unlink(missing_ok=True)


def _parquet(files: list[Path]) -> str:
    return f"read_parquet([{', '.join(literal(str(p)) for p in files)}])"


_FRAMEWORK_TABLES = {t.name: t for t in FRAMEWORK_TABLES}


def _doc_of(table: _Table, docs: Mapping[str, TableDoc]) -> TableDoc:
    """``table``'s description and column descriptions: the catalogue's (``docs``), else the
    framework's declaration, else what every table of its layer says of a column."""
    framework = _FRAMEWORK_TABLES.get(table.key)
    given = docs.get(table.key, TableDoc())
    columns = {**LAYER_COLUMN_DOCS.get(table.schema, {}),
               **{c.name: c.description for c in (framework.columns if framework else ())
                  if c.description},
               **{c: d for c, d in given.columns.items() if d}}
    return TableDoc(given.description or (framework.description if framework else ""), columns)


def _comments(alias: str, served: list[tuple[_Table, list[Path]]],
              docs: Mapping[str, TableDoc], tier: Tier) -> list[str]:
    """``COMMENT ON`` each view and each described column it serves (BI tools show them)."""
    described = [(f"{alias}.{table.relation}", _doc_of(table, docs), [c for c, _ in table.served])
                 for table, _ in served]
    if tier.history:
        described.append((f"{alias}.{identifier(ALL_EVENTS[0])}.{identifier(ALL_EVENTS[1])}",
                          TableDoc(ALL_EVENTS_DOC, ALL_EVENTS_COLUMNS), list(ALL_EVENTS_COLUMNS)))
    statements = []
    for view, doc, columns in described:
        if doc.description:
            statements.append(f"COMMENT ON VIEW {view} IS {literal(doc.description)}")
        statements += [f"COMMENT ON COLUMN {view}.{identifier(c)} IS {literal(doc.columns[c])}"
                       for c in columns if doc.columns.get(c)]
    return statements


def _collect_garbage(data: Path, kept: set[str]) -> int:
    """Delete the Parquet files (and leftovers of interrupted publishes) no kept snapshot uses."""
    removed = 0
    if not data.exists():
        return 0
    for path in sorted(data.rglob("*"), reverse=True):  # files before their folders
        if path.is_file() and str(path) not in kept:
            path.unlink()
            removed += path.suffix == ".parquet"
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return removed


ALL_EVENTS_DOC = ("Every event's occurrences in one view (event, customer_id, occurred_at, "
                  "event_date, definition_version): what the history macros read; filter by "
                  "event to read one event only.")

HISTORY_MACROS: dict[str, tuple[str, str, str]] = {
    "event_between": (
        "event_name, first_day, last_day",
        """SELECT customer_id, count(*) AS occurrences, min(occurred_at) AS first_occurred_at,
       max(occurred_at) AS last_occurred_at
FROM events._all_events
WHERE event = event_name
  AND event_date BETWEEN CAST(first_day AS DATE) AND CAST(last_day AS DATE)
GROUP BY customer_id
UNION ALL
SELECT NULL, NULL, NULL, NULL WHERE NOT main.require_event(event_name)
ORDER BY customer_id""",
        "Who met an event between two business days (inclusive): customer_id, occurrences, "
        "first_occurred_at, last_occurred_at."),
    "event_on": (
        "event_name, day",
        "SELECT * FROM main.event_between(event_name, day, day)",
        "Who met an event on a business day: customer_id, occurrences, first_occurred_at, "
        "last_occurred_at."),
    "event_at_least": (
        "event_name, times, within_days, first_day, last_day",
        """WITH counted AS (
    SELECT customer_id, event_date,
           count(*) OVER (PARTITION BY customer_id ORDER BY event_date
                          RANGE BETWEEN greatest(CAST(within_days AS INTEGER), 1) - 1 PRECEDING
                          AND CURRENT ROW) AS in_window
    FROM events._all_events
    WHERE event = event_name
      AND (first_day IS NULL OR event_date >= CAST(first_day AS DATE))
      AND (last_day IS NULL OR event_date <= CAST(last_day AS DATE))
)
SELECT customer_id, min(event_date) FILTER (WHERE in_window >= times) AS reached_on,
       max(in_window) AS most_in_window
FROM counted
GROUP BY customer_id
HAVING max(in_window) >= times
UNION ALL
SELECT NULL, NULL, NULL
WHERE NOT main.require_event(event_name)
   OR CASE WHEN times >= 1 AND within_days >= 1 THEN false
           ELSE error('times and within_days must be 1 or more') END
ORDER BY customer_id""",
        "Who met an event at least `times` times within `within_days` consecutive business "
        "days, counting the occurrences between first_day and last_day (inclusive; NULL: no "
        "bound): customer_id, reached_on (the first day they had), most_in_window (the most "
        "occurrences in any such days)."),
    "segment_members": (
        "segment_name, day",
        """SELECT customer_id, valid_from, valid_to
FROM marts.segment_membership_history
WHERE segment = segment_name
  AND CASE WHEN day IS NULL THEN valid_to IS NULL
           ELSE valid_from <= CAST(day AS DATE)
                AND (valid_to IS NULL OR valid_to > CAST(day AS DATE)) END
UNION ALL
SELECT NULL, NULL, NULL WHERE NOT main.require_segment(segment_name)
ORDER BY customer_id""",
        "Members of a segment on a day (NULL: now, as of the last day computed), from its "
        "history: customer_id, valid_from, valid_to of the membership."),
    "segment_changes": (
        "segment_name, first_day, last_day",
        """WITH spells AS (
    SELECT customer_id, valid_from, valid_to FROM marts.segment_membership_history
    WHERE segment = segment_name
)
SELECT customer_id, valid_from AS day, 'entered' AS direction FROM spells AS s
WHERE valid_from BETWEEN CAST(first_day AS DATE) AND CAST(last_day AS DATE)
  AND NOT EXISTS (SELECT 1 FROM spells AS p
                  WHERE p.customer_id = s.customer_id AND p.valid_to = s.valid_from)
UNION ALL
SELECT customer_id, valid_to, 'left' FROM spells AS s
WHERE valid_to BETWEEN CAST(first_day AS DATE) AND CAST(last_day AS DATE)
  AND NOT EXISTS (SELECT 1 FROM spells AS n
                  WHERE n.customer_id = s.customer_id AND n.valid_from = s.valid_to)
UNION ALL
SELECT NULL, NULL, NULL WHERE NOT main.require_segment(segment_name)
ORDER BY day, customer_id""",
        "Who entered or left a segment between two days (inclusive): customer_id, day, "
        "direction ('entered' or 'left'). A membership that ends the day another begins is "
        "neither."),
}
"""The history macros of the BI snapshot (schema ``main``): name -> (parameters, query,
description). Days may be given as ``DATE`` or as ``'YYYY-MM-DD'`` text. No parameter has a
default: DuckDB 1.1 takes those by name only, so every call is written the same in every client
(NULL where a bound or a day is left open). An unknown event or segment raises an error naming
the close ones (``require_event``, ``require_segment``)."""


def history_call(macro: str, *arguments: object) -> str:
    """``SELECT * FROM main.<macro>(...)`` with ``arguments`` as literals (a ``date`` as a
    ``DATE``, ``None`` as ``NULL``): how a program asks the snapshot what a BI tool asks it."""
    if macro not in HISTORY_MACROS:
        raise ValueError(f"no history macro named {macro!r}")
    values = ", ".join(f"DATE {literal(a.isoformat())}" if isinstance(a, date) else literal(a)
                       for a in arguments)
    return f"SELECT * FROM main.{identifier(macro)}({values})"


def history_macros(events: list[str], segments: list[str] | None) -> list[str]:
    """``CREATE MACRO`` statements of the history macros, with their descriptions, for a
    snapshot serving ``events`` and ``segments`` (``None``: no membership history served, no
    segment macros)."""
    statements = [_require_macro("event", "events", events)]
    if segments is not None:
        statements.append(_require_macro("segment", "segments", segments))
    for name, (parameters, query, description) in HISTORY_MACROS.items():
        if segments is None and name.startswith("segment_"):
            continue
        statements += [f"CREATE MACRO main.{name}({parameters}) AS TABLE\n{query}",
                       f"COMMENT ON MACRO TABLE main.{name} IS "
                       f"{literal(f'{name}({parameters}): {description}')}"]
    return statements


def _require_macro(kind: str, plural: str, names: list[str]) -> str:
    """``main.require_<kind>(name)``: true when the snapshot has ``name``, else an error that
    names the closest ones (Jaro-Winkler similarity 0.8 or more), or all of them."""
    listed = f"CAST([{', '.join(literal(n) for n in sorted(names))}] AS VARCHAR[])"
    otherwise = literal(f"{plural}: {', '.join(sorted(names))}" if names else f"no {plural}")
    return f"""CREATE MACRO main.require_{kind}(name) AS CASE
    WHEN list_contains({listed}, CAST(name AS VARCHAR)) THEN true
    ELSE error('no {kind} named ' || coalesce(CAST(name AS VARCHAR), 'NULL')
               || ' in the BI snapshot; ' || coalesce(
        (SELECT 'did you mean ' || string_agg(candidate, ', ' ORDER BY score DESC, candidate)
                || '?'
         FROM (SELECT candidate, jaro_winkler_similarity(candidate, CAST(name AS VARCHAR)) AS score
               FROM (SELECT unnest({listed}) AS candidate)
               ORDER BY score DESC, candidate LIMIT 3) AS close
         WHERE score >= 0.8), {otherwise}))
END"""


EVENT_COLUMNS: tuple[str, ...] = ("customer_id", "occurred_at", "event_date")
"""What an events table needs to be in ``events._all_events`` (every event the framework builds
has them, and ``definition_version``)."""


def _history_statements(served: list[tuple[_Table, list[Path]]]) -> list[str]:
    """``events._all_events`` and the history macros over the tables ``served``."""
    events = [(t, files) for t, files in served
              if t.schema == "events" and set(EVENT_COLUMNS) <= {c for c, _ in t.served}]
    branches = []
    for table, files in events:
        types = dict(table.served)
        version = (_read_back("definition_version", types["definition_version"])
                   if "definition_version" in types else "CAST(NULL AS VARCHAR)")
        branches.append(
            f"SELECT {literal(table.name)} AS event, "
            f"{', '.join(_read_back(c, types[c]) for c in EVENT_COLUMNS)}, "
            f"{version} AS definition_version FROM {_parquet(files)}")
    union = "\nUNION ALL\n".join(branches) or (
        "SELECT CAST(NULL AS VARCHAR) AS event, CAST(NULL AS BIGINT) AS customer_id, "
        "CAST(NULL AS TIMESTAMPTZ) AS occurred_at, CAST(NULL AS DATE) AS event_date, "
        "CAST(NULL AS VARCHAR) AS definition_version WHERE false")
    history = any(t.key == SEGMENT_MEMBERSHIP_HISTORY.name for t, _ in served)
    segments = sorted(t.name for t, _ in served if t.schema == "segments") if history else None
    return [f"CREATE VIEW {identifier(ALL_EVENTS[0])}.{identifier(ALL_EVENTS[1])} AS\n{union}",
            *history_macros([t.name for t, _ in events], segments)]
