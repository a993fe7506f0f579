"""Registering the project's SQL functions on a DuckDB connection, and the run's constants.

Segment definitions call ``as_of_date()`` instead of ``current_date`` so the same file answers "who
was in the segment on day D" for any D, and compare zoned timestamps with ``as_of_end()`` (the
instant the as-of day ends in the business time zone), never with a naive date whose meaning would
depend on the session's ``TimeZone``. All three are ``TEMP`` macros: they never land in the
warehouse file.
"""

from __future__ import annotations

import hashlib
from datetime import date
from functools import cache
from importlib.metadata import version
from pathlib import Path

import duckdb

from crm_assets.clv.functions import register_clv_functions
from crm_assets.functions.contacts import register_contact_udfs
from crm_assets.functions.macros import register_cleaning_macros
from crm_assets.quoting import literal

CLEANING_LIBRARIES = ("email-validator", "phonenumbers")
"""The libraries whose answers the cleaning functions return."""


@cache
def cleaning_version() -> str:
    """The version of the cleaning rules: their code (this folder) and the libraries' versions.

    A table judged row by row and kept across nights (staging, the checked contacts) records it:
    answers given by other rules (an edited macro, a new ``phonenumbers`` with this year's
    numbering plans) make the next run judge every row again instead of mixing the two.
    """
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for library in CLEANING_LIBRARIES:
        digest.update(f"{library}=={version(library)}\0".encode())
    return digest.hexdigest()[:12]


def set_as_of_date(con: duckdb.DuckDBPyConnection, as_of: date) -> None:
    """Make ``as_of_date()`` return ``as_of`` on this connection."""
    con.execute(f"CREATE OR REPLACE TEMP MACRO as_of_date() AS DATE {literal(as_of.isoformat())}")


DEFAULT_EARLIEST_PLAUSIBLE = date(1990, 1, 1)
"""Before this day an order or a registration is a placeholder (1900-01-01, the 1970 epoch), not
an event: ``[tool.crm] earliest_plausible_date`` moves it for older data."""


DEFAULT_DAYS_AFTER_LOAD = 1
"""How long after its file was loaded a date may be (clocks and time zones): later, it is a typo."""


def set_earliest_plausible_date(con: duckdb.DuckDBPyConnection, day: date,
                                days_after_load: int = DEFAULT_DAYS_AFTER_LOAD) -> None:
    """Make ``earliest_plausible_date()`` return ``day`` and ``latest_plausible(loaded_at)`` the
    load instant plus ``days_after_load`` days on this connection."""
    con.execute("CREATE OR REPLACE TEMP MACRO earliest_plausible_date() AS "
                f"DATE {literal(day.isoformat())}")
    con.execute("CREATE OR REPLACE TEMP MACRO latest_plausible(loaded_at) AS "
                f"loaded_at + INTERVAL {int(days_after_load)} DAY")


def set_currency(con: duckdb.DuckDBPyConnection, code: str, symbol: str) -> None:
    """Make ``currency_code()`` and ``currency_symbol()`` return the business's currency."""
    con.execute(f"CREATE OR REPLACE TEMP MACRO currency_code() AS {literal(code)}")
    con.execute(f"CREATE OR REPLACE TEMP MACRO currency_symbol() AS {literal(symbol)}")


DEFAULT_LIFECYCLE: dict[str, int] = {"new_days": 30, "active_days": 60, "lapsed_days": 180}
"""The lifecycle thresholds (``[tool.crm.lifecycle]``): new while the first order is younger than
``new_days``; lapsed once nothing was bought for more than ``lapsed_days``; active while the last
order is within ``active_days`` (or three of the person's usual gaps); at risk in between."""


def set_lifecycle(con: duckdb.DuckDBPyConnection, thresholds: dict[str, int]) -> None:
    """Make ``lifecycle_new_days()``, ``lifecycle_active_days()`` and ``lifecycle_lapsed_days()``
    return the configured thresholds (the defaults for any not given)."""
    values = {**DEFAULT_LIFECYCLE, **thresholds}
    for key, days in values.items():
        con.execute(f"CREATE OR REPLACE TEMP MACRO lifecycle_{key}() AS {int(days)}")


def configuration_values(earliest_plausible: date = DEFAULT_EARLIEST_PLAUSIBLE,
                         currency: tuple[str, str] = ("RUB", "₽"),
                         lifecycle: dict[str, int] | None = None) -> dict[str, object]:
    """What each configuration macro returns (for engines that bind them as literals)."""
    return {"earliest_plausible_date": earliest_plausible, "currency_code": currency[0],
            "currency_symbol": currency[1],
            **{f"lifecycle_{k}": int(v) for k, v in {**DEFAULT_LIFECYCLE,
                                                      **(lifecycle or {})}.items()}}


def set_business_timezone(con: duckdb.DuckDBPyConnection, zone: str) -> None:
    """Make ``business_timezone()`` return ``zone`` (an IANA name) on this connection."""
    if not zone.replace("/", "").replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"not a time zone name: {zone!r}")
    con.execute(f"CREATE OR REPLACE TEMP MACRO business_timezone() AS {literal(zone)}")
    con.execute("CREATE OR REPLACE TEMP MACRO as_of_end() AS "
                "timezone(business_timezone(), CAST(as_of_date() + INTERVAL 1 DAY AS TIMESTAMP))")


def register_cleaning_functions(con: duckdb.DuckDBPyConnection, *, udfs: bool = True) -> None:
    """The ``crm_*`` cleaning functions on ``con`` (idempotent; ~55 ms on a new database), and
    the Python UDFs that score the predictive models (:mod:`crm_assets.clv.functions`).

    Args:
        udfs: ``False`` when the caller knows the database instance has the Python UDFs (it
            skips the look-up in ``duckdb_functions()``); the macros are per connection and
            always (re)created.
    """
    if udfs:
        register_contact_udfs(con)
        register_clv_functions(con)
    register_cleaning_macros(con)


def register_functions(con: duckdb.DuckDBPyConnection, as_of: date | None = None,
                       zone: str = "Europe/Moscow", *, udfs: bool = True,
                       cleaning: bool = True) -> None:
    """Register the project's functions on ``con`` (idempotent): the run's constants, and the
    cleaning functions unless ``cleaning`` is false (what only a query calling them needs)."""
    if cleaning:
        register_cleaning_functions(con, udfs=udfs)
    set_as_of_date(con, as_of or date(1970, 1, 1))
    set_business_timezone(con, zone)
    set_earliest_plausible_date(con, DEFAULT_EARLIEST_PLAUSIBLE)
    defaults = configuration_values()
    set_currency(con, str(defaults["currency_code"]), str(defaults["currency_symbol"]))
    set_lifecycle(con, DEFAULT_LIFECYCLE)
