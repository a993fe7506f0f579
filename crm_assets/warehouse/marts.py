"""Marts the framework writes itself, because no one SQL file can: they read every event table.

``marts.event_daily_counts`` has one row per event and business day: occurrences and distinct
customers. Its query is one ``UNION ALL`` over the event tables that exist (an event with no
partition built yet has no table, and no occurrence either); a night counts again only the days
it built (:func:`materialize_event_daily_counts`).
"""

from __future__ import annotations

import hashlib
import json

import duckdb

from crm_assets.quoting import literal, table
from crm_assets.warehouse.connection import table_exists, transaction
from crm_assets.warehouse.state import (
    FRAMEWORK_VERSION,
    built_from,
    next_batch,
    set_built_version,
    set_watermark,
    watermark,
)
from crm_assets.warehouse.tables import ERASURES, EVENT_DAYS

EVENT_DAILY_COUNTS = "marts.event_daily_counts"


def event_daily_counts_sql(event_tables: list[str]) -> str:
    """One query over ``event_tables``: rows and distinct customers per event and day."""
    if not event_tables:
        return ("SELECT NULL::VARCHAR AS event, NULL::DATE AS event_date, 0::BIGINT AS occurrences,"
                " 0::BIGINT AS customers WHERE false")
    parts = [f"SELECT {literal(t.split('.')[1])} AS event, event_date, count(*) AS occurrences, "
             f"count(DISTINCT customer_id) AS customers FROM {table(t)} GROUP BY event_date"
             for t in event_tables]
    return " UNION ALL ".join(parts) + " ORDER BY event, event_date"


def materialize_event_daily_counts(con: duckdb.DuckDBPyConnection, event_tables: list[str]
                                   ) -> tuple[int, str, list[str]]:
    """Bring ``marts.event_daily_counts`` up to date; its rows, its SQL and the events not built
    yet.

    Only the days built since it was last brought up to date (``meta.event_days`` rows of a later
    batch) are counted again, so a night costs its days, not the history. It is computed whole
    the first time, and when the events built, the framework's version or the erasures (which
    delete occurrences without building a day) are not what they were.
    """
    built = [t for t in event_tables if table_exists(con, t)]
    sql = event_daily_counts_sql(built)
    erasures = con.execute(f"SELECT count(*) FROM {ERASURES.name}").fetchone()[0]
    inputs = hashlib.sha256(json.dumps([FRAMEWORK_VERSION, built, erasures]).encode()).hexdigest()
    since = watermark(con, EVENT_DAILY_COUNTS, EVENT_DAYS.name)
    seen = int(con.execute(f"SELECT coalesce(max(batch), 0) FROM {EVENT_DAYS.name}").fetchone()[0])
    whole = not (table_exists(con, EVENT_DAILY_COUNTS)
                 and built_from(con, EVENT_DAILY_COUNTS) == (FRAMEWORK_VERSION, inputs))
    changed = [] if whole else con.execute(
        f"SELECT 'events.' || event, list(event_date) FROM {EVENT_DAYS.name} WHERE batch > ? "
        "GROUP BY 1", [since]).fetchall()
    changed = [(t, days) for t, days in changed if t in built]
    if whole or changed:
        batch = next_batch(con)
        with transaction(con):
            if whole:
                con.execute(f"CREATE OR REPLACE TABLE {EVENT_DAILY_COUNTS} AS {sql}")
            for t, days in changed:
                con.execute(f"DELETE FROM {EVENT_DAILY_COUNTS} WHERE event = ? "
                            "AND list_contains(?, event_date)", [t.split(".")[1], days])
                con.execute(f"INSERT INTO {EVENT_DAILY_COUNTS} SELECT * FROM "
                            f"({event_daily_counts_sql([t])}) WHERE list_contains(?, event_date)",
                            [days])
            set_watermark(con, EVENT_DAILY_COUNTS, EVENT_DAYS.name, seen)
            set_built_version(con, EVENT_DAILY_COUNTS, FRAMEWORK_VERSION, batch,
                              ["event", "event_date"], inputs=inputs)
    rows = con.execute(f"SELECT count(*) FROM {EVENT_DAILY_COUNTS}").fetchone()[0]
    return int(rows), sql, sorted(set(event_tables) - set(built))
