"""Trigger exports: one CSV per day of the people an event's trigger chain may e-mail.

An event whose header ``tags`` hold ``trigger`` (``first_purchase`` feeds the welcome chain) gets,
for each day built, ``<contacts>/exports/<event>/<day>.csv`` (beside the contacts snapshot, not the
BI one: the files hold e-mail addresses): who met the event that day and may be
e-mailed (a contact and e-mail consent, :mod:`~crm_assets.serving.audiences`), with a stable
target/holdout split seeded by the event's name. Each file appears complete or not at all (written
beside and renamed), so the e-mail tool never picks up half a file. A day of the event rebuilt
later (late data) has its file written again by the next run.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from crm_assets.quoting import literal
from crm_assets.serving.audiences import audience_by_day_sql
from crm_assets.warehouse.state import set_watermark, watermark
from crm_assets.warehouse.tables import EVENT_DAYS

TRIGGER_TAG = "trigger"
"""An event whose header ``tags`` hold this feeds a trigger chain: its people are exported daily."""


def export_folder(contacts_dir: Path, event: str) -> Path:
    return contacts_dir / "exports" / event


def days_to_export(con: duckdb.DuckDBPyConnection, event: str, window: list[date]
                   ) -> tuple[list[date], int]:
    """The days whose file to write: ``window``, and every day of ``events.<event>`` rebuilt
    since the last export (late data); and the batch the export is then up to."""
    consumer, source = f"exports.{event}", f"events.{event}"
    since, last = watermark(con, consumer, source), con.execute(
        f"SELECT coalesce(max(batch), 0) FROM {EVENT_DAYS.name} WHERE event = ?",
        [event]).fetchone()[0]
    rebuilt = [r[0] for r in con.execute(
        f"SELECT event_date FROM {EVENT_DAYS.name} WHERE event = ? AND batch > ? "
        "AND event_date <= ?", [event, since, max(window)]).fetchall()] if window else []
    return sorted({*window, *rebuilt}), int(last)


def write_trigger_exports(con: duckdb.DuckDBPyConnection, event: str, folder: Path,
                          days: list[date], up_to_batch: int | None = None) -> dict[date, int]:
    """Write ``<folder>/<day>.csv`` for each of ``days``; the people written per day.

    The audience of every day is computed by one query, stored by day (so each day's ``COPY``
    reads only its own row groups: 546 days of ``first_purchase`` at 1M persons 2.1 s -> 1.45 s);
    then one small ``COPY`` per day from it (a query per day cost ~25 ms, 20 s for two years).
    A day's file is replaced whole.
    ``up_to_batch`` (from :func:`days_to_export`) is recorded as what the export has taken in.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[date, int] = {}
    con.execute("CREATE OR REPLACE TEMP TABLE _crm_export AS SELECT * FROM ("
                f"{audience_by_day_sql(con, event, days, channel='email', seed=event)}\n"
                ") ORDER BY event_date, customer_id")
    for day in days:
        tmp = folder / f".{day}.csv.tmp"
        written[day] = int(con.execute(
            "COPY (SELECT * EXCLUDE (event_date) FROM _crm_export "
            f"WHERE event_date = DATE {literal(day.isoformat())} ORDER BY customer_id) "
            f"TO {literal(str(tmp))} (HEADER)").fetchone()[0])
        tmp.replace(folder / f"{day}.csv")
    con.execute("DROP TABLE _crm_export")
    if up_to_batch is not None:
        set_watermark(con, f"exports.{event}", f"events.{event}", up_to_batch)
    return written


def scrub_exports(contacts_dir: Path, customer_ids: list[int]) -> int:
    """Rewrite every trigger export file holding one of ``customer_ids`` without their rows (each
    file replaced whole, by a rename); how many files were rewritten. An erasure calls it."""
    root = contacts_dir / "exports"
    files = sorted(root.glob("*/*.csv"))
    if not customer_ids or not files:
        return 0
    ids = ", ".join(str(int(i)) for i in customer_ids)
    con = duckdb.connect()
    try:
        con.execute("SET python_enable_replacements = false")
        listed = ", ".join(literal(str(f)) for f in files)
        holding = [Path(r[0]) for r in con.execute(
            f"SELECT DISTINCT filename FROM read_csv([{listed}], filename = true, header = true, "
            f"all_varchar = true, union_by_name = true) WHERE TRY_CAST(customer_id AS BIGINT) "
            f"IN ({ids})").fetchall()]
        for path in holding:
            tmp = path.with_name(f".{path.name}.tmp")
            con.execute(f"COPY (SELECT * FROM read_csv({literal(str(path))}, header = true, "
                        f"all_varchar = true) WHERE TRY_CAST(customer_id AS BIGINT) "
                        f"NOT IN ({ids})) TO {literal(str(tmp))} (HEADER)")
            tmp.replace(path)
    finally:
        con.close()
    return len(holding)
