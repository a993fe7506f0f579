"""The warehouse as a Dagster resource, and the pool every writer is in."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from crm_assets.defs.recovery import PROCESS_TAG, this_process
from crm_assets.warehouse.connection import prepare_connection
from crm_assets.warehouse.tables import ensure_framework_tables

POOL = "duckdb_writer"
"""Every asset that opens the warehouse for writing is in this pool; dagster.yaml limits it to 1."""


class Warehouse(DuckDBResource):
    """The DuckDB warehouse file, opened read-write with the project's session settings.

    ``DuckDBResource`` retries a lock held by another process (~100 s) before failing.
    """

    business_timezone: str = "Europe/Moscow"

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Record which process executes the run (for :mod:`crm_assets.defs.recovery`), when
        whoever launched it did not (a run launched from the UI or by the daemon)."""
        run = context.dagster_run
        if context.instance is not None and run is not None and PROCESS_TAG not in run.tags:
            context.instance.add_run_tags(run.run_id, {PROCESS_TAG: this_process()})

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        # DuckDBResource.get_connection does not close on an exception; an open handle would make
        # the next open of the same file in this process fail ("different configuration").
        with self.get_connection() as con:
            try:
                prepare_connection(con, self.business_timezone)
                ensure_framework_tables(con)
                yield con
            finally:
                con.close()
