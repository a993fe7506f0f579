"""``crm status``: what an operator checks in the morning, in one place.

The last run of each job and how it ended; runs unfinished, and whether their process is gone;
pool slots held; assets stale against the SQL on disk (:mod:`~crm_assets.tools.plan`); event days
not built between the first partition and yesterday; refused files waiting; each staging table's
reject rate on its last run; each raw table's freshness. Everything that needs a person is also a
line of :attr:`Status.attention` (the command then exits 1).

The warehouse is opened read-only and briefly; while a run writes it, DuckDB refuses even that,
and the status says so (the run part is still answered: it lives in the Dagster instance).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import duckdb

from crm_assets.defs.recovery import PROCESS_TAG, is_gone
from crm_assets.defs.resources import POOL
from crm_assets.ingest.contracts import SOURCES
from crm_assets.ingest.freshness import freshness
from crm_assets.ingest.loader import refused_awaiting
from crm_assets.settings import Settings
from crm_assets.tools.plan import make_plan
from crm_assets.warehouse.accounting import reject_rate
from crm_assets.warehouse.connection import WarehouseBusy, connect, table_exists

_UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
               dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
               dg.DagsterRunStatus.CANCELING]


@dataclass
class Status:
    checked_at: str
    jobs: list[dict] = field(default_factory=list)
    unfinished_runs: list[dict] = field(default_factory=list)
    claimed_slots: int = 0
    warehouse: str = "ok"
    stale_assets: list[dict] = field(default_factory=list)
    event_days: list[dict] = field(default_factory=list)
    refused_files: list[dict] = field(default_factory=list)
    reject_rates: list[dict] = field(default_factory=list)
    freshness: list[dict] = field(default_factory=list)
    attention: list[str] = field(default_factory=list)
    """One line per thing a person should look at; empty when all is well."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False, default=str)


def _ranges(days: list[date]) -> list[str]:
    """Consecutive days as ``first..last`` (one day as itself)."""
    out: list[list[date]] = []
    for day in days:
        if out and day == out[-1][1] + timedelta(days=1):
            out[-1][1] = day
        else:
            out.append([day, day])
    return [a.isoformat() if a == b else f"{a}..{b}" for a, b in out]


def _runs(s: Status, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    for job in sorted(j.name for j in defs.resolve_all_job_defs()
                      if not j.name.startswith("__")):
        runs = instance.get_runs(filters=dg.RunsFilter(job_name=job), limit=1)
        if not runs:
            continue
        run = runs[0]
        record = instance.get_run_record_by_id(run.run_id)
        started = record.start_time if record else None
        ended = record.end_time if record else None
        s.jobs.append({
            "job": job, "run_id": run.run_id, "status": run.status.value,
            "started": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds")
            if started else None,
            "seconds": round(ended - started, 1) if started and ended else None})
        if run.status == dg.DagsterRunStatus.FAILURE:
            s.attention.append(f"the last run of {job} failed ({run.run_id})")
    now = datetime.now(UTC).timestamp()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=_UNFINISHED)):
        process = run.tags.get(PROCESS_TAG)
        dead = bool(process) and is_gone(process)
        record = instance.get_run_record_by_id(run.run_id)
        since = record.start_time or record.create_timestamp.timestamp() if record else None
        s.unfinished_runs.append({
            "run_id": run.run_id, "job": run.job_name, "status": run.status.value,
            "process": process, "process_gone": dead,
            "minutes": round((now - since) / 60, 1) if since else None})
        if dead:
            s.attention.append(f"run {run.run_id} of {run.job_name} is {run.status.value} but "
                               "its process is gone: the next crm command or the dead_runs "
                               "sensor marks it failed")
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        s.claimed_slots = len(storage.get_concurrency_info(POOL).claimed_slots)


