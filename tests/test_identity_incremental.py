"""Identity over two loads of real files: ingest -> staging -> identity, no Dagster in between.

Fixture tests/fixtures/identity_merge, by hand:

* load 1 (customers.csv): K1 (Мария Иванова, e-mail only) and K2 (same name and birth date, phone
  only) share no contact, so they are two people for now: K1 -> 1, K2 -> 2. K3 (Пётр Сидоров) -> 3.
* load 2 (customers/2025-02-01.csv): K4 carries K1's e-mail (other case) and K2's phone (other
  format), with the same name and birth date: it proves K1 and K2 are one person. The older id 1
  survives, 2 is redirected to 1. K5 is K3 again (ё/е, e-mail case) and joins 3. K6 is new and gets
  4 (ids are never reused: 2 is retired, not handed out again).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from crm_assets.catalog import load_catalog
from crm_assets.identity import resolve_customer_id, resolve_identity
from crm_assets.ingest.loader import load_source
from crm_assets.project import external_tables
from crm_assets.warehouse.contacts import check_contacts
from crm_assets.warehouse.models import materialize_model

PROJECT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "identity_merge"


@pytest.fixture
def con(prepared_warehouse):
    return prepared_warehouse


def _stage_and_resolve(con, input_dir: Path) -> None:
    catalog = load_catalog(PROJECT / "sql", external_tables())
    by_table = catalog.by_table()
    for table in ("stores", "customers"):
        load_source(con, table, input_dir)
    check_contacts(con, "test")
    for table in ("staging.stores", "staging.customers"):
        materialize_model(con, by_table[table], run_id="test")
    resolve_identity(con)
    materialize_model(con, by_table["core.customers"], run_id="test")
    materialize_model(con, by_table["core.customer_ids"], run_id="test")


def _identity(con) -> dict[str, int]:
    return dict(con.execute("SELECT source_customer_id, customer_id "
                            "FROM core.customer_identity").fetchall())


def test_second_load_merges_two_people_and_renumbers_nobody(con, tmp_path):
    inputs = tmp_path / "input"
    inputs.mkdir()
    shutil.copy(FIXTURE / "customers.csv", inputs / "customers.csv")
    _stage_and_resolve(con, inputs)
    assert _identity(con) == {"K1": 1, "K2": 2, "K3": 3}

    (inputs / "customers").mkdir()
    shutil.copy(FIXTURE / "customers" / "2025-02-01.csv", inputs / "customers" / "2025-02-01.csv")
    _stage_and_resolve(con, inputs)
    assert _identity(con) == {"K1": 1, "K2": 1, "K3": 3, "K4": 1, "K5": 3, "K6": 4}
    merges = con.execute("SELECT from_customer_id, to_customer_id, reason "
                         "FROM meta.customer_merges").fetchall()
    assert [(f, t) for f, t, _ in merges] == [(2, 1)]
    assert merges[0][2]  # the evidence is recorded
    assert resolve_customer_id(con, 2) == 1
    # an exported old id still finds its person
    assert con.execute("SELECT any_customer_id, customer_id FROM core.customer_ids "
                       "WHERE is_merged").fetchall() == [(2, 1)]
    # golden record of person 1: consent from the newest explicit choice (K4 opted out of e-mail)
    assert con.execute("SELECT email, phone, email_opt_in, sms_opt_in, source_record_count "
                       "FROM core.customers WHERE customer_id = 1").fetchone() == (
        "maria@mail.ru", "+79990001122", False, True, 3)
    assert con.execute("SELECT count(*) FROM core.customers").fetchone()[0] == 3

    # a third run with nothing new changes nothing
    _stage_and_resolve(con, inputs)
    assert _identity(con) == {"K1": 1, "K2": 1, "K3": 3, "K4": 1, "K5": 3, "K6": 4}
    assert con.execute("SELECT count(*) FROM meta.customer_merges").fetchone()[0] == 1
