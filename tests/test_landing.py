"""The ``landing`` sensor: dropping files into the landing folder loads them, once.

The sensor is evaluated directly (``build_sensor_context`` on the real definitions and instance)
and the run it requests is executed in-process, so what runs is what the daemon would launch.
"""

import os
import shutil
import time
from pathlib import Path

import dagster as dg
import pytest
from conftest import TINY, make_project

from crm_assets.defs.partitions import AS_OF_TAG
from crm_assets.defs.resources import Warehouse
from crm_assets.defs.sensors import FILES_TAG, SENSOR_NAME
from crm_assets.ingest.files import LANDING_SETTLE_SECONDS
from crm_assets.ingest.landing import scan_landing
from crm_assets.ingest.loader import load_source


def drop(path: Path, source: Path | bytes, age_seconds: float = 60) -> None:
    """Put a file into the landing folder as if it had finished arriving ``age_seconds`` ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(source, bytes):
        path.write_bytes(source)
    else:
        shutil.copyfile(source, path)
    then = time.time() - age_seconds
    os.utime(path, (then, then))


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor,
                                                        definitions=defs))
    return data.run_requests, data.cursor


@pytest.fixture
def landed(tmp_path):
    empty = tmp_path / "empty_input"
    empty.mkdir()
    project = make_project(tmp_path, input_dir=empty)
    landing = project.settings.landing_dir
    for path in TINY.glob("*.csv"):
        drop(landing / path.name, path)
    return project


def test_dropped_files_load_once_and_a_second_tick_does_nothing(landed):
    project, landing = landed, landed.settings.landing_dir
    defs = project.definitions()
    assert defs.resolve_sensor_def(SENSOR_NAME).default_status == dg.DefaultSensorStatus.STOPPED

    requests, cursor = tick(defs, project.instance, None)
    assert len(requests) == 1
    # the nightly run for the last complete business day, as the schedule would launch it
    yesterday = project.settings.yesterday().isoformat()
    assert (requests[0].partition_key, requests[0].tags[AS_OF_TAG]) == (yesterday, yesterday)
    assert requests[0].tags[FILES_TAG] == ("customers.csv, order_items.csv, orders.csv, "
                                           "products.csv, stores.csv")

    result = defs.resolve_job_def("nightly").execute_in_process(
        instance=project.instance, partition_key=requests[0].partition_key,
        tags=requests[0].tags, raise_on_error=False)
    assert result.success
    # the freshness checks ran after the raw assets, the accounting checks with staging
    evaluations = {(e.asset_key.to_user_string(), e.check_name): e.passed
                   for e in result.get_asset_check_evaluations()}
    assert evaluations[("raw/orders", "freshness")] is True
    assert evaluations[("staging/orders", "every_raw_row_accounted_for")] is True
    assert project.query("SELECT source_file, row_count FROM meta.loaded_files ORDER BY 1") == [
        ("landing/customers.csv", 5), ("landing/order_items.csv", 9), ("landing/orders.csv", 7),
        ("landing/products.csv", 3), ("landing/stores.csv", 2)]
    assert project.scalar("SELECT count(*) FROM core.orders") == 5
    built = {e.asset_key.path[0] for e in result.get_asset_materialization_events()}
    assert built == {"raw", "staging", "core", "segments", "events", "exports", "marts",
                     "serving"}

    # nothing new: no run
    again, cursor = tick(defs, project.instance, cursor)
    assert again == []

    # the same bytes under another name: no run, and a load would skip it
    drop(landing / "orders" / "resent.csv", landing / "orders.csv")
    copy, cursor = tick(defs, project.instance, cursor)
    assert copy == []
    with Warehouse(database=str(project.settings.warehouse_path)).connect() as con:
        load = load_source(con, "orders", project.input_dir, landing_dir=landing)
    assert [(r.source_file, r.skipped) for r in load.results] == [
        ("landing/orders.csv", True), ("landing/orders/resent.csv", True)]
    assert project.scalar("SELECT count(*) FROM raw.orders") == 7

    # a new increment of one table: another nightly run, which stages just its rows
    drop(landing / "orders_2025-03-13.csv",
         b"order_id,customer_id,store_id,ordered_at,channel,status,total_amount\n"
         b"O8,C1,S1,2025-03-13 10:00:00,app,completed,99.00\n")
    increment, cursor = tick(defs, project.instance, cursor)
    assert len(increment) == 1
    assert increment[0].tags[FILES_TAG] == "orders_2025-03-13.csv"
    assert increment[0].run_key != requests[0].run_key
    result = defs.resolve_job_def("nightly").execute_in_process(
        instance=project.instance, partition_key=increment[0].partition_key,
        tags=increment[0].tags, raise_on_error=False)
    assert result.success
    staged = {e.asset_key.to_user_string(): e.materialization.metadata
              for e in result.get_asset_materialization_events()}
    assert staged["staging/orders"]["judged_rows"].value == 1  # the new row, nothing else
    assert staged["staging/orders"]["new_files"].value == 1
    assert staged["staging/customers"]["judged_rows"].value == 0
    assert project.scalar("SELECT count(*) FROM core.orders") == 6


def test_sensor_waits_for_a_file_still_being_written_and_never_opens_the_warehouse(tmp_path):
    landing = tmp_path / "landing"
    drop(landing / "orders.csv", b"order_id\n", age_seconds=0)
    new, cursor = scan_landing(landing, None)
    assert new == {}  # too young: maybe still being copied
    later = time.time() + LANDING_SETTLE_SECONDS + 1
    new, cursor = scan_landing(landing, cursor, now=later)
    assert list(new) == ["orders"]
    # changed bytes (a fixed file) are requested again; unchanged ones are not even re-read
    assert scan_landing(landing, cursor, now=later)[0] == {}
    drop(landing / "orders.csv", b"order_id,customer_id\n")
    assert list(scan_landing(landing, cursor)[0]) == ["orders"]
    assert not (tmp_path / "warehouse").exists()
