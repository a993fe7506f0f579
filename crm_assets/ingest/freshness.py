"""How old the newest file of each raw table is, against its limit.

The last file loaded into a table (``meta.loaded_files``; a header-only file counts, as the export
did run) must be at most the table's limit old (``[tool.crm.freshness_hours]``, defaults in
:data:`crm_assets.settings.DEFAULT_FRESHNESS_HOURS`). The ``freshness`` check of each raw table
(:mod:`crm_assets.defs.checks`) reports it as a warning, not a reason to stop the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from crm_assets.ingest.contracts import SOURCES
from crm_assets.warehouse.connection import table_exists
from crm_assets.warehouse.tables import LOADED_FILES


@dataclass(frozen=True)
class Freshness:
    """How old the newest file of a raw table is, against its limit."""

    table: str
    limit_hours: float
    files: int
    last_loaded_at: datetime | None
    last_file: str | None
    age_hours: float | None

    @property
    def ok(self) -> bool:
        if self.age_hours is None:
            return not SOURCES[self.table].required
        return self.age_hours <= self.limit_hours


def freshness(con: duckdb.DuckDBPyConnection, table: str, limit_hours: float,
              now: datetime | None = None) -> Freshness:
    """The age of the last file loaded into ``raw.<table>`` at ``now`` (default: the clock).

    A table that never had a file is fresh if it is optional (it may legitimately not exist) and
    stale if it is required.
    """
    now = now or datetime.now(UTC)
    files, last, name = 0, None, None
    if table_exists(con, LOADED_FILES.name):
        files, last, name = con.execute(
            "SELECT count(*), max(loaded_at), arg_max(source_file, loaded_at) "
            f"FROM {LOADED_FILES.name} WHERE table_name = ?", [table]).fetchone()
    age = None if last is None else (now - last).total_seconds() / 3600
    return Freshness(table, float(limit_hours), int(files), last, name, age)
