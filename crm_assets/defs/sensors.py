"""The ``landing`` sensor: CSV files dropped into the landing folder start the nightly run.

Drop ``<table>.csv``, ``<table>_<anything>.csv`` or ``<table>/<anything>.csv`` into the landing
folder (``[tool.crm] landing_dir``, env ``CRM_LANDING_DIR``, default ``<project>/landing``). On each
tick the sensor lists the folder and, for new files, requests **the nightly run** for the last
complete business day (yesterday): the same job, partition and tags as the ``nightly`` schedule.
Each of its steps takes in only what changed, so a file dropped at noon costs what it holds:
its rows are staged, resolved and merged, the days its rows fall on are rebuilt in the events,
and segments, marts, exports and the BI snapshot follow.

The sensor never opens the DuckDB warehouse: a writer may hold it, and a sensor that blocked on it
would stall the daemon. What it has already requested is in its cursor instead
(:mod:`crm_assets.ingest.landing`). The run itself skips any file whose sha256 is already in
``meta.loaded_files``, so a file the sensor requests twice (after a cursor reset, say) still loads
once. A refused file is reported by its run and stays in place; the sensor requests it again only
once its bytes change, i.e. once it is fixed.

The sensor ships stopped (``DefaultSensorStatus.STOPPED``): turn it on in the UI, with the Dagster
daemon running (``dagster dev`` starts one).
"""

import hashlib
from pathlib import Path

import dagster as dg

from crm_assets.defs.schedules import nightly_request
from crm_assets.ingest.landing import scan_landing
from crm_assets.settings import Settings

SENSOR_NAME = "landing"
TRIGGER_TAG = "crm/trigger"
FILES_TAG = "crm/landing_files"


def build_landing_sensor(settings: Settings, job, minimum_interval_seconds: int = 30
                         ) -> dg.SensorDefinition:
    """The ``landing`` sensor over the landing folder, launching the nightly ``job``."""
    landing_dir: Path | None = settings.landing_dir

    @dg.sensor(name=SENSOR_NAME, job=job, minimum_interval_seconds=minimum_interval_seconds,
               default_status=dg.DefaultSensorStatus.STOPPED,
               description=f"New CSV files in {landing_dir} -> the nightly run for yesterday.")
    def landing(context: dg.SensorEvaluationContext):
        new, cursor = scan_landing(landing_dir, context.cursor)
        if not new:
            return dg.SensorResult(skip_reason=f"no new files in {landing_dir}", cursor=cursor)
        pairs = sorted(f"{table}:{sha}" for table, got in new.items() for _, sha in got)
        names = sorted(rel for got in new.values() for rel, _ in got)
        context.log.info(f"new landing files: {', '.join(names)}")
        night = nightly_request(settings.yesterday())
        request = dg.RunRequest(
            run_key=hashlib.sha256("\n".join(pairs).encode()).hexdigest()[:32],
            partition_key=night.partition_key,
            tags={**night.tags, TRIGGER_TAG: SENSOR_NAME, FILES_TAG: ", ".join(names)[:1000]})
        return dg.SensorResult(run_requests=[request], cursor=cursor)

    return landing
