"""Launching the project's jobs from Python (the CLI, the demo, tests) as real Dagster runs.

Runs execute in this process (``execute_in_process``) on the instance given (the one under
``DAGSTER_HOME`` by default), so they are recorded there and show in the UI with their metadata
and checks. Each run records the code location ``workspace.yaml`` names as its origin, as a run
launched from the UI does, so it is listed on its job's page and in the overview timeline. A
failed run is reported once, one line per failed step, without Dagster's trace.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date

import dagster as dg
import duckdb
from dagster._core.definitions.repository_definition import SINGLETON_REPOSITORY_NAME
from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.workspace.load import location_origins_from_yaml_paths

from crm_assets.defs.alerts import alert_run, step_failure_message
from crm_assets.defs.clv import CALIBRATION_END_TAG, FIT_JOB
from crm_assets.defs.definitions import build_definitions
from crm_assets.defs.erasure import ERASE_JOB
from crm_assets.defs.jobs import NIGHTLY
from crm_assets.defs.partitions import AS_OF_TAG, FULL_REFRESH_TAG, partition_range_tags
from crm_assets.defs.recovery import PROCESS_TAG, recover_dead_runs, this_process
from crm_assets.defs.schedules import nightly_request
from crm_assets.defs.unmerge import UNMERGE_JOB
from crm_assets.settings import Settings
from crm_assets.warehouse.connection import connect
from crm_assets.warehouse.suppression import hash_value, read_key


@dataclass
class BuildResult:
    success: bool
    run_id: str
    error: str = ""
    failed_checks: list[str] = field(default_factory=list)
    """Each failed asset check as ``asset check: description`` (a refused file, a warning):
    a successful run may have some."""


def _run_config(log_level: str) -> dict:
    return {"loggers": {"console": {"config": {"log_level": log_level}}}}


def failures(result: dg.ExecuteInProcessResult) -> str:
    """One line per failed step: its key and the message, without Dagster's exception class."""
    messages = []
    for event in result.all_events:
        if event.is_step_failure:
            messages.append(f"{event.step_key}: {step_failure_message(event)}")
    return "\n".join(messages + failed_checks(result)) or "run failed"


def failed_checks(result: dg.ExecuteInProcessResult) -> list[str]:
    """``asset check: description`` for each check of the run that did not pass."""
    out = []
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            e = event.asset_check_evaluation_data
            if not e.passed:
                warn = " (warning)" if e.severity == dg.AssetCheckSeverity.WARN else ""
                out.append(f"{e.asset_key.to_user_string()} {e.check_name}{warn}: "
                           f"{e.description or 'failed'}")
    return out


_watchers: ContextVar[tuple[Callable[[dg.EventLogEntry], None], ...]] = ContextVar(
    "crm_run_watchers", default=())


@contextmanager
def watching(callback: Callable[[dg.EventLogEntry], None]) -> Iterator[None]:
    """Within the block, every event of every run :func:`run_job` launches goes to ``callback``
    as Dagster records it (the CLI prints progress from them)."""
    token = _watchers.set((*_watchers.get(), callback))
    try:
        yield
    finally:
        _watchers.reset(token)


def job_origin(job: str, settings: Settings | None) -> RemoteJobOrigin | None:
    """``job`` of the code location ``<project>/workspace.yaml`` names (what ``dagster dev`` and
    the daemon load), as the origin a run launched from the UI records; None without one."""
    workspace = settings.project_dir / "workspace.yaml" if settings else None
    if workspace is None or not workspace.exists():
        return None
    locations = location_origins_from_yaml_paths([str(workspace)])
    if len(locations) != 1:
        return None
    return RemoteJobOrigin(RemoteRepositoryOrigin(locations[0], SINGLETON_REPOSITORY_NAME), job)


@contextmanager
def _runs_created_with_origin(instance: dg.DagsterInstance, origin: RemoteJobOrigin | None
                              ) -> Iterator[None]:
    """``execute_in_process`` creates its run without an origin (it has no code location): give
    it ``origin``, so the run belongs to its job in the UI (job page, timeline, asset pages)."""
    if origin is None:
        yield
        return
    create = instance.create_run_for_job

    def create_with_origin(*args, **kwargs):
        return create(*args, **{**kwargs, "remote_job_origin": origin})

    instance.create_run_for_job = create_with_origin  # this instance object, for this call
    try:
        yield
    finally:
        del instance.create_run_for_job


