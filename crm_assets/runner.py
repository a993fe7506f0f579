"""Launching runs from Python (CLI, demo, tests) and summarising what they built."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import dagster as dg

from crm_assets.factory import AS_OF_TAG
from crm_assets.settings import Settings
from crm_assets.warehouse import connect


@dataclass
class BuildResult:
    success: bool
    run_id: str
    error: str = ""


def partition_range_tags(first_day: date, last_day: date) -> dict[str, str]:
    """Tags that make one run cover every day from ``first_day`` to ``last_day`` (a single run)."""
    return {"dagster/asset_partition_range_start": first_day.isoformat(),
            "dagster/asset_partition_range_end": last_day.isoformat()}


def build_all(settings: Settings, *, as_of: date, first_day: date, last_day: date,
              instance: dg.DagsterInstance | None = None,
              definitions: dg.Definitions | None = None, log_level: str = "WARNING"
              ) -> BuildResult:
    """Materialise every asset in one run: segments as of ``as_of``, events for the day range."""
    from crm_assets.definitions import build_definitions

    defs = definitions or build_definitions(settings)
    job = defs.resolve_job_def("build_all")
    tags = {AS_OF_TAG: as_of.isoformat(), **partition_range_tags(first_day, last_day)}
    instance = instance or dg.DagsterInstance.get()
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    result = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False,
                                    run_config=run_config)
    return BuildResult(result.success, result.run_id,
                       "" if result.success else _failures(result))


def _failures(result: dg.ExecuteInProcessResult) -> str:
    """One line per failed step: its key and the message, without Dagster's exception class."""
    messages = []
    for event in result.all_events:
        if event.is_step_failure:
            failure = event.step_failure_data.error
            message = failure.message.strip() if failure else ""
            message = re.sub(r"^dagster\._core\.definitions\.events\.Failure: ", "", message)
            messages.append(f"{event.step_key}: {message}")
    return "\n".join(messages) or "run failed"


def rebuild_history(settings: Settings, names: list[str] | None, *, first: date,
                    last: date | None = None, every_days: int = 1,
                    instance: dg.DagsterInstance | None = None,
                    definitions: dg.Definitions | None = None, log_level: str = "WARNING"
                    ) -> BuildResult:
    """Run ``rebuild_segment_history`` for ``names`` (None: every segment), then refresh what
    reads the history (marts, the BI snapshot) as of the last rebuilt day."""
    from crm_assets.definitions import build_definitions

    defs = definitions or build_definitions(settings)
    instance = instance or dg.DagsterInstance.get()
    job = defs.resolve_job_def("rebuild_segment_history")
    graph = defs.resolve_asset_graph()
    segments = {k.path[-1]: k for k in graph.get_all_asset_keys() if k.path[0] == "segments"}
    names = sorted(segments) if names is None else names
    config = {"segments": names, "first_day": first.isoformat(),
              "last_day": last.isoformat() if last else None, "every_days": every_days}
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    result = job.execute_in_process(  # its failure is reported below, once, without the trace
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
                    "ops": {"rebuild_history": {"config": config}}},
        instance=instance, raise_on_error=False)
    if not result.success:
        return BuildResult(False, result.run_id, _failures(result))
    with connect(settings.warehouse_path, read_only=True) as con:
        as_of = con.execute("SELECT max(as_of_date) FROM meta.segment_runs "
                            "WHERE list_contains(?, segment)", [names]).fetchone()[0]
    keys = [segments[name] for name in names]  # the run checked the names
    selection = (dg.AssetSelection.assets(*keys).downstream() - dg.AssetSelection.assets(*keys))
    refresh = defs.resolve_job_def("refresh_segments").execute_in_process(
        instance=instance, asset_selection=list(selection.resolve(graph)),
        tags={AS_OF_TAG: as_of.isoformat()}, run_config=run_config, raise_on_error=False)
    if not refresh.success:
        return BuildResult(False, refresh.run_id, "the history is rebuilt, but refreshing what "
                                                  "reads it failed:\n" + _failures(refresh))
    return BuildResult(True, result.run_id)


def print_history(settings: Settings, names: list[str], first: date) -> None:
    """Members, entries and exits of ``names`` per recorded day from ``first`` on."""
    with connect(settings.warehouse_path, read_only=True) as con:
        rows = con.execute(
            "SELECT segment, as_of_date, members, entered, exited FROM meta.segment_runs "
            "WHERE list_contains(?, segment) AND as_of_date >= ? ORDER BY ALL",
            [names, first]).fetchall()
    print("segment                          as of         members  entered   exited")
    for name, day, members, entered, exited in rows:
        print(f"{name:<32} {day}  {members:>8} {entered:>8} {exited:>8}")


def print_summary(settings: Settings, days: int = 7) -> None:
    """Each segment with its size, and event rows per day for the last ``days`` days."""
    with connect(settings.warehouse_path, read_only=True) as con:
        segs = con.execute(
            """SELECT r.segment, r.as_of_date, r.members, r.entered, r.exited
               FROM meta.segment_runs r
               QUALIFY row_number() OVER (PARTITION BY segment ORDER BY as_of_date DESC,
                                          computed_at DESC) = 1
               ORDER BY segment""").fetchall()
        print("Segments (as of, members, entered, left on the last run):")
        for name, as_of, members, entered, exited in segs:
            print(f"  {name:<32} {as_of}  {members:>8}  +{entered} -{exited}")
        has_counts = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'marts' "
            "AND table_name = 'event_daily_counts'").fetchone()[0]
        if not has_counts:
            return
        rows = con.execute(
            """SELECT event, event_date, occurrences, customers FROM marts.event_daily_counts
               QUALIFY row_number() OVER (PARTITION BY event ORDER BY event_date DESC) <= ?
               ORDER BY event, event_date""", [days]).fetchall()
        print(f"Events (rows and customers per day, last {days} days with data):")
        for event, day, occurrences, customers in rows:
            print(f"  {event:<32} {day}  {occurrences:>8} rows  {customers:>8} customers")
    views = settings.serving_path / "crm.duckdb"
    if views.exists():
        print(f"BI snapshot (open read-only; DuckDB 1.x readable): {views}")
