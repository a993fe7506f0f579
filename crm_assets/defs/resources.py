"""The warehouse as a Dagster resource, and the pool every writer is in."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from crm_assets.defs.recovery import PROCESS_TAG, this_process
from crm_assets.warehouse.connection import busy_message, lock_holder, prepare_connection
from crm_assets.warehouse.tables import ensure_framework_tables

_gave_up: dict[str, float] = {}
"""When a step of this process last stopped waiting for a lock on each warehouse file."""

_in_run: set[str] = set()
"""The warehouse files of the runs this process is executing (set up, not yet torn down)."""

_kept: dict[str, duckdb.DuckDBPyConnection] = {}
"""Per warehouse file, a connection this process's run keeps open between its steps (see
:meth:`Warehouse.connect`)."""

POOL = "duckdb_writer"
"""Every asset that opens the warehouse for writing is in this pool; dagster.yaml limits it to 1."""


class Warehouse(DuckDBResource):
    """The DuckDB warehouse file, opened read-write with the project's session settings.

    A lock held by a process outside Dagster is waited for ``lock_wait_seconds``, with one log
    line naming the process, then the step fails saying who holds it and what to do.
    """

    business_timezone: str = "Europe/Moscow"
    earliest_plausible_date: str = "1990-01-01"
    """What ``earliest_plausible_date()`` returns (``[tool.crm] earliest_plausible_date``)."""
    plausible_days_after_load: int = 1
    """What ``latest_plausible(loaded_at)`` adds to the load instant."""
    currency_code: str = "RUB"
    currency_symbol: str = "₽"
    lifecycle: dict[str, int] = {}
    """Lifecycle thresholds in days (``[tool.crm.lifecycle]``); defaults for any not given."""
    lock_wait_seconds: float = 120
    """How long a step waits for a lock held outside Dagster before it fails."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Record which process executes the run (for :mod:`crm_assets.defs.recovery`), when
        whoever launched it did not (a run launched from the UI or by the daemon)."""
        run = context.dagster_run
        if context.instance is not None and run is not None and PROCESS_TAG not in run.tags:
            context.instance.add_run_tags(run.run_id, {PROCESS_TAG: this_process()})
        _in_run.add(self.database)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Close the connection kept between the run's steps, so the file is free once the run
        ends (Dagster calls this also when a step failed)."""
        _in_run.discard(self.database)
        kept = _kept.pop(self.database, None)
        if kept is not None:
            kept.close()

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A new connection to the warehouse, prepared; closed on exit.

        Within a run, the first step opens the file; a second connection to it stays open until the
        run ends (:meth:`teardown_after_execution`), so the next steps' connections join the same
        DuckDB database instance instead of opening the file again (reading its catalogue, ~30 ms
        at 1M persons) and checkpointing it on every close. Each step still has its own connection,
        its own transactions and its own session settings; the steps of a run are one at a time
        (in-process executor), so holding the file between them changes no one's wait.
        """
        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        # Opened here, not by DuckDBResource.get_connection: that one retries a lock ten times
        # over ~100 s without a word, and does not close on an exception (an open handle would
        # make the next open of the same file in this process fail, "different configuration").
        con = self._open()
        if self.database in _in_run and self.database != ":memory:" and self.database not in _kept:
            _kept[self.database] = self._open()  # joins the instance ``con`` opened
        try:
            prepare_connection(con, self.business_timezone,
                               date.fromisoformat(self.earliest_plausible_date),
                               self.plausible_days_after_load,
                               (self.currency_code, self.currency_symbol), self.lifecycle)
            ensure_framework_tables(con)
            yield con
        finally:
            con.close()

    def _open(self) -> duckdb.DuckDBPyConnection:
        """Open the file; while another process holds it, say who, wait, then fail saying so.

        Within a run's pool only one step writes at a time, so a lock here is held outside
        Dagster: a notebook, a BI tool or a script opened the warehouse file itself.
        """
        log = dg.get_dagster_logger()
        gave_up = _gave_up.get(self.database)
        waited_out = gave_up is not None and time.monotonic() - gave_up < self.lock_wait_seconds
        # the steps after one that waited in vain do not wait again, each in turn
        deadline = time.monotonic() + (0 if waited_out else self.lock_wait_seconds)
        said = waited_out
        while True:
            try:
                return duckdb.connect(self.database, read_only=False,
                                      config={"custom_user_agent": "dagster",
                                              **self.connection_config})
            except duckdb.IOException as err:
                holder = lock_holder(str(err))
                if holder is None or time.monotonic() >= deadline:
                    if holder is not None:
                        _gave_up[self.database] = time.monotonic()
                    raise dg.Failure(busy_message(self.database, str(err))) from err
                if not said:
                    log.warning(f"the warehouse {self.database} is held by {holder}, outside "
                                f"Dagster: waiting up to {self.lock_wait_seconds:g} s for it")
                    said = True
                time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
