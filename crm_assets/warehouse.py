"""Opening the DuckDB warehouse the same way everywhere, and the tables the framework owns.

Every connection the project opens goes through :func:`prepare_connection`, so that an unknown table
name can never resolve to a Python variable (``python_enable_replacements``), comparisons of zoned
timestamps never depend on the caller's machine (``TimeZone``), and the project's SQL functions
exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

LAYERS: tuple[str, ...] = ("raw", "staging", "core", "segments", "events", "marts")
"""Schemas in data-flow order; a definition may read only its own or earlier layers."""

SCHEMAS: tuple[str, ...] = (*LAYERS, "meta")

META_DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS meta.loaded_files (
        table_name VARCHAR NOT NULL,
        source_file VARCHAR NOT NULL,
        file_sha256 VARCHAR NOT NULL,
        row_count BIGINT NOT NULL,
        loaded_at TIMESTAMPTZ NOT NULL,
        run_id VARCHAR,
        PRIMARY KEY (table_name, file_sha256)
    )""",
    """CREATE TABLE IF NOT EXISTS meta.definition_versions (
        name VARCHAR NOT NULL,
        layer VARCHAR NOT NULL,
        version VARCHAR NOT NULL,
        sql VARCHAR NOT NULL,
        first_materialized_at TIMESTAMPTZ NOT NULL,
        run_id VARCHAR,
        PRIMARY KEY (layer, name, version)
    )""",
    """CREATE TABLE IF NOT EXISTS marts.segment_membership_history (
        segment VARCHAR NOT NULL,
        customer_id BIGINT NOT NULL,
        valid_from DATE NOT NULL,
        valid_to DATE,
        version VARCHAR NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS meta.segment_runs (
        segment VARCHAR NOT NULL,
        as_of_date DATE NOT NULL,
        version VARCHAR NOT NULL,
        members BIGINT NOT NULL,
        entered BIGINT NOT NULL,
        exited BIGINT NOT NULL,
        run_id VARCHAR,
        computed_at TIMESTAMPTZ NOT NULL
    )""",
)


def prepare_connection(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Apply the project's session settings and register its SQL functions on ``con``."""
    con.execute("SET python_enable_replacements = false")
    con.execute("SET TimeZone = 'UTC'")
    from crm_assets.functions import register_functions

    register_functions(con)
    return con


def ensure_schemas(con: duckdb.DuckDBPyConnection) -> None:
    """Create every layer's schema and the framework's own tables if they do not exist yet."""
    for schema in SCHEMAS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for ddl in META_DDL:
        con.execute(ddl)


@contextmanager
def connect(path: Path | str, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse file (creating its folder), prepared; closes it on exit."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        prepare_connection(con)
        if not read_only:
            ensure_schemas(con)
        yield con
    finally:
        con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """``BEGIN`` ... ``COMMIT``, rolled back on any exception so readers never see half a change."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