def _warehouse(s: Status, con: duckdb.DuckDBPyConnection, defs: dg.Definitions,
               settings: Settings, instance: dg.DagsterInstance) -> None:
    yesterday = settings.yesterday()
    plan = make_plan(defs, con, as_of=yesterday, partition_start=settings.partition_start,
                     instance=instance)
    s.stale_assets = [{"asset": a.asset, "reason": a.reason} for a in plan.assets]
    if plan.assets:
        s.attention.append(f"{len(plan.assets)} asset(s) stale against the SQL on disk "
                           "(crm plan)")
    graph = defs.resolve_asset_graph()
    events = sorted(k.path[-1] for k in graph.get_all_asset_keys() if k.path[0] == "events")
    wanted = [settings.partition_start + timedelta(days=i)
              for i in range((yesterday - settings.partition_start).days + 1)]
    for event in events:
        built = {d for (d,) in con.execute("SELECT event_date FROM meta.event_days "
                                           "WHERE event = ?", [event]).fetchall()}
        missing = [d for d in wanted if d not in built]
        last = max(built) if built else None
        # the days after the last one built are the next night's to catch up; earlier ones
        # (before the first day built, or a gap) wait for a backfill
        later = sum(1 for d in missing if last is not None and d > last)
        before = sorted(d for d in built if d < settings.partition_start)
        s.event_days.append({"event": event, "built": len(built),
                             "last_built": last.isoformat() if last else None,
                             "missing": len(missing), "missing_days": _ranges(missing),
                             "next_night_builds": later,
                             "days_before_partition_start": len(before)})
        if before:
            s.attention.append(
                f"events.{event}: {len(before)} day(s) before the first partition "
                f"({settings.partition_start}) hold rows, only of the people a night touched (a "
                "release before 2026-12-08 built such parts of days): crm build --full-refresh "
                "deletes them")
        if missing:
            hints = ([f"the next crm nightly builds the {later} after {last}"] if later else [])
            if earlier := [d for d in missing if last is None or d < last]:
                hints.append(f"crm build --first-day {earlier[0]} --last-day {earlier[-1]} "
                             f"builds the other {len(earlier)}")
            s.attention.append(f"events.{event}: {len(missing)} day(s) not built: "
                               + ", ".join(_ranges(missing)[:3])
                               + (", ..." if len(_ranges(missing)) > 3 else "")
                               + f" ({'; '.join(hints)})")
    for table in SOURCES:
        for r in refused_awaiting(con, table, None):
            s.refused_files.append({"table": table, "file": r.source_file, "reason": r.reason,
                                    "set_aside_to": str(r.set_aside_to)})
            s.attention.append(f"refused file waiting: {r.reason}")
        f = freshness(con, table, settings.freshness_limit_hours(table))
        s.freshness.append({"table": table, "ok": f.ok, "hours_since_new_file":
                            None if f.age_hours is None else round(f.age_hours, 1),
                            "limit_hours": f.limit_hours})
        if not f.ok:
            s.attention.append(f"raw.{table} is stale: no new file for "
                               + ("ever" if f.age_hours is None else f"{f.age_hours:.0f} h")
                               + f" (limit {f.limit_hours:g} h)")
        last = con.execute("SELECT run_id FROM meta.staged_files WHERE table_name = ? "
                           "ORDER BY staged_at DESC LIMIT 1", [table]).fetchone()
        if last is None or not table_exists(con, f"staging.{table}"):
            continue
        r = reject_rate(con, table, last[0])
        limit = settings.reject_rate_limit(table)
        s.reject_rates.append({"table": table, "run_id": last[0], "new_rows": r.new_rows,
                               "rejected_rows": r.rejected_rows, "rate": round(r.rate, 4),
                               "limit": limit, "reasons": dict(r.reasons)})
        if r.rate > limit:
            s.attention.append(f"staging.{table}: {r.rate:.1%} of the new rows of its last "
                               f"run rejected (limit {limit:.0%})")


def collect_status(settings: Settings, defs: dg.Definitions,
                   instance: dg.DagsterInstance) -> Status:
    """Everything :mod:`crm_assets.tools.status` describes, now."""
    s = Status(checked_at=datetime.now(UTC).isoformat(timespec="seconds"))
    _runs(s, defs, instance)
    if not settings.warehouse_path.exists():
        s.warehouse = "not built yet (crm build)"
        s.attention.append(f"no warehouse at {settings.warehouse_path}")
        return s
    try:
        with connect(settings.warehouse_path, read_only=True) as con:
            _warehouse(s, con, defs, settings, instance)
    except WarehouseBusy as err:
        s.warehouse = f"busy: {err}"
    return s


def format_status(s: Status) -> str:
    """Readable text of ``s``."""
    out = [f"status at {s.checked_at}", "", "last runs:"]
    out += [f"  {j['job']:<26} {j['status']:<8} {j['started'] or '':<26} "
            + (f"{j['seconds']} s" if j["seconds"] is not None else "") for j in s.jobs] or \
        ["  none"]
    if s.unfinished_runs:
        out.append("unfinished runs:")
        out += [f"  {r['run_id']} {r['job']} {r['status']} for {r['minutes']} min"
                + (" (process gone)" if r["process_gone"] else "") for r in s.unfinished_runs]
    out.append(f"pool slots held: {s.claimed_slots}")
    out.append(f"warehouse: {s.warehouse}")
    if s.event_days:
        out.append("event days (first partition to yesterday):")
        out += [f"  {e['event']:<26} {e['built']} built, last {e['last_built']}, "
                f"{e['missing']} missing" for e in s.event_days]
    if s.reject_rates:
        out.append("reject rate of each staging table's last run:")
        out += [f"  {r['table']:<26} {r['rejected_rows']}/{r['new_rows']} = {r['rate']:.1%} "
                f"(limit {r['limit']:.0%})" for r in s.reject_rates]
    if s.freshness:
        out.append("freshness (hours since a new file / limit):")
        out += [f"  {f['table']:<26} {f['hours_since_new_file']} / {f['limit_hours']:g}"
                + ("" if f["ok"] else "  STALE") for f in s.freshness]
    out.append("")
    if s.attention:
        out.append(f"needs attention ({len(s.attention)}):")
        out += [f"  - {line}" for line in s.attention]
    else:
        out.append("all well")
    return "\n".join(out)
