"""Trigger exports: one CSV per day of the people an event's trigger chain may e-mail.

An event whose header ``tags`` hold ``trigger`` (``first_purchase`` feeds the welcome chain) gets,
for each day built, ``<serving>/exports/<event>/<day>.csv``: who met the event that day and may be
e-mailed (a contact and e-mail consent, :mod:`~crm_assets.serving.audiences`), with a stable
target/holdout split seeded by the event's name. Each file appears complete or not at all (written
beside and renamed), so the e-mail tool never picks up half a file.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from crm_assets.quoting import literal
from crm_assets.serving.audiences import audience_sql

TRIGGER_TAG = "trigger"
"""An event whose header ``tags`` hold this feeds a trigger chain: its people are exported daily."""


def export_folder(serving_dir: Path, event: str) -> Path:
    return serving_dir / "exports" / event


def write_trigger_exports(con: duckdb.DuckDBPyConnection, event: str, folder: Path,
                          days: list[date]) -> dict[date, int]:
    """Write ``<folder>/<day>.csv`` for each of ``days``; the people written per day.

    One small ``COPY`` per day (~15 ms each); a day's file is replaced whole.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[date, int] = {}
    for day in days:
        sql = audience_sql(con, event, channel="email", seed=event, day=day)
        tmp = folder / f".{day}.csv.tmp"
        written[day] = int(con.execute(f"COPY ({sql}) TO {literal(str(tmp))} (HEADER)"
                                       ).fetchone()[0])
        tmp.replace(folder / f"{day}.csv")
    return written
