"""Segments: the current members as of a date, and their membership history (SCD2).

A run replaces ``segments.<name>`` by the members as of its date (``as_of_date()`` in the SQL) and
moves ``marts.segment_membership_history`` forward: who entered (a new row, ``valid_from`` the day)
and who left (``valid_to`` the day; ``valid_from`` inclusive, ``valid_to`` exclusive).
``meta.segment_runs`` records each day's members, entries and exits.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb

from crm_assets.catalog import Catalog, Definition
from crm_assets.functions.registry import set_as_of_date
from crm_assets.quoting import literal
from crm_assets.warehouse.connection import transaction, use_functions_of
from crm_assets.warehouse.state import (
    FRAMEWORK_VERSION,
    built_with,
    inputs_of,
    next_batch,
    record_version,
    set_built_version,
)
from crm_assets.warehouse.tables import (
    CHANGED_PARTS,
    OPEN_PART,
    SEGMENT_MEMBERSHIP_HISTORY,
    SEGMENT_RUNS,
)

HISTORY = SEGMENT_MEMBERSHIP_HISTORY.name
RUNS = SEGMENT_RUNS.name


class SegmentHistoryError(RuntimeError):
    """A history update that would rewrite the past (or covers no day): refused."""


def materialize_segment(con: duckdb.DuckDBPyConnection, d: Definition, as_of: date,
                        run_id: str, *, full_refresh: bool = False) -> dict:
    """Replace the current members and move the membership history forward to ``as_of``.

    A re-run for the same date is idempotent, and when nothing the segment reads changed since
    it was computed as of that date (a night run again; not with ``full_refresh``) nothing is
    written: the stats are that day's, with ``unchanged``. History only moves forward: a date
    before the last recorded one is refused rather than rewriting what was already published (to
    rebuild it, see :func:`rebuild_segment_history`).
    """
    last = _last_as_of(con, d)
    if last is not None and as_of < last:
        raise SegmentHistoryError(
            f"segment {d.name}: history is recorded up to {last}; refusing to compute it as of "
            f"the earlier date {as_of} (history only moves forward; `crm segment-history` "
            "rebuilds it from a past date)")
    use_functions_of(con, d)
    set_as_of_date(con, as_of)
    inputs = inputs_of(con, d)
    if not full_refresh and last == as_of and built_with(con, d, inputs):
        members, entered, exited = con.execute(
            f"SELECT members, entered, exited FROM {RUNS} WHERE segment = ? AND as_of_date = ?",
            [d.name, as_of]).fetchone()
        return {"members": members, "entered": entered, "exited": exited, "unchanged": True}
    batch = next_batch(con)
    with transaction(con):
        stats = _segment_day(con, d, as_of, run_id)
        # the history's rows it wrote: the open ones and those it closed, as of this month
        con.execute(f"INSERT INTO {CHANGED_PARTS.name} VALUES (?, ?, ?), (?, ?, ?)",
                    [HISTORY, OPEN_PART, batch, HISTORY, as_of.strftime("%Y-%m"), batch])
        _publish_members(con, d, as_of)
        record_version(con, d, run_id)
        _record_builds(con, [d], batch, {d.table: inputs})
    con.execute("DROP TABLE _members")
    return {**stats, "unchanged": False}


def as_of_models(catalog: Catalog, segments: list[Definition]) -> list[Definition]:
    """The models ``segments`` read, directly or not, whose rows depend on the as-of date (they
    call ``as_of_date()``/``as_of_end()`` or read such a model), in dependency order."""
    by_table = catalog.by_table()
    upstream: set[str] = set()
    todo = [dep for d in segments for dep in d.deps]
    while todo:
        table = todo.pop()
        if table not in upstream and table in by_table:
            upstream.add(table)
            todo.extend(by_table[table].deps)
    dependent: set[str] = set()
    for d in catalog.definitions:  # dependency order: one pass
        if d.table in upstream and d.kind == "model" and (
                dependent.intersection(d.deps) or d.uses_as_of):
            dependent.add(d.table)
    return [d for d in catalog.definitions if d.table in dependent]


def with_segments_read(catalog: Catalog, segments: list[Definition]) -> list[Definition]:
    """``segments`` and every segment they read, directly or not, in dependency order: a
    segment over another sees it as of the same day, so a rebuild recomputes both."""
    by_table = catalog.by_table()
    wanted = {d.table for d in segments}
    todo = list(wanted)
    while todo:
        for dep in by_table[todo.pop()].deps:
            if dep not in wanted and dep in by_table and by_table[dep].kind == "segment":
                wanted.add(dep)
                todo.append(dep)
    return [d for d in catalog.definitions if d.table in wanted]


def rebuild_segment_history(con: duckdb.DuckDBPyConnection, segments: list[Definition],
                            models: list[Definition], first: date, last: date | None,
                            run_id: str, every_days: int = 1) -> list[dict]:
    """Recompute the membership history as of every ``every_days``-th day, ``first`` to ``last``.

    What was recorded before ``first`` is kept; from ``first`` on, the history and the run log of
    each segment are replaced by what its definition *on disk* says about each day (a backfill
    after adding a segment, or after changing one). ``models`` (:func:`as_of_models`) are
    recomputed as of each day first, so a segment over ``core.customer_features`` sees the
    features of that day, not today's. ``last`` defaults to the last recorded day and may not be
    before any segment's, so the rebuilt history reaches the current members, which are then
    those as of ``last`` (and the models are as of ``last`` again). ``segments`` in dependency
    order (:func:`with_segments_read`): a segment another one reads is published as of each day
    before that one runs. All in one transaction: readers see the old history or the whole new one.
    """
    read = {dep for d in segments for dep in d.deps}
    recorded = {d.name: _last_as_of(con, d) for d in segments}
    known = [day for day in recorded.values() if day is not None]
    last = last or (max(known) if known else None)
    if last is None:
        raise SegmentHistoryError(
            f"segment {segments[0].name}: nothing recorded yet; give the last day")
    for name, day in recorded.items():
        if day is not None and last < day:
            raise SegmentHistoryError(
                f"segment {name}: history is recorded up to {day}; a rebuild must reach it "
                f"(last day {last} is earlier)")
    if first > last or every_days < 1:
        raise SegmentHistoryError(f"no day from {first} to {last} every {every_days} day(s)")
    days = [first + timedelta(days=i) for i in range(0, (last - first).days + 1, every_days)]
    if days[-1] != last:
        days.append(last)  # always end on the current day
    for d in [*models, *segments]:
        use_functions_of(con, d)
    batch = next_batch(con)
    stats = []
    with transaction(con):
        for d in segments:
            con.execute(f"DELETE FROM {HISTORY} WHERE segment = ? AND valid_from >= ?",
                        [d.name, first])
            con.execute(f"UPDATE {HISTORY} SET valid_to = NULL WHERE segment = ? AND valid_to >= ?",
                        [d.name, first])
            con.execute(f"DELETE FROM {RUNS} WHERE segment = ? AND as_of_date >= ?",
                        [d.name, first])
        for day in days:
            set_as_of_date(con, day)
            for model in models:
                con.execute(f"CREATE OR REPLACE TABLE {model.table} AS {model.body}\n")
            for d in segments:
                stats.append({"segment": d.name, "as_of_date": day,
                              **_segment_day(con, d, day, run_id)})
                if day == last or d.table in read:
                    _publish_members(con, d, day)
                if day == last:
                    record_version(con, d, run_id)
        _record_builds(con, [*models, *segments], batch)
        con.execute(f"INSERT INTO {CHANGED_PARTS.name} VALUES (?, '*', ?)", [HISTORY, batch])
    con.execute("DROP TABLE _members")
    return stats


def _record_builds(con: duckdb.DuckDBPyConnection, defs: list[Definition], batch: int,
                   inputs: dict[str, str | None] | None = None) -> None:
    """The tables just rewritten, with what they were computed from (``inputs`` by table), and
    the history and the run log, as built by ``batch`` (for the BI snapshot and what reads
    them)."""
    for d in defs:
        set_built_version(con, d.table, d.version, batch, d.grain,
                          inputs=(inputs or {}).get(d.table))
    set_built_version(con, HISTORY, FRAMEWORK_VERSION, batch, ["segment", "customer_id"])
    set_built_version(con, RUNS, FRAMEWORK_VERSION, batch, ["segment", "as_of_date"])


def _last_as_of(con: duckdb.DuckDBPyConnection, d: Definition) -> date | None:
    return con.execute(f"SELECT max(as_of_date) FROM {RUNS} WHERE segment = ?",
                       [d.name]).fetchone()[0]


def _segment_day(con: duckdb.DuckDBPyConnection, d: Definition, as_of: date, run_id: str) -> dict:
    """The members as of ``as_of`` into ``_members``; the history and the run log moved to it.

    The history must be recorded up to ``as_of`` at most (the caller's transaction).
    """
    set_as_of_date(con, as_of)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _members AS {d.body}\n")
    h = HISTORY
    params = [d.name, as_of]
    # leavers that entered today (a same-day re-run) vanish; earlier ones are closed today
    con.execute(
        f"""DELETE FROM {h} WHERE segment = ? AND valid_to IS NULL AND valid_from = ?
            AND customer_id NOT IN (SELECT customer_id FROM _members)""", params)
    con.execute(
        f"""UPDATE {h} SET valid_to = $2 WHERE segment = $1 AND valid_to IS NULL
            AND valid_from < $2 AND customer_id NOT IN (SELECT customer_id FROM _members)""",
        params)
    con.execute(
        f"""INSERT INTO {h} SELECT DISTINCT ?, m.customer_id, ?::DATE, NULL, ? FROM _members m
            WHERE m.customer_id NOT IN (SELECT customer_id FROM {h}
                                        WHERE segment = ? AND valid_to IS NULL)""",
        [d.name, as_of, d.version, d.name])
    members = con.execute("SELECT count(*) FROM _members").fetchone()[0]
    # the day's net change, from the history itself: a re-run of the same day reports the
    # same numbers as the first run (not "nothing changed since the previous run")
    entered, exited = con.execute(
        f"""SELECT count(*) FILTER (WHERE valid_from = $2),
                   count(*) FILTER (WHERE valid_to = $2)
            FROM {h} WHERE segment = $1""", params).fetchone()
    con.execute(f"DELETE FROM {RUNS} WHERE segment = ? AND as_of_date = ?", params)
    con.execute(f"INSERT INTO {RUNS} VALUES (?, ?, ?, ?, ?, ?, ?, now())",
                [d.name, as_of, d.version, members, entered, exited, run_id])
    return {"members": members, "entered": entered, "exited": exited}


def _publish_members(con: duckdb.DuckDBPyConnection, d: Definition, as_of: date) -> None:
    """``segments.<name>`` := the members in ``_members``, as of ``as_of``."""
    con.execute(f"CREATE OR REPLACE TABLE {d.table} AS SELECT *, "
                f"DATE {literal(as_of.isoformat())} AS as_of_date, "
                f"{literal(d.version)} AS definition_version FROM _members")
