"""Every asset, check, job, schedule, sensor and resource of the project, gathered from settings.

Loading validates the whole SQL catalogue and refuses to start on any problem, so a broken or
hostile SQL file never reaches a run. This is the one place project-wide policy is applied: one
executor for every job, one writer pool, one warehouse resource.
"""

from __future__ import annotations

import dagster as dg

from crm_assets.defs.alerts import build_alert_sensors
from crm_assets.defs.checks import build_freshness_checks
from crm_assets.defs.clv import build_clv_fit_asset
from crm_assets.defs.contacts import build_contact_checks
from crm_assets.defs.erasure import ERASE_JOB, build_erasure_job
from crm_assets.defs.event_log import EVENT_BATCH_SIZE  # noqa: F401  (per-day records in batches)
from crm_assets.defs.identity import build_identity_asset
from crm_assets.defs.jobs import NIGHTLY, build_jobs
from crm_assets.defs.marts import build_event_daily_counts
from crm_assets.defs.partitions import daily_partitions
from crm_assets.defs.raw import build_raw_assets
from crm_assets.defs.recovery import build_dead_runs_sensor
from crm_assets.defs.reference import build_reference_assets
from crm_assets.defs.resources import POOL, Warehouse
from crm_assets.defs.schedules import build_schedules
from crm_assets.defs.sensors import build_landing_sensor
from crm_assets.defs.serving import (
    build_contacts_asset,
    build_serving_asset,
    build_trigger_exports,
)
from crm_assets.defs.sql_assets import build_catalog_assets, producers
from crm_assets.defs.unmerge import UNMERGE_JOB, build_unmerge_job
from crm_assets.project import load_project_catalog
from crm_assets.settings import Settings, load_settings


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """The project's definitions for ``settings`` (default: ``pyproject.toml`` and the
    environment, read now)."""
    settings = settings or load_settings()
    catalog = load_project_catalog(settings)
    catalog.raise_for_problems()
    partitions_def = daily_partitions(settings)
    assets = [
        *build_raw_assets(settings),
        build_contact_checks(),
        build_identity_asset(settings),
        *build_reference_assets(settings),
        *build_catalog_assets(catalog, producers(catalog), settings, partitions_def),
        build_clv_fit_asset(catalog, settings),
        build_event_daily_counts(catalog),
        *build_trigger_exports(catalog, settings, partitions_def),
    ]
    assets.append(build_serving_asset(settings, assets))
    assets.append(build_contacts_asset(settings))
    freshness_checks = build_freshness_checks(settings, pool=POOL)
    jobs = build_jobs(catalog, settings, freshness_checks, partitions_def)
    jobs[ERASE_JOB] = build_erasure_job(settings)
    jobs[UNMERGE_JOB] = build_unmerge_job()
    landing = build_landing_sensor(settings, jobs[NIGHTLY])
    return dg.Definitions(
        # One process per run, not per step: DuckDB takes one writer, so the pool runs the steps
        # one at a time anyway, and a process per step re-imports and re-loads the project
        # (34 steps of the segments and what reads them: 95 s with the default multiprocess
        # executor, 11 s here).
        # Pools still apply across runs.
        executor=dg.in_process_executor,
        assets=assets,
        asset_checks=[freshness_checks],
        jobs=list(jobs.values()),
        schedules=build_schedules(jobs, settings),
        sensors=[landing, build_dead_runs_sensor(), *build_alert_sensors(settings)],
        resources={"warehouse": Warehouse(database=str(settings.warehouse_path),
                                           business_timezone=settings.business_timezone,
                                           lock_wait_seconds=settings.lock_wait_seconds,
                                           connection_config=settings.duckdb_config,
                                           earliest_plausible_date=(
                                               settings.earliest_plausible_date.isoformat()),
                                           plausible_days_after_load=(
                                               settings.plausible_days_after_load),
                                           currency_code=settings.currency_code,
                                           currency_symbol=settings.currency_symbol,
                                           lifecycle=settings.lifecycle)},
    )
