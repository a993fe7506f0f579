"""The warehouse is held only by runs: a process outside Dagster holding the file (a notebook, a
BI tool opening it read-only) is named, waited for, then reported with what to do."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import date

import dagster as dg
import duckdb
import pytest

from crm_assets.cli.main import main

HOLD = ("import duckdb, sys, time\n"
        "con = duckdb.connect(sys.argv[1], read_only=sys.argv[3] == 'read')\n"
        "print('holding', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n")


def hold(path, seconds: float, mode: str = "read") -> subprocess.Popen:
    """A process outside Dagster holding the warehouse (``read``: read-only, as a BI tool would;
    ``write``) for ``seconds``."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds), mode],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    return holder


@pytest.fixture
def project(built, tmp_path):
    return built.copy(tmp_path)


def test_a_run_meeting_an_outside_lock_names_the_holder_then_fails(project, monkeypatch,
                                                                     capsys):
    project.settings = replace(project.settings, lock_wait_seconds=2)
    holder = hold(project.settings.warehouse_path, 600)
    try:
        result = project.nightly(date(2025, 3, 13))
        assert not result.success
        assert f"it is held by process {holder.pid} ({sys.executable} -c import duckdb" \
            in result.error
        assert "BI tools and notebooks read the BI snapshot (serving/crm.duckdb)" in result.error
        warnings = [e.message for e in project.instance.all_logs(result.run_id)
                    if e.level == 30 and "waiting up to 2 s" in (e.user_message or "")]
        assert warnings and f"held by process {holder.pid}" in warnings[0]

    finally:
        holder.kill()
        holder.wait()

    # a reading command meeting a writer outside Dagster says the same, not a stack trace
    writer = hold(project.settings.warehouse_path, 600, mode="write")
    try:
        project.use_from_cli(monkeypatch)
        assert main(["summary"]) == 1
        err = capsys.readouterr().err
        assert f"it is held by process {writer.pid}" in err and "Wait for that process" in err
    finally:
        writer.kill()
        writer.wait()


def test_a_run_waits_for_an_outside_lock_that_goes_away(project):
    holder = hold(project.settings.warehouse_path, 120)
    known = {r.run_id for r in project.instance.get_runs()}

    def release_once_the_run_waits() -> None:
        """The holder lets go once the run has said it waits for it (however slow the machine
        is to get there), or after two minutes."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and holder.poll() is None:
            for run in project.instance.get_runs():
                if run.run_id not in known and any(
                        f"held by process {holder.pid}" in (e.user_message or "")
                        for e in project.instance.all_logs(run.run_id)):
                    holder.kill()
                    return
            time.sleep(0.2)
        holder.kill()

    watcher = threading.Thread(target=release_once_the_run_waits, daemon=True)
    watcher.start()
    try:
        result = project.nightly(date(2025, 3, 13))
    finally:
        watcher.join()
        holder.wait()
    assert result.success, result.error
    logs = project.instance.all_logs(result.run_id)
    assert any(f"held by process {holder.pid}" in (e.user_message or "") for e in logs)
    assert project.instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.SUCCESS


def test_a_run_lets_go_of_the_warehouse_when_it_ends_even_failed(project):
    """A run keeps the file open between its steps (one DuckDB instance for the run); once it
    ends, succeeded or failed in a later step, this process and any other can open it."""
    assert project.nightly(date(2025, 3, 13)).success
    hold(project.settings.warehouse_path, 0, mode="write").wait()  # another process: opens it
    with duckdb.connect(str(project.settings.warehouse_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM core.customers").fetchone()[0] > 0

    # a night failing after raw, in staging's blocking reject_rate check
    (project.input_dir / "orders_bad_dates.csv").write_text(
        "order_id,customer_id,store_id,ordered_at,channel,status,total_amount\n"
        "O8,C3,S1,2099-03-13 10:00:00,in_store,completed,120.00\n", encoding="utf-8")
    result = project.nightly(date(2025, 3, 13))
    assert not result.success
    failed = {e.step_key for e in project.instance.all_logs(
        result.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)}
    assert "staging__orders" in failed
    hold(project.settings.warehouse_path, 0, mode="write").wait()
    with duckdb.connect(str(project.settings.warehouse_path), read_only=True) as con:
        loaded = con.execute("SELECT count(*) FROM meta.loaded_files "
                             "WHERE source_file LIKE '%orders_bad_dates.csv'").fetchone()[0]
    assert loaded == 1  # the raw step before the failure committed, and the file is free
