"""A small Python API for notebooks: segments and events as pandas DataFrames.

It reads the BI snapshot (:mod:`crm_assets.serving.snapshot`), never the warehouse, so a notebook
never waits for a run nor makes one fail, and it sees whole published tables only::

    from crm_assets import api

    api.members("croissant_buyers")                       # current members
    api.members("croissant_buyers", on="2026-03-01")      # who was a member that day
    api.events("croissant_purchase", "2026-06-01", "2026-06-30")
    api.segment_sizes("croissant_buyers")                 # members, entries, exits per day

Every function takes ``snapshot=`` (the views file) to read another deployment's snapshot; the
default is this project's (``[tool.crm]`` settings and ``CRM_*`` environment variables).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from crm_assets.quoting import identifier
from crm_assets.serving.snapshot import VIEWS_FILE
from crm_assets.settings import load_settings
from crm_assets.warehouse.connection import table_exists


class SnapshotError(LookupError):
    """No snapshot where one was expected, or no such segment or event in it."""


def _day(value: date | str | None) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


@contextmanager
def _snapshot(path: Path | str | None) -> Iterator[duckdb.DuckDBPyConnection]:
    path = Path(path) if path else load_settings().serving_path / VIEWS_FILE
    if not path.exists():
        raise SnapshotError(f"no BI snapshot at {path}: any build publishes one")
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET python_enable_replacements = false")
        yield con
    finally:
        con.close()


def _require(con: duckdb.DuckDBPyConnection, layer: str, name: str) -> str:
    if not table_exists(con, f"{layer}.{name}"):
        kind = {"segments": "segment", "events": "event"}.get(layer, "table")
        raise SnapshotError(f"no {kind} named {name!r} in the BI snapshot")
    return f"{identifier(layer)}.{identifier(name)}"


def members(segment: str, on: date | str | None = None, *,
            snapshot: Path | str | None = None) -> pd.DataFrame:
    """Members of ``segment``: now (every column of ``segments.<name>``), or ``on`` a past day
    (``customer_id``, ``valid_from``, ``valid_to``, from the membership history).

    A day after the last recorded as-of date gives the members as of that last date.
    """
    day = _day(on)
    with _snapshot(snapshot) as con:
        table = _require(con, "segments", segment)
        if day is None:
            return con.execute(f"SELECT * FROM {table} ORDER BY customer_id").df()
        return con.execute(
            """SELECT customer_id, valid_from, valid_to FROM marts.segment_membership_history
               WHERE segment = ? AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)
               ORDER BY customer_id""", [segment, day, day]).df()


def events(name: str, start: date | str | None = None, end: date | str | None = None, *,
           snapshot: Path | str | None = None) -> pd.DataFrame:
    """Occurrences of event ``name`` whose business day is in ``[start, end]`` (inclusive; either
    bound may be left open), ordered by time."""
    first, last = _day(start), _day(end)
    with _snapshot(snapshot) as con:
        table = _require(con, "events", name)
        return con.execute(
            f"""SELECT * FROM {table}
                WHERE (?::DATE IS NULL OR event_date >= ?) AND (?::DATE IS NULL OR event_date <= ?)
                ORDER BY occurred_at, customer_id""", [first, first, last, last]).df()


def segment_sizes(segment: str | None = None, *,
                  snapshot: Path | str | None = None) -> pd.DataFrame:
    """Members, entries and exits per day (``marts.segment_sizes_daily``), of one segment or all."""
    with _snapshot(snapshot) as con:
        table = _require(con, "marts", "segment_sizes_daily")
        return con.execute(
            f"""SELECT * FROM {table} WHERE ?::VARCHAR IS NULL OR segment = ?
                ORDER BY segment, size_date""", [segment, segment]).df()
