"""The ``landing`` sensor: CSV files dropped into the landing folder trigger a load.

Drop ``<table>.csv``, ``<table>_<anything>.csv`` or ``<table>/<anything>.csv`` into the landing
folder (``[tool.crm] landing_dir``, env ``CRM_LANDING_DIR``, default ``<project>/landing``). On each
tick the sensor lists the folder and requests **one run** materialising the raw assets of the tables
that received new files and everything downstream of them, except the day-partitioned events and
what depends only on them: those follow their nightly schedule (``nightly_events``), which reads
the same staged data, so a file dropped at noon is in the segments at once and in the event
partitions by the next night. Assets the refreshed ones read (``staging.stores`` for
``staging.orders``, ``raw.interactions`` for ``staging.interactions``...) are added only if they
were never materialised, which the sensor asks the Dagster instance, so the first file dropped
into a new warehouse does not fail on a missing table.

The sensor never opens the DuckDB warehouse: a writer may hold it, and a sensor that blocked on it
would stall the daemon. What it has already requested is in its cursor instead: ``(relative path,
size, mtime, sha256)`` per file present. A file whose size and mtime are unchanged is not even
read again; a new or changed file is hashed, and requested only if those bytes (for that table)
were not requested before, so a renamed or re-touched copy triggers nothing. The run itself skips
any file whose sha256 is already in ``meta.loaded_files``, so a file the sensor requests twice
(after a cursor reset, say) still loads once. A file younger than
:data:`crm_assets.ingest.files.LANDING_SETTLE_SECONDS` may still be being copied in and waits for
a later tick. A refused file (see :mod:`crm_assets.ingest.loader`) fails its run and stays in
place; the sensor requests it again only once its bytes change, i.e. once it is fixed.

The sensor ships stopped (``DefaultSensorStatus.STOPPED``): turn it on in the UI, with the Dagster
daemon running (``dagster dev`` starts one).
"""

import hashlib
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from crm_assets.ingest.landing import scan_landing

SENSOR_NAME = "landing"
TRIGGER_TAG = "crm/trigger"
FILES_TAG = "crm/landing_files"


@dataclass(frozen=True)
class Refresh:
    """What a new file of one table refreshes, and what those assets read that it does not."""

    assets: tuple[dg.AssetKey, ...]
    upstream: tuple[dg.AssetKey, ...]


def landing_targets(assets: Iterable[dg.AssetsDefinition], tables: Iterable[str]
                    ) -> dict[str, Refresh]:
    """Per table: ``raw.<table>`` and every asset downstream of it not reached only through a
    partitioned asset (partitioned assets and what hangs off them are left out), and the other
    unpartitioned assets those read, directly or not."""
    assets = list(assets)
    partitioned = {k for a in assets if a.partitions_def is not None for k in a.keys}
    children: dict[dg.AssetKey, set[dg.AssetKey]] = {}
    parents: dict[dg.AssetKey, set[dg.AssetKey]] = {}
    for a in assets:
        for key, deps in a.asset_deps.items():
            parents.setdefault(key, set()).update(deps)
            for dep in deps:
                children.setdefault(dep, set()).add(key)

    def closure(start: Iterable[dg.AssetKey], edges: Mapping) -> set[dg.AssetKey]:
        seen, todo = set(start), deque(start)
        while todo:
            for nxt in edges.get(todo.popleft(), ()):
                if nxt not in seen and nxt not in partitioned:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    out = {}
    for table in tables:
        refreshed = closure([dg.AssetKey(["raw", table])], children)
        upstream = closure(refreshed, parents) - refreshed
        out[table] = Refresh(tuple(sorted(refreshed, key=dg.AssetKey.to_user_string)),
                             tuple(sorted(upstream, key=dg.AssetKey.to_user_string)))
    return out


def build_landing_sensor(landing_dir: Path | None, job: dg.JobDefinition,
                         targets: Mapping[str, Refresh],
                         minimum_interval_seconds: int = 30) -> dg.SensorDefinition:
    """The ``landing`` sensor over ``landing_dir``, launching ``job`` on a subset of its assets.

    Args:
        job: an unpartitioned asset job (from ``define_asset_job``) holding every asset of
            ``targets``.
        targets: per table, the assets a new file of that table refreshes and what they read
            (see :func:`landing_targets`); what they read is added to the run only if it was
            never materialised (a new warehouse), so the run does not fail on a missing table.
    """

    @dg.sensor(name=SENSOR_NAME, job=job, minimum_interval_seconds=minimum_interval_seconds,
               default_status=dg.DefaultSensorStatus.STOPPED,
               description=f"New CSV files in {landing_dir} -> load them and refresh everything "
                           "downstream (events: by their nightly schedule).")
    def landing(context: dg.SensorEvaluationContext):
        new, cursor = scan_landing(landing_dir, context.cursor)
        if not new:
            return dg.SensorResult(skip_reason=f"no new files in {landing_dir}", cursor=cursor)
        keys = {k for table in new for k in targets[table].assets}
        upstream = {k for table in new for k in targets[table].upstream} - keys
        if upstream:  # on a new warehouse, also build what the refreshed assets read
            latest = context.instance.get_latest_materialization_events(list(upstream))
            keys |= {k for k in upstream if latest.get(k) is None}
        keys = sorted(keys, key=dg.AssetKey.to_user_string)
        pairs = sorted(f"{table}:{sha}" for table, got in new.items() for _, sha in got)
        names = sorted(rel for got in new.values() for rel, _ in got)
        context.log.info(f"new landing files: {', '.join(names)}")
        request = dg.RunRequest(
            run_key=hashlib.sha256("\n".join(pairs).encode()).hexdigest()[:32],
            asset_selection=keys,
            tags={TRIGGER_TAG: SENSOR_NAME, FILES_TAG: ", ".join(names)[:1000]})
        return dg.SensorResult(run_requests=[request], cursor=cursor)

    return landing
