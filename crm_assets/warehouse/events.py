"""Events: day-partitioned tables of every occasion a customer met a criterion.

The file selects *every* occurrence; :func:`materialize_event_window` keeps those inside the run's
window (``occurred_at`` in ``[start, end)`` of business-zone days) and replaces exactly that window
in one transaction, so a re-run or a backfill of any range of days is two statements, whatever its
length.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from crm_assets.catalog import Definition
from crm_assets.quoting import identifier, literal
from crm_assets.warehouse.connection import transaction, use_functions_of
from crm_assets.warehouse.models import record_version


class EventSchemaError(RuntimeError):
    """The event table on disk has other columns than the definition now outputs."""


def event_columns(d: Definition) -> list[tuple[str, str]]:
    """The columns of ``events.<name>``: the query's, then ``event_date`` and the version."""
    return [*d.schema, ("event_date", "DATE"), ("definition_version", "VARCHAR")]


def materialize_event_window(con: duckdb.DuckDBPyConnection, d: Definition, start: datetime,
                             end: datetime, business_timezone: str, run_id: str) -> int:
    """Replace the occurrences in ``[start, end)`` (instants) by the query's, atomically."""
    use_functions_of(con, d)
    wanted = event_columns(d)
    cols = ", ".join(f"{identifier(n)} {t}" for n, t in wanted)
    con.execute(f"CREATE TABLE IF NOT EXISTS {d.table} ({cols})")
    existing = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {d.table}").fetchall()]
    if [n for n, _ in existing] != [n for n, _ in wanted]:
        raise EventSchemaError(
            f"{d.table} has columns {[n for n, _ in existing]} but {d.display_path} now outputs "
            f"{[n for n, _ in wanted]}; drop the table (`DROP TABLE {d.table}`) and backfill every "
            "partition to rebuild it with the new columns")
    select = ", ".join(f"src.{identifier(n)}" for n, _ in d.schema)
    event_date = f"CAST(timezone({literal(business_timezone)}, src.occurred_at) AS DATE)"
    with transaction(con):
        con.execute(f"DELETE FROM {d.table} WHERE occurred_at >= ? AND occurred_at < ?",
                    [start, end])
        con.execute(
            f"""INSERT INTO {d.table}
                SELECT {select}, {event_date}, {literal(d.version)}
                FROM (\n{d.body}\n) AS src
                WHERE src.occurred_at >= ? AND src.occurred_at < ?
                ORDER BY src.occurred_at, src.customer_id""",
            [start, end])
        record_version(con, d, run_id)
    return con.execute(f"SELECT count(*) FROM {d.table} WHERE occurred_at >= ? AND occurred_at < ?",
                       [start, end]).fetchone()[0]
