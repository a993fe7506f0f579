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
when no file of that name exists, all of a table's changed parts by one ``COPY``. Files that
no snapshot of the last :data:`KEEP` publishes or of the last :data:`KEEP_HOURS` hours uses are
deleted, so a reader that opened one of those still finds its files. After an erasure, the
snapshots before it expire :data:`KEEP_HOURS` later whatever follows (``expire_previous``).
A DuckDB process keeps the database it opened (its connections to one path share an instance):
a BI tool sees a new snapshot once it has closed its connections to the old one and reconnects.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from crm_assets.quoting import identifier, literal
from crm_assets.warehouse.tables import BUILT_VERSIONS, CHANGED_PARTS, EVENT_DAYS, month_column

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
    """

    name: str
    schemas: tuple[str, ...]
    tables: frozenset[str] | None = None
    withheld: frozenset[str] = frozenset()


BI = Tier("bi", SERVED_SCHEMAS, withheld=DIRECT_IDENTIFIERS)
"""The default snapshot: every served table, without direct identifiers (dashboards, analysts)."""

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
            "AND list_contains(?, c.schema_name) ORDER BY 1, 2, c.column_index",
            [list(tier.schemas)]).fetchall():
        if tier.tables is not None and f"{schema}.{table}" not in tier.tables:
            continue
        if column.lower() not in tier.withheld:
            columns.setdefault((schema, table), []).append((column, type_))
    return [_Table(schema, table, cols) for (schema, table), cols in sorted(columns.items())]


def _previous_tables(serving_dir: Path) -> dict[str, list[Path]]:
    """The files each table had in the last publish (none if its manifest is unreadable)."""
    try:
        manifest = json.loads((serving_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
        return {name: [Path(p) for p in files] for name, files in manifest["tables"].items()
                if all(Path(p).exists() for p in files)}
    except (OSError, ValueError, KeyError, TypeError):
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
    salt = duckdb.__version__  # row hashes may differ between DuckDB versions
    shape = _digest(salt, json.dumps(table.columns))
    folder = data / table.schema / table.name
    part, relation = table.part, table.relation
    # A few months are read one by one, each by a range of its column that DuckDB answers from
    # the row groups holding it (their min/max), not by computing every row's month.
    scopes = ([f" WHERE {table.month_range(m)} AND {part} = {literal(m)}" for m in sorted(months)]
              if months else [""])
    parts = []
    for where in scopes:
        parts += con.execute(
            f"SELECT {part} AS part, count(*), sum(hash(t)::HUGEINT) FROM (SELECT "
            f"{table.served_columns} FROM {relation}{where}) AS t GROUP BY part ORDER BY part"
        ).fetchall()
    if not parts and not months:
        parts = [("all", 0, 0)]  # an empty table keeps its columns
    wanted = {key: folder / key / f"{_digest(shape, n, h)}.parquet" for key, n, h in parts}
    missing = [key for key, path in wanted.items() if not path.exists()]
    if missing and months:  # a few months: each by its range
        for key in missing:
            _write(con, f"SELECT {table.served_columns} FROM {relation} WHERE "
                        f"{table.month_range(key)} AND {part} = {literal(key)}", wanted[key])
    elif missing:  # every changed part in one statement, then each file to its own name
        tmp = folder / f".{uuid.uuid4().hex}.tmp"
        tmp.mkdir(parents=True)
        keys = ", ".join(literal(key) for key in missing)
        con.execute(
            f"COPY (SELECT {table.served_columns}, {part} AS _part FROM {relation} "
            f"WHERE {part} IN ({keys})) TO {literal(str(tmp))} (FORMAT parquet, COMPRESSION "
            f"{PARQUET_COMPRESSION}, PARTITION_BY (_part), OVERWRITE_OR_IGNORE true)")
        for key in missing:
            wanted[key].parent.mkdir(parents=True, exist_ok=True)
            found = sorted((tmp / f"_part={key}").glob("*.parquet"))
            if found:
                os.replace(found[0], wanted[key])
            else:  # an empty table writes no partition
                _write(con, f"SELECT {table.served_columns} FROM {relation} LIMIT 0",
                       wanted[key])
        shutil.rmtree(tmp)
    return wanted, len(missing), sum(n for _, n, _ in parts)


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
        """The expression naming the file a row goes to: its month, or ``'all'``."""
        month = month_column([c for c, _ in self.columns])
        return f"strftime({identifier(month)}, '%Y-%m')" if month else "'all'"

    def month_range(self, month: str) -> str:
        """``month`` (``YYYY-MM``) as a range of the table's month column, in the column's type
        (a ``TIMESTAMPTZ`` bound is read in the session's time zone, as ``strftime`` is)."""
        column = month_column([c for c, _ in self.columns])
        type_ = dict(self.columns)[column]
        start = datetime.strptime(month, "%Y-%m")
        end = (start + timedelta(days=32)).replace(day=1)
        if type_ == "DATE":
            low, high = (f"DATE {literal(d.date().isoformat())}" for d in (start, end))
        else:
            low, high = (f"CAST(TIMESTAMP {literal(d.isoformat(' '))} AS {type_})"
                         for d in (start, end))
        return f"{identifier(column)} >= {low} AND {identifier(column)} < {high}"

    @property
    def served_columns(self) -> str:
        """The tier's columns but the framework's own ``_batch`` (which batch wrote a row)."""
        return ", ".join(identifier(c) for c, _ in self.columns if c != "_batch")


def publish(con: duckdb.DuckDBPyConnection, serving_dir: Path, since: int | None = None,
            tier: Tier = BI, *, expire_previous: bool = False) -> PublishResult:
    """Publish what ``tier`` serves of ``con``'s warehouse to ``serving_dir``.

    Args:
        since: the batch the last publish was up to (:mod:`crm_assets.warehouse.state`). A table
            whose last build (``meta.built_versions``) is not newer keeps its files unread; a
            table that records batches (``_batch``, or ``meta.event_days`` for events) has only
            the months it touched fingerprinted again. ``None``: fingerprint every table.
        expire_previous: the snapshots before this one expire :data:`KEEP_HOURS` from now, however
            few publishes follow (an erasure: they hold the erased person; sessions open on
            them keep working until then).
    """
    serving_dir = serving_dir.resolve()
    data = serving_dir / "data"
    previous_tables = _previous_tables(serving_dir)
    views: dict[tuple[str, str], list[Path]] = {}
    written = reused = rows = 0
    for table in _served_tables(con, tier):
        before = previous_tables.get(table.key)
        months = None if since is None or before is None else _touched(con, table, since)
        if months is not None and not months:  # not rebuilt since: the same files
            views[(table.schema, table.name)] = before
            reused += len(before)
            rows += _row_count(con, table)
            continue
        kept = {p.parent.name: p for p in before or []} if months else {}
        files, n_written, n_rows = _publish_table(con, table, data, months)
        files = {**{k: p for k, p in kept.items() if k not in (months or ())}, **files}
        views[(table.schema, table.name)] = [files[k] for k in sorted(files)]
        written += n_written
        reused += len(files) - n_written
        rows += n_rows if not months else _row_count(con, table)

    now = datetime.now(UTC)
    current = {"published_at": now.isoformat(),
               "files": sorted(str(p) for files in views.values() for p in files)}
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
    _swap_views(con, serving_dir, views, tier.schemas)
    manifest = {
        "published_at": current["published_at"],
        "tables": {f"{s}.{t}": [str(p) for p in files] for (s, t), files in views.items()},
        "generations": generations,
    }
    tmp = serving_dir / f".{MANIFEST_FILE}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    os.replace(tmp, serving_dir / MANIFEST_FILE)
    removed = _collect_garbage(data, {p for g in generations for p in g["files"]})
    return PublishResult(serving_dir / VIEWS_FILE, len(views), rows, written, reused, removed)


def _generations(serving_dir: Path) -> list[dict]:
    """The snapshots the last publish kept, newest first (none if its manifest is unreadable)."""
    try:
        manifest = json.loads((serving_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
        return [{"published_at": str(g["published_at"]), "files": list(g["files"]),
                 **({"expires_at": str(g["expires_at"])} if g.get("expires_at") else {})}
                for g in manifest.get("generations", [])]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _swap_views(con: duckdb.DuckDBPyConnection, serving_dir: Path,
                views: dict[tuple[str, str], list[Path]], schemas: tuple[str, ...]) -> None:
    """Write a new views file next to the old one and rename it over it (atomic on POSIX)."""
    alias = f"serving_{uuid.uuid4().hex[:12]}"
    tmp = serving_dir / f".{VIEWS_FILE}.{alias}.tmp"
    con.execute(f"ATTACH {literal(str(tmp))} AS {alias} "
                f"(STORAGE_VERSION {literal(STORAGE_VERSION)})")
    try:
        for schema in schemas:
            con.execute(f"CREATE SCHEMA {alias}.{schema}")
        for (schema, table), files in views.items():
            paths = ", ".join(literal(str(p)) for p in files)
            con.execute(f"CREATE VIEW {alias}.{identifier(schema)}.{identifier(table)} AS "
                        f"SELECT * FROM read_parquet([{paths}])")
    finally:
        con.execute(f"DETACH {alias}")
    os.replace(tmp, serving_dir / VIEWS_FILE)
    Path(f"{tmp}.wal").unlink(missing_ok=True)


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
