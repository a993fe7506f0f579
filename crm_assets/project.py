"""This project's catalogue: the SQL files under ``sql/`` plus the tables Python code writes.

SQL definitions may read, besides each other, the raw tables of the input contract and the
framework tables an asset writes (identity, segment history); their columns come from the one
place each is declared (:mod:`crm_assets.ingest.contracts`, :mod:`crm_assets.warehouse.tables`).
"""

from __future__ import annotations

from pathlib import Path

from crm_assets.catalog import Catalog, Schema, load_catalog
from crm_assets.ingest.contracts import raw_schemas
from crm_assets.settings import Settings
from crm_assets.warehouse.tables import readable_schemas


def external_tables() -> dict[str, Schema]:
    """Every table SQL definitions may read that no SQL file defines, with its columns."""
    return {**raw_schemas(), **readable_schemas()}


def load_project_catalog(settings: Settings, paths: list[Path] | None = None,
                         root: Path | None = None) -> Catalog:
    """The project's catalogue (plus ``paths``), with the project's disk cache."""
    return load_catalog(settings.sql_dir, external_tables(), paths=paths,
                        root=root or settings.project_dir,
                        cache_path=settings.catalog_cache_path)