def run_job(defs: dg.Definitions, job: str, *, instance: dg.DagsterInstance,
            tags: dict[str, str] | None = None, asset_selection: list[dg.AssetKey] | None = None,
            log_level: str = "WARNING", run_config: dict | None = None,
            partition_key: str | None = None, settings: Settings | None = None) -> BuildResult:
    """Execute ``job`` of ``defs`` in this process; its result, with failures as text.

    Dead runs are marked failed first (:mod:`~crm_assets.defs.recovery`). With ``settings``, a
    run that fails or has failed checks, and each dead run, is alerted
    (:mod:`~crm_assets.defs.alerts`).
    """
    config = {**_run_config(log_level), **(run_config or {})}
    dead = recover_dead_runs(instance, by=f"the next run of {job}")  # or they keep their slots
    tags = {**(tags or {}), PROCESS_TAG: this_process()}
    run_id = str(uuid.uuid4())
    for watcher in _watchers.get():
        instance.add_event_listener(run_id, watcher)
    with _one_planned_event_per_asset(tags), \
            _runs_created_with_origin(instance, job_origin(job, settings)):
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance, tags=tags, raise_on_error=False, run_config=config,
            asset_selection=asset_selection, partition_key=partition_key, run_id=run_id)
    if settings is not None:
        for finished in [*dead, run_id]:
            alert_run(instance, finished, settings)
    return BuildResult(result.success, result.run_id, "" if result.success else failures(result),
                       failed_checks(result))


@contextmanager
def _one_planned_event_per_asset(tags: dict[str, str]) -> Iterator[None]:
    """For a run over a range of days, one "materialisation planned" record per asset instead of
    one per asset and day (Dagster reads this variable when it creates the run).

    Dagster writes those records one at a time before the first step: 2,312 records, 20 s of a
    1M-person build over 546 days. The price, in Dagster 1.13: the days of a range run that
    fails are not marked failed in the UI (the run is).
    """
    start = tags.get("dagster/asset_partition_range_start")
    end = tags.get("dagster/asset_partition_range_end")
    if not start or start == end:
        yield
        return
    previous = os.environ.get(_SUBSET_PLANNED_EVENTS)
    os.environ[_SUBSET_PLANNED_EVENTS] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(_SUBSET_PLANNED_EVENTS, None)
        else:
            os.environ[_SUBSET_PLANNED_EVENTS] = previous


_SUBSET_PLANNED_EVENTS = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"


def build_all(settings: Settings, *, as_of: date, first_day: date, last_day: date,
              instance: dg.DagsterInstance | None = None,
              definitions: dg.Definitions | None = None, log_level: str = "WARNING",
              full_refresh: bool = False) -> BuildResult:
    """Materialise every asset in one run: segments as of ``as_of``, events for the day range;
    with ``full_refresh``, every incremental step computes everything from raw again."""
    defs = definitions or build_definitions(settings)
    tags = {AS_OF_TAG: as_of.isoformat(), **partition_range_tags(first_day, last_day)}
    if full_refresh:
        tags[FULL_REFRESH_TAG] = "true"
    return run_job(defs, "build_all", instance=instance or dg.DagsterInstance.get(), tags=tags,
                   log_level=log_level, settings=settings)


def nightly(settings: Settings, day: date, *, instance: dg.DagsterInstance | None = None,
            definitions: dg.Definitions | None = None, log_level: str = "WARNING"
            ) -> BuildResult:
    """The ``nightly`` job for ``day``: exactly the run the ``nightly`` schedule launches."""
    defs = definitions or build_definitions(settings)
    request = nightly_request(day)
    return run_job(defs, NIGHTLY, instance=instance or dg.DagsterInstance.get(),
                   tags=dict(request.tags), partition_key=request.partition_key,
                   log_level=log_level, settings=settings)


def fit_clv(settings: Settings, as_of: date, calibration_end: date | None = None, *,
            instance: dg.DagsterInstance | None = None,
            definitions: dg.Definitions | None = None, log_level: str = "WARNING"
            ) -> BuildResult:
    """The ``fit_clv`` job as of ``as_of`` (the ``clv_weekly`` schedule's run): fit on purchases
    up to ``calibration_end`` (default: ``as_of`` minus the holdout), check on the rest."""
    defs = definitions or build_definitions(settings)
    tags = {AS_OF_TAG: as_of.isoformat()}
    if calibration_end is not None:
        tags[CALIBRATION_END_TAG] = calibration_end.isoformat()
    return run_job(defs, FIT_JOB, instance=instance or dg.DagsterInstance.get(), tags=tags,
                   log_level=log_level, settings=settings)


