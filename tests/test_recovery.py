"""A run killed at any instant (SIGKILL: the out-of-memory killer, a reboot) leaves old or new
data, never a mix, and the next run proceeds without a person.

The killed process held the one slot of the ``duckdb_writer`` pool and its run stayed STARTED; the
next ``crm build`` must mark it failed, free the slot, and build what a clean build builds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from conftest import AS_OF, FIRST_DAY, Project, data_tables, make_project, rows_of

from crm_assets.defs.recovery import PROCESS_TAG, is_gone, this_process
from crm_assets.tools.status import collect_status

CRM = str(Path(sys.executable).with_name("crm"))
BUILD = [CRM, "build", "--as-of", AS_OF.isoformat(), "--first-day", FIRST_DAY.isoformat(),
         "--last-day", AS_OF.isoformat()]
WRITTEN_AT = {"_loaded_at", "loaded_at", "file_mtime_ns", "first_seen_at", "merged_at",
              "raw_row", "_batch", "rejected_at", "computed_at", "run_id", "staged_at",
              "built_at", "batch", "first_materialized_at"}
"""When or by which run a row was written (the loads of the killed run stay: a file is loaded
once, and its rows are kept with the time it was loaded)."""


def started_step(project: Project, step: str) -> str | None:
    """The id of the latest run if it has started ``step``."""
    runs = project.instance.get_runs(limit=1)
    if not runs:
        return None
    records = project.instance.get_records_for_run(
        runs[0].run_id, of_type=dg.DagsterEventType.STEP_START).records
    started = {r.event_log_entry.step_key for r in records}
    return runs[0].run_id if step in started else None


@pytest.mark.parametrize("step", ["staging__orders", "serving__snapshot"])  # mid-run, last
def test_a_build_killed_in_a_step_does_not_stop_the_next(built, tmp_path, step):
    project = make_project(tmp_path)
    env = {**os.environ, **project.cli_environment()}
    killed = subprocess.Popen(BUILD, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while (run_id := started_step(project, step)) is None:
            assert killed.poll() is None, "the build ended before the step it was to be killed in"
            assert time.monotonic() < deadline, f"{step} never started"
            time.sleep(0.02)
        killed.send_signal(signal.SIGKILL)
    finally:
        killed.wait()
    assert project.instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED

    again = subprocess.run(BUILD, env=env, capture_output=True, text=True, timeout=300)

    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    dead = project.instance.get_run_by_id(run_id)
    assert dead.status == dg.DagsterRunStatus.FAILURE
    alerts = [json.loads(line) for line in
              project.settings.alert_log_path.read_text().splitlines()]
    assert [a["run_id"] for a in alerts] == [run_id]  # the operator hears of it
    assert "is gone (killed, out of memory, or the machine restarted)" in alerts[0]["text"]
    assert not project.instance.event_log_storage.get_concurrency_info(
        "duckdb_writer").claimed_slots
    assert data_tables(project) == data_tables(built)
    for table in data_tables(built):
        assert rows_of(project, table, WRITTEN_AT) == rows_of(built, table, WRITTEN_AT), table


def test_only_a_process_that_is_gone_counts_as_dead():
    me = this_process()
    assert not is_gone(me)
    host, pid, started = me.split(":")
    assert is_gone(f"{host}:{pid}:{int(started or 0) + 1}")  # the pid, now another process
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert is_gone(f"{host}:{child.pid}:")
    assert not is_gone(f"another-host:{child.pid}:")  # cannot tell from here: alive


def test_the_dead_runs_sensor_finds_a_killed_run(tmp_path):
    """Under ``dagster dev`` nobody may run ``crm`` again: the sensor does the same repair."""
    project = make_project(tmp_path)
    killed = subprocess.Popen(BUILD, env={**os.environ, **project.cli_environment()},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while (run_id := started_step(project, "staging__customers")) is None:
            assert killed.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        killed.send_signal(signal.SIGKILL)
    finally:
        killed.wait()
    run = project.instance.get_run_by_id(run_id)
    assert run.status == dg.DagsterRunStatus.STARTED and run.tags[PROCESS_TAG]

    status = collect_status(project.settings, project.definitions(), project.instance)
    (stuck,) = status.unfinished_runs
    assert (stuck["run_id"], stuck["process_gone"]) == (run_id, True)
    assert status.claimed_slots == 1
    assert any(line.startswith(f"run {run_id} of build_all is STARTED but its process is gone")
               for line in status.attention)

    sensor = next(s for s in project.definitions().sensors if s.name == "dead_runs")
    sensor(dg.build_sensor_context(instance=project.instance))

    assert project.instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    assert not project.instance.event_log_storage.get_concurrency_info(
        "duckdb_writer").claimed_slots
