"""Dagster's run and event storage in PostgreSQL (``dagster.postgres.yaml``), for real.

A database of its own on the local PostgreSQL (127.0.0.1:5432, started by ``.ci/run``), an
instance made from the shipped config file exactly as ``crm`` sets it up when ``DAGSTER_PG_URL``
is set, and a real build of the tiny fixture through it.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date

import dagster as dg
import pytest
from conftest import PROJECT_DIR, Project, make_project

from crm_assets.cli.instance import ensure_dagster_home

psycopg = pytest.importorskip("psycopg")


@pytest.fixture
def pg_url(monkeypatch):
    admin = user = None
    for user in ("postgres", "root"):
        try:
            admin = psycopg.connect(host="127.0.0.1", port=5432, user=user, dbname="postgres",
                                    connect_timeout=5, autocommit=True)
            break
        except psycopg.OperationalError:
            continue
    if admin is None:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"crm_dagster_{uuid.uuid4().hex[:10]}"
    admin.execute(f"CREATE DATABASE {name}")
    url = f"postgresql://{user}@127.0.0.1:5432/{name}"  # as a user writes it; crm adds psycopg2
    monkeypatch.setenv("DAGSTER_PG_URL", url)
    try:
        yield url
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def test_a_build_is_recorded_in_postgresql(tmp_path, pg_url, monkeypatch):
    project = make_project(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "pg_home"))
    home = ensure_dagster_home(replace(project.settings, project_dir=PROJECT_DIR))
    # DAGSTER_PG_URL chose the PostgreSQL configuration
    assert (home / "dagster.yaml").read_bytes() == (
        PROJECT_DIR / "dagster.postgres.yaml").read_bytes()
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        on_pg = Project(root=project.root, settings=project.settings, instance=instance)
        result = on_pg.build(as_of=date(2025, 3, 12), first_day=date(2025, 3, 1),
                             last_day=date(2025, 3, 12))
        assert result.success, result.error
        assert on_pg.query("SELECT count(*) FROM segments.croissant_buyers") == [(2,)]
    finally:
        instance.dispose()

    # what another process (the UI, the daemon, the next run) finds in the database
    with psycopg.connect(pg_url) as con:
        assert con.execute("SELECT run_id, status FROM runs").fetchall() == [
            (result.run_id, "SUCCESS")]
        assert con.execute(
            "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = "
            "'ASSET_MATERIALIZATION' AND asset_key = %s",
            [result.run_id, dg.AssetKey(["segments", "croissant_buyers"]).to_string()]
        ).fetchone() == (1,)
