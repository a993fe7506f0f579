"""The jobs and schedules a deployment runs: what each nightly tick asks for, in business time."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from conftest import PROJECT_DIR, make_project

from crm_assets.defs.partitions import AS_OF_TAG

MOSCOW = ZoneInfo("Europe/Moscow")


@pytest.fixture(scope="module")
def defs(tmp_path_factory) -> dg.Definitions:
    return make_project(tmp_path_factory.mktemp("schedules")).definitions()


def _request(defs: dg.Definitions, name: str, at: datetime) -> dg.RunRequest:
    schedule = defs.resolve_schedule_def(name)
    context = dg.build_schedule_context(scheduled_execution_time=at,
                                        repository_def=defs.get_repository_def())
    result = schedule.evaluate_tick(context)
    assert len(result.run_requests) == 1
    return result.run_requests[0]


def test_the_nightly_run_asks_for_the_previous_business_day(defs):
    # 02:00 in Moscow on 1 July is still 30 June in UTC (23:00): the day is Moscow's
    night = _request(defs, "nightly", datetime(2026, 7, 1, 2, 0, tzinfo=MOSCOW))
    assert (night.partition_key, night.tags[AS_OF_TAG]) == ("2026-06-30", "2026-06-30")
    # the first day of a month asks for the last day of the previous one
    assert _request(defs, "nightly",
                    datetime(2026, 3, 1, 2, 0, tzinfo=MOSCOW)).partition_key == "2026-02-28"


def test_schedules_ship_stopped_in_the_business_time_zone(defs):
    expected = {"nightly": ("0 2 * * *", "nightly"), "clv_weekly": ("0 4 * * 1", "fit_clv"),
                "hourly_freshness": ("15 * * * *", "check_freshness")}
    assert {s.name for s in defs.get_repository_def().schedule_defs} == set(expected)
    for name, (cron, job) in expected.items():
        schedule = defs.resolve_schedule_def(name)
        assert (schedule.cron_schedule, schedule.job_name) == (cron, job)
        assert schedule.execution_timezone == "Europe/Moscow"
        assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED


def test_jobs_run_their_steps_in_the_run_process(defs):
    """A step process would re-import and re-load the project for each asset, and DuckDB's single
    writer (the pool of 1) leaves no parallelism for it to buy."""
    for job in ("nightly", "build_all", "check_freshness", "rebuild_segment_history"):
        assert defs.resolve_job_def(job).executor_def.name == dg.in_process_executor.name


def test_the_code_location_loads_as_dagster_dev_loads_it(tmp_path):
    """``crm_assets.definitions:defs`` through ``workspace.yaml`` in a code server of its own, as
    ``dagster dev`` loads it: every job there, and not one Beta warning in its log."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT_DIR / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "CRM_CATALOG_CACHE": "off",
           "CRM_WAREHOUSE": str(tmp_path / "warehouse" / "crm.duckdb")}
    done = subprocess.run([str(Path(sys.executable).with_name("dagster")), "job", "list",
                           "-w", "workspace.yaml"], cwd=PROJECT_DIR, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    jobs = {line.split(": ", 1)[1] for line in done.stdout.splitlines()
            if line.startswith("Job: ")}
    assert jobs >= {"nightly", "build_all", "check_freshness", "rebuild_segment_history"}
    assert "BetaWarning" not in done.stderr
