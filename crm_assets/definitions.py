"""The project's Dagster definitions: the one place project-wide policy is applied.

``dagster dev`` (via ``workspace.yaml``) loads :data:`defs`; tests call :func:`build_definitions`
with their own settings. Loading validates the whole SQL catalogue and refuses to start on any
problem, so a broken or hostile SQL file never reaches a run.
"""


from datetime import timedelta
from pathlib import Path

import dagster as dg

from crm_assets.contracts import SOURCES
from crm_assets.factory import (
    AS_OF_TAG,
    POOL,
    Warehouse,
    build_catalog_assets,
    build_history_job,
)
from crm_assets.landing import build_landing_sensor, landing_targets
from crm_assets.partitions import daily_partitions
from crm_assets.python_assets import (
    SERVING_KEY,
    build_event_daily_counts,
    build_identity_asset,
    build_raw_assets,
    build_serving_asset,
    build_trigger_exports,
    external_tables,
    producers,
)
from crm_assets.quality import build_freshness_checks
from crm_assets.settings import Settings, load_settings
from crm_assets.sql_catalog import Catalog, load_catalog


def load_project_catalog(settings: Settings, paths: list[Path] | None = None,
                         root: Path | None = None) -> Catalog:
    """The project's catalogue (plus ``paths``), with the project's disk cache."""
    return load_catalog(settings.sql_dir, external_tables(), paths=paths,
                        root=root or settings.project_dir,
                        cache_path=settings.catalog_cache_path)


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or load_settings()
    catalog = load_project_catalog(settings)
    catalog.raise_for_problems()
    partitions_def = daily_partitions(settings)
    assets = [
        *build_raw_assets(settings),
        build_identity_asset(settings),
        *build_catalog_assets(catalog, producers(catalog), settings, partitions_def),
        build_event_daily_counts(catalog),
        *build_trigger_exports(catalog, settings, partitions_def),
    ]
    assets.append(build_serving_asset(settings, assets))
    events = dg.AssetSelection.assets(*[a.key for a in assets if a.partitions_def is not None])
    everything = dg.AssetSelection.all()
    build_all = dg.define_asset_job(
        "build_all", selection=everything,
        description="Ingest, clean, resolve identities, segments, events and marts.")
    # what reads events (event_daily_counts) runs with them: on a new warehouse the nightly
    # segments run comes before any event partition exists
    serving = dg.AssetSelection.assets(SERVING_KEY)  # publishes whatever exists
    unpartitioned = dg.define_asset_job(
        "refresh_segments", selection=everything - events.downstream() | serving,
        description="Everything except the day-partitioned events and what reads them "
                    "(segments as of a date).")
    daily_events = dg.define_asset_job(
        "daily_events", selection=events.upstream() | events.downstream(),
        partitions_def=partitions_def,
        description="One day of events, what they read and what reads them.")
    freshness_checks = build_freshness_checks(settings, pool=POOL)
    check_freshness = dg.define_asset_job(
        "check_freshness", selection=dg.AssetSelection.checks(freshness_checks),
        description="Only the raw tables' freshness checks (hours since a new file).")
    landing = build_landing_sensor(settings.landing_dir, unpartitioned,
                                   landing_targets(assets, SOURCES))

    @dg.schedule(job=check_freshness, cron_schedule="15 * * * *",
                 execution_timezone=settings.business_timezone,
                 default_status=dg.DefaultScheduleStatus.STOPPED)
    def hourly_freshness(context: dg.ScheduleEvaluationContext):
        """Every hour, whether each raw table received a new file within its limit."""
        return dg.RunRequest()

    @dg.schedule(job=daily_events, cron_schedule="30 2 * * *",
                 execution_timezone=settings.business_timezone,
                 default_status=dg.DefaultScheduleStatus.STOPPED)
    def nightly_events(context: dg.ScheduleEvaluationContext):
        """At 02:30 business time, yesterday's partition of every event."""
        day = (context.scheduled_execution_time.date() - timedelta(days=1))
        return dg.RunRequest(partition_key=day.isoformat(),
                             tags={AS_OF_TAG: day.isoformat()})

    @dg.schedule(job=unpartitioned, cron_schedule="0 2 * * *",
                 execution_timezone=settings.business_timezone,
                 default_status=dg.DefaultScheduleStatus.STOPPED)
    def nightly_segments(context: dg.ScheduleEvaluationContext):
        """At 02:00 business time, segments as of yesterday."""
        day = (context.scheduled_execution_time.date() - timedelta(days=1))
        return dg.RunRequest(tags={AS_OF_TAG: day.isoformat()})

    return dg.Definitions(
        # One process per run, not per step: DuckDB takes one writer, so the pool runs the steps
        # one at a time anyway, and a process per step re-imports and re-loads the project
        # (34 steps of refresh_segments: 95 s with the default multiprocess executor, 11 s here).
        # Pools still apply across runs.
        executor=dg.in_process_executor,
        assets=assets,
        asset_checks=[freshness_checks],
        jobs=[build_all, unpartitioned, daily_events, check_freshness,
              build_history_job(catalog, settings)],
        schedules=[nightly_events, nightly_segments, hourly_freshness],
        sensors=[landing],
        resources={"warehouse": Warehouse(database=str(settings.warehouse_path),
                                           business_timezone=settings.business_timezone)},
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What ``dagster dev`` loads: settings from pyproject.toml and the environment, read now."""
    return build_definitions()
