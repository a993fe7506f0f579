"""Marts the framework writes itself, because no one SQL file can: they read every event table.

``marts.event_daily_counts`` has one row per event and business day: occurrences and distinct
customers. Its query is one ``UNION ALL`` over the event tables that exist (an event with no
partition built yet has no table, and no occurrence either).
"""

from __future__ import annotations

import duckdb

from crm_assets.quoting import literal, table
from crm_assets.warehouse.connection import table_exists, transaction
from crm_assets.warehouse.state import (
    FRAMEWORK_VERSION,
    built_from,
    inputs_digest,
    next_batch,
    set_built_version,
)

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
    """Replace ``marts.event_daily_counts`` (unless no event table changed since it was
    computed); its rows, its SQL and the events not built yet."""
    built = [t for t in event_tables if table_exists(con, t)]
    sql = event_daily_counts_sql(built)
    inputs = inputs_digest(con, [FRAMEWORK_VERSION, sql], built)
    if not (table_exists(con, EVENT_DAILY_COUNTS) and inputs is not None
            and built_from(con, EVENT_DAILY_COUNTS) == (FRAMEWORK_VERSION, inputs)):
        batch = next_batch(con)
        with transaction(con):
            con.execute(f"CREATE OR REPLACE TABLE {EVENT_DAILY_COUNTS} AS {sql}")
            set_built_version(con, EVENT_DAILY_COUNTS, FRAMEWORK_VERSION, batch,
                              ["event", "event_date"], inputs=inputs)
    rows = con.execute(f"SELECT count(*) FROM {EVENT_DAILY_COUNTS}").fetchone()[0]
    return int(rows), sql, sorted(set(event_tables) - set(built))
