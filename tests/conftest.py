"""Shared fixtures: a real warehouse file, a real Dagster instance, the real definitions.

Building the tiny fixture through Dagster takes seconds, so it is built once per test session
(:func:`built`): tests that only read use it as it is; tests that change it take their own copy
(:meth:`Project.copy`), which costs a file copy instead of a build.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from crm_assets.defs.definitions import build_definitions
from crm_assets.defs.runs import build_all, nightly
from crm_assets.settings import Settings, load_settings
from crm_assets.warehouse import ensure_framework_tables, prepare_connection

PROJECT_DIR = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY = FIXTURES / "tiny"
DIRTY_ON_PURPOSE = 0.5
"""The reject-rate limit of test projects: the hand-made fixtures are dirty on purpose (a third of
the tiny fixture's order lines are rejected, against 20 % allowed by default)."""
AS_OF, FIRST_DAY = date(2025, 3, 12), date(2025, 3, 1)
"""What :func:`built` is built for: segments as of the 12th, event days from the 1st."""


def pytest_configure(config: pytest.Config) -> None:
    """Temporary folders in RAM where there is some (``/dev/shm``), unless ``--basetemp`` says
    otherwise: the Dagster instance's SQLite files sync on every event, which on a disk costs a
    third of a build's time. Still real files, a real instance and a real warehouse."""
    shm = Path("/dev/shm")
    if config.option.basetemp is None and shm.is_dir() and os.access(shm, os.W_OK):
        config.option.basetemp = str(shm / f"crm-assets-pytest-{os.getuid()}")


@dataclass
class Project:
    """A project checkout in a temporary folder: its own sql/, input folder and warehouse."""

    root: Path
    settings: Settings
    instance: dg.DagsterInstance

    @property
    def sql_dir(self) -> Path:
        return self.settings.sql_dir

    @property
    def input_dir(self) -> Path:
        return self.settings.input_dir

    def definitions(self) -> dg.Definitions:
        return build_definitions(self.settings)

    def build(self, as_of: date, first_day: date | None = None, last_day: date | None = None,
              full_refresh: bool = False):
        return build_all(self.settings, as_of=as_of, first_day=first_day or as_of,
                         last_day=last_day or as_of, instance=self.instance,
                         definitions=self.definitions(), full_refresh=full_refresh)

    def nightly(self, day: date):
        """The nightly run for ``day``, as the schedule launches it."""
        return nightly(self.settings, day, instance=self.instance,
                       definitions=self.definitions())

    def query(self, sql: str, params=None) -> list[tuple]:
        con = duckdb.connect(str(self.settings.warehouse_path), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def scalar(self, sql: str, params=None):
        return self.query(sql, params)[0][0]

    def cli_environment(self) -> dict[str, str]:
        """The environment variables that point ``crm`` at this project and its instance."""
        s = self.settings
        return {var: str(value) for var, value in {
            "CRM_PROJECT_DIR": s.project_dir, "CRM_INPUT_DIR": s.input_dir,
            "CRM_WAREHOUSE": s.warehouse_path, "CRM_TIMEZONE": s.business_timezone,
            "CRM_PARTITION_START": s.partition_start, "CRM_LANDING_DIR": s.landing_dir,
            "CRM_MAX_REJECT_RATE": s.reject_rate_limit("default"),
            "DAGSTER_HOME": self.instance.root_directory}.items()}

    def use_from_cli(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point ``crm`` (settings from the environment) at this project and its instance."""
        for var, value in self.cli_environment().items():
            monkeypatch.setenv(var, value)

    def copy(self, tmp_path: Path) -> Project:
        """The same project, warehouse and Dagster instance, in ``tmp_path``: free to change."""
        target = tmp_path / "copy"
        shutil.copytree(self.root, target)
        return _project(target, self.settings)


def _project(root: Path, like: Settings, **overrides) -> Project:
    """The project whose folders are under ``root``, otherwise set up like ``like``."""
    settings = load_settings(**{
        "project_dir": root / "project", "input_dir": root / "input",
        "warehouse_path": root / "warehouse" / "crm.duckdb",
        "landing_dir": root / "project" / "landing",
        "catalog_cache_path": like.catalog_cache_path and (
            root / "project" / "target" / "catalog_cache.json"),
        "partition_start": like.partition_start, "business_timezone": like.business_timezone,
        "freshness_hours": like.freshness_hours, "max_reject_rate": like.max_reject_rate,
        **overrides})
    return Project(root, settings, instance_at(root / "dagster_home"))


def instance_at(home: Path) -> dg.DagsterInstance:
    """The Dagster instance of ``home`` (its dagster.yaml names ``DAGSTER_HOME``, read while the
    instance is made), leaving the process environment as it was."""
    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        return dg.DagsterInstance.from_config(str(home))
    finally:
        if before is None:
            del os.environ["DAGSTER_HOME"]
        else:
            os.environ["DAGSTER_HOME"] = before


def make_project(tmp_path: Path, input_dir: Path = TINY, **overrides) -> Project:
    shutil.copytree(PROJECT_DIR / "sql", tmp_path / "project" / "sql")
    reference = Path("seeds") / "reference"  # the RFM map
    shutil.copytree(PROJECT_DIR / reference, tmp_path / "project" / reference)
    shutil.copyfile(PROJECT_DIR / "workspace.yaml", tmp_path / "project" / "workspace.yaml")
    shutil.copytree(input_dir, tmp_path / "input")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT_DIR / "dagster.yaml", home / "dagster.yaml")
    defaults = load_settings(project_dir=tmp_path / "project", partition_start=date(2025, 3, 1),
                             business_timezone="Europe/Moscow",
                             max_reject_rate={"default": DIRTY_ON_PURPOSE})
    return _project(tmp_path, defaults, **overrides)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path)


@pytest.fixture
def prepared_warehouse(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """An empty warehouse file, its connection prepared as a run's (the run constants, the
    framework's tables): for tests that call the warehouse functions without Dagster."""
    con = duckdb.connect(str(tmp_path / "crm.duckdb"))
    prepare_connection(con)
    ensure_framework_tables(con)
    yield con
    con.close()


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Project:
    """The tiny fixture built once: segments as of 2025-03-12, event days 2025-03-01 to 12.

    Read it, never change it; a test that changes it takes ``built.copy(tmp_path)``.
    """
    project = make_project(tmp_path_factory.mktemp("built"))
    result = project.build(as_of=AS_OF, first_day=FIRST_DAY, last_day=AS_OF)
    assert result.success, result.error
    return project


RUN_COLUMNS = {"_batch", "rejected_at", "computed_at", "run_id", "staged_at", "built_at", "batch",
               "first_materialized_at"}
"""What says when or by which run a row was written: not part of what a table holds."""
BOOKKEEPING = {"meta.built_versions", "meta.watermarks", "meta.staged_files", "meta.event_days",
               "meta.changed_parts"}
"""Tables recording what each run did, not what the data is."""


def rows_of(project: Project, table: str, excluded: set[str] = RUN_COLUMNS) -> list[tuple]:
    schema, name = table.split(".")
    columns = [r[0] for r in project.query(
        "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
        "ORDER BY column_index", [schema, name]) if r[0] not in excluded]
    listed = ", ".join(f'"{c}"' for c in columns)
    return project.query(f"SELECT {listed} FROM {table} ORDER BY ALL")


def data_tables(project: Project) -> list[str]:
    return [f"{s}.{t}" for s, t in project.query(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT temporary "
        "ORDER BY 1, 2") if f"{s}.{t}" not in BOOKKEEPING]


def check_results(project: Project, run_id: str) -> dict[tuple[str, str], tuple[bool, str]]:
    """Each asset check the run evaluated, by (asset, check): passed, and its description."""
    records = project.instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    out = {}
    for r in records:
        e = r.event_log_entry.dagster_event.asset_check_evaluation_data
        out[(e.asset_key.to_user_string(), e.check_name)] = (e.passed, e.description or "")
    return out


def materialized(project: Project, run_id: str) -> set[str]:
    """The assets the run materialised."""
    records = project.instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    return {r.event_log_entry.dagster_event.asset_key.to_user_string() for r in records}
