"""Opening the DuckDB warehouse the same way everywhere.

Every connection the project opens goes through :func:`prepare_connection`, so that an unknown table
name can never resolve to a Python variable (``python_enable_replacements``), time never depends on
the caller's machine (``TimeZone`` is the business time zone where one is given, so date casts and
interval arithmetic on instants mean business days; UTC otherwise), and the project's SQL
functions exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb

from crm_assets.catalog.definition import Definition
from crm_assets.clv.functions import register_clv_functions
from crm_assets.functions.registry import (
    register_cleaning_functions,
    register_functions,
    set_business_timezone,
    set_currency,
    set_earliest_plausible_date,
    set_lifecycle,
)
from crm_assets.quoting import literal
from crm_assets.warehouse.tables import ensure_framework_tables


def prepare_connection(con: duckdb.DuckDBPyConnection, business_timezone: str | None = None,
                       earliest_plausible: date | None = None, days_after_load: int = 1,
                       currency: tuple[str, str] | None = None,
                       lifecycle: dict[str, int] | None = None) -> duckdb.DuckDBPyConnection:
    """Apply the project's session settings and the run's constants (``as_of_date()``,
    ``business_timezone()``, ``earliest_plausible_date()``) on ``con``.

    The cleaning functions (``crm_*``) cost ~55 ms to register on a new database, so only a
    materialisation whose query calls them registers them (:func:`use_functions_of`).
    """
    con.execute("SET python_enable_replacements = false")
    con.execute("SET TimeZone = 'UTC'")
    register_functions(con, cleaning=False)
    if business_timezone:
        set_business_timezone(con, business_timezone)
        # date casts, date_trunc and interval arithmetic on instants mean business days
        con.execute(f"SET TimeZone = {literal(business_timezone)}")
    if earliest_plausible:
        set_earliest_plausible_date(con, earliest_plausible, days_after_load)
    if currency:
        set_currency(con, *currency)
    if lifecycle:
        set_lifecycle(con, lifecycle)
    return con


def use_functions_of(con: duckdb.DuckDBPyConnection, d: Definition) -> None:
    """Register on ``con`` the project functions ``d``'s query calls that a connection lacks."""
    if d.calls_cleaning:
        register_cleaning_functions(con)
    elif d.calls_clv:
        register_clv_functions(con)


class WarehouseBusy(RuntimeError):
    """The warehouse file cannot be opened: another process holds it (DuckDB allows one writer
    process or several readers, and refuses readers while a writer holds the file), or, read-only,
    it does not exist yet."""


_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


def lock_holder(error: str) -> str | None:
    """The process holding the warehouse's lock, from DuckDB's error: its pid and command line
    (``/proc``), or the program DuckDB names; None if the error is not about a lock."""
    found = _LOCK_HOLDER.search(error)
    if found is None:
        return None
    pid = found["pid"]
    try:
        command = " ".join(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                           .decode(errors="replace").split())
    except OSError:
        command = ""
    command = command or found["program"]
    return f"process {pid} ({command[:160]}{'...' if len(command) > 160 else ''})"


def busy_message(path: Path | str, error: str) -> str:
    """What to tell someone who cannot open the warehouse: who holds it and what to do."""
    holder = lock_holder(error)
    if holder is None:
        return f"cannot open {path}: {error.splitlines()[0]}"
    return (f"cannot open {path}: it is held by {holder}. DuckDB lets one process write a file, "
            "and none read it meanwhile. Wait for that process to finish, or stop it if it "
            "should not hold the warehouse; BI tools and notebooks read the BI snapshot "
            "(serving/crm.duckdb), which never locks the warehouse.")


@contextmanager
def connect(path: Path | str, read_only: bool = False, business_timezone: str | None = None
            ) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse file (creating its folder and the framework's tables), prepared.

    Closes it on exit, also after an exception (an open handle would make the next open of the
    same file in this process fail with "different configuration").

    Raises:
        WarehouseBusy: DuckDB could not open the file (another process holds it).
    """
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as err:
        raise WarehouseBusy(busy_message(path, str(err))) from err
    try:
        prepare_connection(con, business_timezone)
        if not read_only:
            ensure_framework_tables(con)
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


def rows_by_rowid(table: str, matching: str, columns: str = "*") -> str:
    """``SELECT columns FROM table`` for the rows whose ``rowid`` the query ``matching`` returns
    (it reads ``table`` aliased, say, ``t`` and selects ``t.rowid``).

    Picking a few rows of a big table by a join reads every column of every row; finding their
    rowids reads only the join's columns, and DuckDB then fetches just those rows: 2-3x faster for
    thousands of rows out of millions. Rowids are read and used within one statement, so they
    always point at the same rows; selected as a column (``rowid AS _crm_rowid``) into a
    temporary table, they may be used again only within the same transaction (a checkpoint after
    it may move rows).
    """
    return f"SELECT {columns} FROM {table} WHERE rowid IN ({matching})"


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the table or view ``schema.table`` exists in ``con``'s current database.

    Asked of the binder (``con.table``: ~0.2 ms, and a miss leaves a transaction usable), not of
    ``duckdb_tables()``, which lists every table of every database (~2 ms; a night asks ~100
    times)."""
    try:
        con.table(name)
    except duckdb.CatalogException:
        return False
    return True
