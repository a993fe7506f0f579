"""Models: ``CREATE OR REPLACE TABLE <layer>.<name> AS <query>``, or merged when they can be.

:func:`materialize_model` chooses how: staging models keeping versions and models declaring
``incremental`` take in what changed (:mod:`~crm_assets.warehouse.staging`,
:mod:`~crm_assets.warehouse.incremental`); the others are computed whole. A staging model that
outputs ``_reject_reason`` decides on its own which rows are rejected.

Every function here is a plain function of a DuckDB connection: Dagster assets, the CLI and tests
call them alike.
"""

from __future__ import annotations

import duckdb

from crm_assets.catalog import Definition
from crm_assets.catalog.data_tests import TestDeclaration
from crm_assets.quoting import identifier
from crm_assets.warehouse.connection import table_exists, transaction, use_functions_of
from crm_assets.warehouse.contacts import check_contacts
from crm_assets.warehouse.incremental import materialize_incremental
from crm_assets.warehouse.staging import materialize_staging
from crm_assets.warehouse.state import (
    built_with,
    inputs_of,
    next_batch,
    record_version,
    set_built_version,
)
from crm_assets.warehouse.tables import REJECTS


def failing_rows(con: duckdb.DuckDBPyConnection, test: TestDeclaration, relation: str,
                 written: str | None = None) -> int:
    """How many rows of ``relation`` (those ``written`` selects, when given) fail ``test``."""
    return int(con.execute(test.failing_count_sql(relation, written)).fetchone()[0])


def materialize_model(con: duckdb.DuckDBPyConnection, d: Definition, run_id: str, *,
                      full_refresh: bool = False) -> int:
    """Materialise a model; the rows its table holds after.

    A staging model keeping versions is judged incrementally
    (:func:`crm_assets.warehouse.staging.materialize_staging`), a model with ``incremental`` in its
    header merged by key (:func:`crm_assets.warehouse.incremental.materialize_incremental`); both
    compute everything with ``full_refresh``. Any other model replaces its table by the query's
    result, unless it was computed from the very inputs there are now (not with
    ``full_refresh``; :func:`~crm_assets.warehouse.state.unchanged_since_built`); a staging
    model outputting ``_reject_reason`` sends the rows with a reason to ``staging.rejects``.
    """
    if d.keeps_versions:
        return materialize_staging(con, d, run_id, full_refresh=full_refresh).rows
    if d.incremental is not None:
        return materialize_incremental(con, d, run_id, full_refresh=full_refresh).rows
    use_functions_of(con, d)
    columns = [n for n, _ in d.schema]
    if d.splits_rejects:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _staged AS {d.body}\n")
        kept = ", ".join(identifier(n) for n, _ in d.published_schema)
        raw_table = f"raw.{d.name}"
        has_raw = table_exists(con, raw_table)
        # The raw row by a join, not a correlated subquery: DuckDB then builds the hash table on
        # the few rejects and turns only matched raw rows into JSON (5x faster at 8M orders).
        raw_join = ""
        if has_raw and {"_file_sha256", "_row_number"} <= set(columns):
            raw_json = "to_json(r)"
            raw_join = (f" LEFT JOIN {raw_table} r ON r._file_sha256 = s._file_sha256 "
                        "AND r._row_number = s._row_number")
        else:
            raw_json = "to_json(s)"
        file_col = "s._source_file" if "_source_file" in columns else "NULL"
        sha_col = "s._file_sha256" if "_file_sha256" in columns else "NULL"
        row_col = "s._row_number" if "_row_number" in columns else "NULL"
        with transaction(con):
            con.execute(f"CREATE OR REPLACE TABLE {d.table} AS SELECT {kept} FROM _staged "
                        "WHERE _reject_reason IS NULL")
            con.execute(f"DELETE FROM {REJECTS.name} WHERE table_name = ?", [d.name])
            con.execute(
                f"INSERT INTO {REJECTS.name} (table_name, _source_file, _file_sha256, "
                "_row_number, reason, raw_row, rejected_at) "
                f"SELECT ?, {file_col}, {sha_col}, {row_col}, s._reject_reason, {raw_json}, now() "
                f"FROM _staged s{raw_join} WHERE s._reject_reason IS NOT NULL", [d.name])
            record_version(con, d, run_id)
        con.execute("DROP TABLE _staged")
        return con.execute(f"SELECT count(*) FROM {d.table}").fetchone()[0]
    inputs = inputs_of(con, d)
    if full_refresh or not built_with(con, d, inputs):
        batch = next_batch(con)
        with transaction(con):
            con.execute(f"CREATE OR REPLACE TABLE {d.table} AS {d.body}\n")
            record_version(con, d, run_id)
            set_built_version(con, d.table, d.version, batch, d.grain, inputs=inputs)
    return con.execute(f"SELECT count(*) FROM {d.table}").fetchone()[0]


def stage_all(con: duckdb.DuckDBPyConnection, definitions: list[Definition], run_id: str, *,
              full_refresh: bool = False) -> dict[str, int]:
    """Every staging definition of ``definitions`` (in dependency order), the contact checks
    first, as a run's staging steps do; rows per table. For scripts and tests: runs go through
    Dagster."""
    check_contacts(con, run_id, full_refresh=full_refresh)
    return {d.table: materialize_model(con, d, run_id, full_refresh=full_refresh)
            for d in definitions if d.layer == "staging"}