def erase(settings: Settings, selector: str, value: str, reason: str | None = None, *,
          instance: dg.DagsterInstance | None = None,
          definitions: dg.Definitions | None = None) -> BuildResult:
    """The ``erase_person`` job for one person: ``selector`` customer with ``value`` a
    customer_id, or source_id / email / phone with ``value`` as given (hashed here, with the
    suppression key, so only the hash enters the run's config)."""
    defs = definitions or build_definitions(settings)
    if selector != "customer":
        key = read_key(settings.suppression_key_path, create=True)
        with duckdb.connect() as con:
            hashed = hash_value(con, key, selector, value)
        if hashed is None:
            return BuildResult(False, "", f"not a usable {selector.replace('_', ' ')}: "
                                          "nothing to erase or suppress", [])
        value = hashed
    config = {"selector": selector, "value": value, "reason": reason}
    return run_job(defs, ERASE_JOB, instance=instance or dg.DagsterInstance.get(),
                   log_level="WARNING", settings=settings,
                   run_config={"ops": {"erase": {"config": config}}})


def unmerge(settings: Settings, customer_id: int, records: list[str], reason: str | None = None,
            *, day: date | None = None, instance: dg.DagsterInstance | None = None,
            definitions: dg.Definitions | None = None) -> BuildResult:
    """The ``unmerge_person`` job, then the nightly run for ``day`` (default: the last as-of day
    segments were computed for), which re-keys what depends on identity."""
    defs = definitions or build_definitions(settings)
    instance = instance or dg.DagsterInstance.get()
    config = {"customer_id": customer_id, "records": records, "reason": reason}
    result = run_job(defs, UNMERGE_JOB, instance=instance, log_level="WARNING",
                     settings=settings, run_config={"ops": {"unmerge": {"config": config}}})
    if not result.success:
        return result
    if day is None:
        with connect(settings.warehouse_path, read_only=True) as con:
            day = con.execute("SELECT max(as_of_date) FROM meta.segment_runs").fetchone()[0]
    return nightly(settings, day or settings.yesterday(), instance=instance, definitions=defs)


def rebuild_history(settings: Settings, names: list[str] | None, *, first: date,
                    last: date | None = None, every_days: int = 1,
                    instance: dg.DagsterInstance | None = None,
                    definitions: dg.Definitions | None = None, log_level: str = "WARNING"
                    ) -> BuildResult:
    """Run ``rebuild_segment_history`` for ``names`` (None: every segment), then refresh what
    reads the history (marts, the BI snapshot) as of the last rebuilt day, and the days of the
    events over it (``segment_entered``) from the first."""
    defs = definitions or build_definitions(settings)
    instance = instance or dg.DagsterInstance.get()
    graph = defs.resolve_asset_graph()
    segments = {k.path[-1]: k for k in graph.get_all_asset_keys() if k.path[0] == "segments"}
    names = sorted(segments) if names is None else names
    config = {"segments": names, "first_day": first.isoformat(),
              "last_day": last.isoformat() if last else None, "every_days": every_days}
    result = run_job(defs, "rebuild_segment_history", instance=instance,  # reported below, once
                     log_level="CRITICAL", settings=settings,
                     run_config={"ops": {"rebuild_history": {"config": config}}})
    if not result.success:
        return result
    with connect(settings.warehouse_path, read_only=True) as con:
        as_of = con.execute("SELECT max(as_of_date) FROM meta.segment_runs "
                            "WHERE list_contains(?, segment)", [names]).fetchone()[0]
    keys = [segments[name] for name in names]  # the run checked the names
    selection = (dg.AssetSelection.assets(*keys).downstream() - dg.AssetSelection.assets(*keys))
    # events over the history (segment_entered) are rebuilt for the days the history changed
    days = partition_range_tags(max(first, settings.partition_start), as_of)
    refresh = run_job(defs, "build_all", instance=instance,
                      asset_selection=list(selection.resolve(graph)),
                      tags={AS_OF_TAG: as_of.isoformat(), **days}, log_level=log_level,
                      settings=settings)
    if not refresh.success:
        return BuildResult(False, refresh.run_id, "the history is rebuilt, but refreshing what "
                                                  "reads it failed:\n" + refresh.error)
    return BuildResult(True, result.run_id)
