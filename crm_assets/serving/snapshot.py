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
deleted, so a reader that opened one of those still finds its files. A DuckDB process keeps the
database it opened (its connections to one path share an instance): a BI tool sees a new snapshot
once it has closed its connections to the old one and reconnects.
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

SERVED_SCHEMAS: tuple[str, ...] = ("core", "segments", "events", "marts")
"""What BI reads: golden records and facts, segments, events and marts (not raw, staging, meta)."""
VIEWS_FILE = "crm.duckdb"
MANIFEST_FILE = "manifest.json"
STORAGE_VERSION = "v1.0.0"
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


def _served_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = "
        "current_database() AND NOT temporary AND list_contains(?, schema_name) ORDER BY 1, 2",
        [list(SERVED_SCHEMAS)]).fetchall()


def _write(con: duckdb.DuckDBPyConnection, select: str, path: Path) -> None:
    """``select`` to the Parquet file ``path``, which appears complete or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    con.execute(f"COPY ({select}) TO {literal(str(tmp))} (FORMAT parquet, COMPRESSION zstd)")
    os.replace(tmp, path)


def publish(con: duckdb.DuckDBPyConnection, serving_dir: Path) -> PublishResult:
    """Publish every table of :data:`SERVED_SCHEMAS` of ``con``'s warehouse to ``serving_dir``."""
    serving_dir = serving_dir.resolve()
    data = serving_dir / "data"
    salt = duckdb.__version__  # row hashes may differ between DuckDB versions
    views: dict[tuple[str, str], list[Path]] = {}
    written = reused = rows = 0
    for schema, table in _served_tables(con):
        relation = f"{identifier(schema)}.{identifier(table)}"
        columns = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = "
            "current_database() AND schema_name = ? AND table_name = ? ORDER BY column_index",
            [schema, table]).fetchall()
        shape = _digest(salt, json.dumps(columns))
        folder = data / schema / table
        # an event table in one file per month of event_date: a night's run rewrites one month
        part = ("strftime(event_date, '%Y-%m')"
                if schema == "events" and "event_date" in {c for c, _ in columns} else "'all'")
        parts = con.execute(
            f"SELECT {part} AS part, count(*), sum(hash(t)::HUGEINT) FROM {relation} AS t "
            "GROUP BY part ORDER BY part").fetchall() or [("all", 0, 0)]  # empty: keep columns
        wanted = {key: folder / key / f"{_digest(shape, n, h)}.parquet" for key, n, h in parts}
        missing = [key for key, path in wanted.items() if not path.exists()]
        if missing:  # every changed part in one statement, then each file to its own name
            tmp = folder / f".{uuid.uuid4().hex}.tmp"
            tmp.mkdir(parents=True)
            keys = ", ".join(literal(key) for key in missing)
            con.execute(
                f"COPY (SELECT *, {part} AS _part FROM {relation} WHERE {part} IN ({keys})) "
                f"TO {literal(str(tmp))} (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (_part), "
                "OVERWRITE_OR_IGNORE true)")
            for key in missing:
                wanted[key].parent.mkdir(parents=True, exist_ok=True)
                found = sorted((tmp / f"_part={key}").glob("*.parquet"))
                if found:
                    os.replace(found[0], wanted[key])
                else:  # an empty table writes no partition
                    _write(con, f"SELECT * FROM {relation} LIMIT 0", wanted[key])
            shutil.rmtree(tmp)
        written += len(missing)
        reused += len(wanted) - len(missing)
        rows += sum(n for _, n, _ in parts)
        views[(schema, table)] = list(wanted.values())

    now = datetime.now(UTC)
    current = {"published_at": now.isoformat(),
               "files": sorted(str(p) for files in views.values() for p in files)}
    previous = _generations(serving_dir)
    if previous and previous[0]["files"] == current["files"]:
        previous.pop(0)  # nothing changed: not a new snapshot, the same one published again
    generations = [current, *previous]
    generations = [g for i, g in enumerate(generations) if i < KEEP or now - datetime.fromisoformat(
        g["published_at"]) < timedelta(hours=KEEP_HOURS)]
    _swap_views(con, serving_dir, views)
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
        return [{"published_at": str(g["published_at"]), "files": list(g["files"])}
                for g in manifest.get("generations", [])]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _swap_views(con: duckdb.DuckDBPyConnection, serving_dir: Path,
                views: dict[tuple[str, str], list[Path]]) -> None:
    """Write a new views file next to the old one and rename it over it (atomic on POSIX)."""
    alias = f"serving_{uuid.uuid4().hex[:12]}"
    tmp = serving_dir / f".{VIEWS_FILE}.{alias}.tmp"
    con.execute(f"ATTACH {literal(str(tmp))} AS {alias} "
                f"(STORAGE_VERSION {literal(STORAGE_VERSION)})")
    try:
        for schema in SERVED_SCHEMAS:
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
