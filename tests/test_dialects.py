"""Other dialects: "transpiled" must mean "runs", so the PostgreSQL output runs on a real server.

Every definition of the real ``sql/`` is transpiled to PostgreSQL and created as a view in a
database made for this test (and dropped after it), over empty tables typed like the catalogue's,
in dependency order, then queried. The definitions that do not run are an explicit list with their
reasons: a definition that stops running, or starts to, is a visible diff here.
"""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from crm_assets.cli.main import main
from crm_assets.project import load_project_catalog
from crm_assets.settings import load_settings
from crm_assets.tools.dialects import (
    TARGETS,
    check_on_postgres,
    compile_definition,
    format_compiled,
    postgres_type,
)

AS_OF = date(2025, 3, 12)
ZONE = "Europe/Moscow"

NOT_ON_POSTGRES = {
    # project functions: Python UDFs that exist only in the DuckDB warehouse
    "staging.stores": "calls crm_city()",
    "staging.customers": "calls crm_birth_date()",
    "staging.products": "calls crm_bool(), crm_decimal()",
    "staging.order_items": "calls crm_decimal()",
    "staging.orders": "calls crm_decimal()",
    "staging.interactions": "calls crm_instant()",
    "staging.sessions": "calls crm_instant()",
    "core.customer_predictions": "calls bgnbd_discounted_purchases(), bgnbd_expected_purchases()",
    # DuckDB-only SQL that sqlglot carries over as is
    "core.customers": 'syntax error at or near "customer_id"',  # SELECT * EXCEPT (...)
    "marts.segment_sizes_daily": "column day.generate_series does not exist",  # column alias
}
"""Definitions whose PostgreSQL transpilation does not run, with (a fragment of) the reason."""


def _connect(**kwargs):
    psycopg = pytest.importorskip("psycopg")
    errors = []
    for user in ("postgres", "root"):
        try:
            return psycopg.connect(host="127.0.0.1", port=5432, user=user, connect_timeout=5,
                                   autocommit=True, **kwargs), user
        except psycopg.OperationalError as err:
            errors.append(f"{user}: {str(err).strip()}")
    pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432: " + "; ".join(errors))


@pytest.fixture(scope="module")
def catalog():
    return load_project_catalog(load_settings())


@pytest.fixture
def scratch_database():
    """A database of its own, so parallel runs never share schemas; dropped afterwards."""
    admin, user = _connect(dbname="test")
    name = f"crm_dialects_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        con, _ = _connect(dbname=name)
        try:
            yield con
        finally:
            con.close()
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_postgres_output_of_every_portable_definition_runs(catalog, scratch_database):
    results = check_on_postgres(catalog, scratch_database, as_of=AS_OF, business_timezone=ZONE)
    assert set(results) == {d.table for d in catalog.definitions}
    failing = {table: reason for table, reason in results.items() if reason is not None}
    unexpected = {t: r for t, r in failing.items() if t not in NOT_ON_POSTGRES}
    now_running = sorted(set(NOT_ON_POSTGRES) - set(failing))
    assert not unexpected and not now_running, (
        f"does not run on PostgreSQL any more: {unexpected}; runs now: {now_running} "
        "(update NOT_ON_POSTGRES)")
    for table, fragment in NOT_ON_POSTGRES.items():
        assert fragment in failing[table], (table, failing[table])
    # the definitions this project is about run as they are
    for table in ("segments.croissant_buyers", "events.croissant_purchase", "core.order_items"):
        assert results[table] is None


def test_compile_binds_macros_and_reports_what_is_not_portable(catalog):
    segment = catalog.by_table()["segments.croissant_buyers"]
    for dialect in TARGETS:
        compiled = compile_definition(segment, dialect, as_of=AS_OF, business_timezone=ZONE)
        assert compiled.portable
        assert "as_of_end" not in compiled.sql.lower()
        # the end of 2025-03-12 in Moscow (UTC+3), written as an instant
        assert "2025-03-12 21:00:00+00:00" in compiled.sql

    orders = compile_definition(catalog.by_table()["staging.orders"], "postgres", as_of=AS_OF,
                                business_timezone=ZONE)
    assert not orders.portable and set(orders.non_portable) == {"crm_decimal", "crm_instant"}
    assert "'Europe/Moscow'" in orders.sql  # business_timezone() bound
    sessions = compile_definition(catalog.by_table()["staging.sessions"], "postgres",
                                  as_of=AS_OF, business_timezone=ZONE)
    assert any("try_cast" in w and "CAST" in w for w in sessions.warnings)
    spark = compile_definition(catalog.by_table()["staging.sessions"], "spark", as_of=AS_OF,
                               business_timezone=ZONE)
    assert "TRY_CAST(" in spark.sql and not any("try_cast" in w for w in spark.warnings)
    spark_orders = compile_definition(catalog.by_table()["staging.orders"], "spark",
                                      as_of=AS_OF, business_timezone=ZONE)
    assert any(w.startswith("timezone() is passed through") for w in spark_orders.warnings)


def test_postgres_types():
    assert postgres_type("VARCHAR") == "TEXT"
    assert postgres_type("HUGEINT") == "NUMERIC(38, 0)"
    assert postgres_type("TIMESTAMP WITH TIME ZONE") == "TIMESTAMPTZ"
    assert postgres_type("DECIMAL(12,2)") == "DECIMAL(12, 2)"


def test_crm_compile_cli(capsys):
    assert main(["compile", "croissant_buyers", "--dialect", "spark", "--as-of", "2025-03-12"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("-- segments.croissant_buyers (version ")
    assert "-- bound: as_of_end() = 2025-03-12 21:00:00+00:00" in out
    assert out.rstrip().endswith(";")


def test_format_names_what_is_not_portable(catalog):
    stores = compile_definition(catalog.by_table()["staging.stores"], "postgres", as_of=AS_OF,
                                business_timezone=ZONE)
    assert "-- NOT PORTABLE: crm_city() is a project function" in format_compiled(stores)
