"""Campaign audiences: whom to contact from a segment or an event, with a stable test/holdout split.

An audience is the members of ``segments.<name>`` (or the people who met ``events.<name>`` on one
day: a trigger, such as the welcome chain after ``first_purchase``) that the channel may reach:
a contact and the person's latest explicit consent for it (``email`` + ``email_opt_in``, ``phone``
+ ``sms_opt_in``, ``push_opt_in``). Each person falls in a bucket from 0 to 9999 by the md5 of
``<seed>:<customer_id>``, so a split is random across people but the same on every run with the
same seed (use the campaign's id): the first ``holdout`` percent are the **holdout** (not
contacted, to measure lift against), the next ``sample`` percent the **target** (contacted; all the
rest when no sample is asked, to try a segment on a sample first).

It reads the snapshots (:mod:`crm_assets.serving.snapshot`), never the warehouse, so it never
waits for a run nor makes one wait: who is in the segment or event from the BI snapshot, their
contact and consents from the contacts snapshot (the BI one has no contacts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from crm_assets.quoting import identifier, literal
from crm_assets.warehouse.connection import table_exists

CHANNELS: dict[str, tuple[str | None, str]] = {
    "email": ("email", "email_opt_in"),
    "sms": ("phone", "sms_opt_in"),
    "push": (None, "push_opt_in"),
}
"""Channel -> (contact column of ``core.customers``, consent column)."""


class AudienceError(ValueError):
    pass


@dataclass(frozen=True)
class Audience:
    members: int
    reachable: int
    target: int
    holdout: int
    sql: str


def _ctes(con: duckdb.DuckDBPyConnection, name: str, *, channel: str, seed: str,
          holdout_pct: float = 0, sample_pct: float | None = None,
          day: date | None = None, days: list[date] | None = None,
          contacts: str = "core.customers") -> tuple[str, int, int]:
    """``WITH members AS (...), reachable AS (...)`` and the two bucket bounds.

    An event's members are those of ``day``, or of each of ``days`` (then ``reachable`` has an
    ``event_date`` column: one row per person and day)."""
    if channel not in CHANNELS:
        raise AudienceError(f"unknown channel {channel!r}; expected one of {', '.join(CHANNELS)}")
    if not 0 <= holdout_pct <= 100 or not 0 <= (sample_pct or 0) <= 100 - holdout_pct:
        raise AudienceError("holdout and sample are percentages that add up to 100 at most")
    layers = {layer for layer in ("segments", "events") if table_exists(con, f"{layer}.{name}")}
    if not layers:
        raise AudienceError(f"no segment or event named {name!r} in the BI snapshot")
    if "segments" in layers:
        members = f"SELECT DISTINCT customer_id FROM segments.{identifier(name)}"
    elif day is None and days is None:
        raise AudienceError(f"{name} is an event: give the day of the occurrences (--day)")
    else:
        dates = ", ".join(f"DATE {literal(d.isoformat())}" for d in ([day] if day else days))
        members = (f"SELECT DISTINCT event_date, customer_id FROM events.{identifier(name)} "
                   f"WHERE event_date IN ({dates or 'NULL'})")
    by_day = "m.event_date, " if "event_date" in members else ""
    contact, consent = CHANNELS[channel]
    reachable = f"coalesce(c.{consent}, false)" + (
        f" AND c.{contact} IS NOT NULL" if contact else "")
    seed_sql = literal(seed)
    holdout_to = round(holdout_pct * 100)
    target_to = 10000 if sample_pct is None else holdout_to + round(sample_pct * 100)
    ctes = f"""WITH members AS ({members}),
reachable AS (
    SELECT {by_day}m.customer_id, c.first_name, {f'c.{contact}' if contact else 'NULL'} AS contact,
        CAST(('0x' || left(md5({seed_sql} || ':' || CAST(m.customer_id AS VARCHAR)), 8))
             AS UBIGINT) % 10000 AS bucket
    FROM members m JOIN {contacts} c ON c.customer_id = m.customer_id
    WHERE {reachable}
)
"""
    return ctes, holdout_to, target_to


def audience_sql(con: duckdb.DuckDBPyConnection, name: str, **options) -> str:
    """The query of the audience: ``customer_id, audience_group, first_name, contact``."""
    ctes, holdout_to, target_to = _ctes(con, name, **options)
    return ctes + f"""SELECT customer_id,
    CASE WHEN bucket < {holdout_to} THEN 'holdout' ELSE 'target' END AS audience_group,
    first_name, contact
FROM reachable
WHERE bucket < {target_to}
ORDER BY customer_id"""


def audience_by_day_sql(con: duckdb.DuckDBPyConnection, name: str, days: list[date],
                        **options) -> str:
    """The audience of the event ``name`` on each of ``days`` at once: ``event_date``, then the
    columns of :func:`audience_sql` (one query for a range of days, not one per day)."""
    ctes, holdout_to, target_to = _ctes(con, name, days=days, **options)
    return ctes + f"""SELECT event_date, customer_id,
    CASE WHEN bucket < {holdout_to} THEN 'holdout' ELSE 'target' END AS audience_group,
    first_name, contact
FROM reachable
WHERE bucket < {target_to}"""


CONTACTS_ALIAS = "contacts"


def build_audience(snapshot: Path, contacts: Path, name: str, out: Path, **options) -> Audience:
    """Write the audience of ``name`` to the CSV file ``out``; counts for the report.

    ``snapshot`` and ``contacts`` are the views files of the BI and contacts snapshots.
    ``options``: ``channel``, ``seed``, ``holdout_pct``, ``sample_pct``, ``day`` (events).
    """
    for path, asset in ((snapshot, "serving/snapshot"), (contacts, "serving/contacts")):
        if not path.exists():
            raise AudienceError(f"no snapshot at {path}: materialise {asset} first "
                                "(any build does)")
    con = duckdb.connect(str(snapshot), read_only=True)
    try:
        con.execute("SET python_enable_replacements = false")
        con.execute(f"ATTACH {literal(str(contacts))} AS {CONTACTS_ALIAS} (READ_ONLY)")
        options["contacts"] = f"{CONTACTS_ALIAS}.core.customers"
        ctes, holdout_to, target_to = _ctes(con, name, **options)
        members, reachable, holdout, target = con.execute(
            ctes + f"""SELECT (SELECT count(*) FROM members), count(*),
                count(*) FILTER (WHERE bucket < {holdout_to}),
                count(*) FILTER (WHERE bucket >= {holdout_to} AND bucket < {target_to})
            FROM reachable""").fetchone()
        sql = audience_sql(con, name, **options)
        out.parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"COPY ({sql}) TO {literal(str(out))} (HEADER)")
    finally:
        con.close()
    return Audience(members, reachable, target, holdout, sql)
