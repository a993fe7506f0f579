"""Shared fixtures: a real warehouse file, a real Dagster instance, the real definitions."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from crm_assets.defs.definitions import build_definitions
from crm_assets.defs.runs import build_all
from crm_assets.settings import Settings, load_settings

PROJECT_DIR = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY = FIXTURES / "tiny"


@dataclass
class Project:
    """A project checkout in a temporary folder: its own sql/, input folder and warehouse."""

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

    def build(self, as_of: date, first_day: date | None = None, last_day: date | None = None):
        return build_all(self.settings, as_of=as_of, first_day=first_day or as_of,
                         last_day=last_day or as_of, instance=self.instance,
                         definitions=self.definitions())

    def query(self, sql: str, params=None) -> list[tuple]:
        con = duckdb.connect(str(self.settings.warehouse_path), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def scalar(self, sql: str, params=None):
        return self.query(sql, params)[0][0]


def make_project(tmp_path: Path, input_dir: Path = TINY, **overrides) -> Project:
    root = tmp_path / "project"
    shutil.copytree(PROJECT_DIR / "sql", root / "sql")
    inputs = tmp_path / "input"
    shutil.copytree(input_dir, inputs)
    settings = load_settings(project_dir=root, input_dir=inputs,
                             warehouse_path=tmp_path / "warehouse" / "crm.duckdb",
                             partition_start=date(2025, 3, 1), business_timezone="Europe/Moscow",
                             **overrides)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT_DIR / "dagster.yaml", home / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(home))
    return Project(settings=settings, instance=instance)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path)
