"""The project's jobs: what runs together, and the segment-history backfill.

* ``nightly``: everything, for one business day (the ``nightly`` schedule, ``crm nightly`` and the
  ``landing`` sensor launch it); no asset runs twice, and each takes in only what changed.
* ``build_all``: everything, for a range of event days (``crm build``, ``crm demo``); with the run
  tag ``crm/full_refresh=true``, every incremental step computes everything from raw again.
* ``fit_clv``: the customer-base models' fit (the weekly ``clv_weekly`` schedule, ``crm clv fit``).
* ``check_freshness``: only the raw tables' freshness checks.
* ``rebuild_segment_history``: recompute segments' membership history from a past day.

Every job runs its steps in the run's own process (``in_process_executor``, set for all of them
in :func:`crm_assets.defs.definitions.build_definitions`): DuckDB takes one writer, so the pool
runs the steps one at a time anyway, and a process per step would re-import and re-load the
project.
"""

from datetime import date

import dagster as dg

from crm_assets.catalog import Catalog
from crm_assets.defs.clv import CLV_KEY, FIT_JOB
from crm_assets.defs.metadata import asset_key
from crm_assets.defs.resources import POOL, Warehouse
from crm_assets.settings import Settings
from crm_assets.warehouse.segments import (
    SegmentHistoryError,
    as_of_models,
    rebuild_segment_history,
    with_segments_read,
)

NIGHTLY = "nightly"


def build_jobs(catalog: Catalog, settings: Settings, freshness_checks: dg.AssetChecksDefinition,
               partitions_def: dg.PartitionsDefinition) -> dict[str, object]:
    """Every job of the project, by name."""
    everything = dg.AssetSelection.all()
    jobs = [
        dg.define_asset_job(  # the model fit is weekly (fit_clv); a night scores with it
            NIGHTLY, selection=everything - dg.AssetSelection.assets(CLV_KEY),
            partitions_def=partitions_def,
            description="Every night, for one business day: new files -> staging -> identity -> "
                        "core -> that day's events and the earlier days whose rows changed -> "
                        "segments as of the day -> marts -> trigger exports -> BI snapshot. "
                        "Each step takes in only what changed since it last ran."),
        dg.define_asset_job(
            "build_all", selection=everything,
            description="Everything, for a range of event days (crm build, crm demo, "
                        "crm plan --apply); with crm/full_refresh=true, from raw again."),
        dg.define_asset_job(
            FIT_JOB, selection=dg.AssetSelection.assets(CLV_KEY),
            description="Fit the customer-base models (BG/NBD, Gamma-Gamma) and publish them in "
                        "meta.clv_models (weekly, crm clv fit); the next night scores with them."),
        dg.define_asset_job(
            "check_freshness", selection=dg.AssetSelection.checks(freshness_checks),
            description="Only the raw tables' freshness checks (hours since a new file)."),
        build_history_job(catalog, settings),
    ]
    return {job.name: job for job in jobs}


class SegmentHistoryConfig(dg.Config):
    """Which segments to rebuild the history of, from which day, to which, how often."""

    segments: list[str]
    first_day: str
    last_day: str | None = None
    every_days: int = 1


def build_history_job(catalog: Catalog, settings: Settings) -> dg.JobDefinition:
    """``rebuild_segment_history``: the history of named segments rebuilt in one run
    (:func:`~crm_assets.warehouse.segments.rebuild_segment_history`).

    Launch it from the UI's launchpad or ``crm segment-history``; what reads the history (marts,
    the BI snapshot) is refreshed by the next run, or at once by ``crm segment-history``.
    """
    segments = {d.name: d for d in catalog.definitions if d.kind == "segment"}

    @dg.op(name="rebuild_history", pool=POOL)
    def _rebuild(context: dg.OpExecutionContext, config: SegmentHistoryConfig,
                 warehouse: Warehouse) -> None:
        unknown = sorted(set(config.segments) - set(segments))
        if unknown:
            raise dg.Failure(f"unknown segment(s): {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(segments))}")
        first = date.fromisoformat(config.first_day)
        last = date.fromisoformat(config.last_day) if config.last_day else None
        chosen = with_segments_read(catalog, [segments[name] for name in config.segments])
        models = as_of_models(catalog, chosen)
        with warehouse.connect() as con:
            try:
                stats = rebuild_segment_history(con, chosen, models, first, last,
                                                context.run.run_id, config.every_days)
            except SegmentHistoryError as err:
                raise dg.Failure(str(err)) from err
        for s in stats:  # the segment's size over as-of dates: Dagster plots these
            context.log_event(dg.AssetObservation(
                asset_key=asset_key(f"segments.{s['segment']}"),
                description=f"as of {s['as_of_date']} (crm segment-history)",
                metadata={"as_of_date": s["as_of_date"].isoformat(), "members": s["members"],
                          "entered": s["entered"], "exited": s["exited"]}))
        days = sorted({s["as_of_date"] for s in stats})
        context.log.info(
            f"history of {', '.join(config.segments)} rebuilt as of {len(days)} day(s), "
            f"{days[0]} to {days[-1]}; recomputed per day: "
            f"{', '.join(m.table for m in models) or 'nothing'}")

    @dg.job(name="rebuild_segment_history", executor_def=dg.in_process_executor,
            description="Recompute segments' membership history from a past day (backfill).")
    def _job():
        _rebuild()

    return _job
