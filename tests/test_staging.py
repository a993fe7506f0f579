"""Staging on a hand-written fixture with bad rows of every kind, and the checks that guard it.

``tests/fixtures/staging`` (UTF-8, ``,``), what each bad row is and what staging must make of it,
worked out by hand below. Times: Europe/Moscow is UTC+3, Asia/Novosibirsk UTC+7 (no DST since
2014); a store-local time is read in the store's zone, an unknown store's in the business zone.

The staging models are materialised by the factory's own function, without Dagster (fast); one
test runs a real Dagster job to show a failing blocking check stops what is downstream.
"""

import json
import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from conftest import FIXTURES, PROJECT_DIR, TINY, make_project

from crm_assets.defs.checks import ACCOUNTING_CHECK, accounting_result
from crm_assets.defs.resources import Warehouse
from crm_assets.ingest.contracts import SOURCES
from crm_assets.ingest.loader import load_all_sources, load_source_file
from crm_assets.project import load_project_catalog
from crm_assets.settings import load_settings
from crm_assets.warehouse.accounting import account_rows
from crm_assets.warehouse.models import stage_all
from crm_assets.warehouse.staging import materialize_staging

STAGING = FIXTURES / "staging"
TABLES = ("stores", "products", "customers", "orders", "order_items", "interactions", "sessions")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def stage_folder(folder: Path, warehouse: Path) -> None:
    """Load every file of ``folder`` into raw and build every staging model, as a run would."""
    settings = load_settings(project_dir=PROJECT_DIR, input_dir=folder, warehouse_path=warehouse,
                             landing_dir=None)
    catalog = load_project_catalog(settings)
    with Warehouse(database=str(warehouse), business_timezone="Europe/Moscow").connect() as con:
        load_all_sources(con, folder)
        stage_all(con, catalog.definitions, run_id="test")


def query(warehouse: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> Path:
    warehouse = tmp_path_factory.mktemp("staging") / "crm.duckdb"
    stage_folder(STAGING, warehouse)
    return warehouse


def test_stores(staged):
    assert query(staged, "SELECT store_id, store_name, city, timezone, opened_on, value_issues "
                         "FROM staging.stores ORDER BY 1") == [
        ("S1", "Пекарня на Тверской", "Москва", "Europe/Moscow", date(2020, 1, 1), None),
        ("S2", "Пекарня на Красном", "Новосибирск", "Asia/Novosibirsk", date(2021, 5, 1), None),
        ("S3", "Пекарня на Невском", "Санкт-Петербург", "Europe/Moscow", None,
         "unparseable opened_on (не знаю)"),
    ]


def test_of_several_versions_of_a_key_the_latest_valid_one_wins(tmp_path):
    """The factory's rule for a staging model that outputs ``_problem``, keyed on its grain."""
    header = "store_id,store_name,city,timezone,opened_on\n"
    june = tmp_path / "stores.csv"
    june.write_text(header + "S1,Старая,Москва,Europe/Moscow,\n"
                             "S2,Верная,Москва,Europe/Moscow,\n"
                             "S3,Первая строка,Москва,Europe/Moscow,\n"
                             "S3,Вторая строка,Москва,Europe/Moscow,\n"
                             "S5,Та же,Москва,Europe/Moscow,\n", encoding="utf-8")
    july = tmp_path / "stores_july.csv"
    july.write_text(header + "S1,Новая,Новосибирск,Asia/Novosibirsk,\n"
                             "S2,Сломанная,Москва,MSK,\n"
                             "S5,Та же,Москва,Europe/Moscow,\n", encoding="utf-8")
    stores = load_project_catalog(load_settings(project_dir=PROJECT_DIR)).by_table()[
        "staging.stores"]
    warehouse = tmp_path / "crm.duckdb"
    with Warehouse(database=str(warehouse)).connect() as con:
        load_source_file(con, SOURCES["stores"], june, loaded_at=datetime(2026, 6, 1, tzinfo=UTC))
        load_source_file(con, SOURCES["stores"], july, loaded_at=datetime(2026, 7, 1, tzinfo=UTC))
        staged = materialize_staging(con, stores, run_id="test")
    assert (staged.rows, staged.rejected, staged.conflicting) == (4, 4, 2)  # S1, S3 conflict
    assert query(warehouse, "SELECT store_id, store_name, timezone FROM staging.stores "
                            "ORDER BY 1") == [
        ("S1", "Новая", "Asia/Novosibirsk"),  # the later load wins
        ("S2", "Верная", "Europe/Moscow"),  # a valid older version beats an invalid newer one
        ("S3", "Вторая строка", "Europe/Moscow"),  # in one file, the last row wins
        ("S5", "Та же", "Europe/Moscow"),
    ]
    assert query(warehouse, "SELECT _source_file, _row_number, reason FROM staging.rejects "
                            "ORDER BY 1, 2") == [
        # a version with other values says so (a conflict to look at, for facts); a repeat not
        ("stores.csv", 1, "superseded: store_id S1 again in stores_july.csv row 1 with other "
                          "values"),
        ("stores.csv", 3, "superseded: store_id S3 again in stores.csv row 4 with other values"),
        ("stores.csv", 5, "superseded: store_id S5 again in stores_july.csv row 3"),
        ("stores_july.csv", 2, "unknown time zone: MSK"),
    ]


def test_products(staged):
    assert query(staged, "SELECT product_id, product_name, category, unit_price, is_active, "
                         "value_issues FROM staging.products ORDER BY 1") == [
        # row 5 is a later version of P1 (row 1): it wins
        ("P1", "Круассан классический", "croissant", Decimal("125.00"), True, None),
        ("P2", "Капучино", "coffee", Decimal("180.00"), True, None),
        ("P3", "Багет", "bread", None, True,
         "unparseable unit_price (abc); unrecognised is_active (может быть), taken as true"),
    ]


def test_customers(staged):
    rows = query(staged, """
        SELECT source_customer_id, first_name, last_name, name_key, email, email_key, phone,
               gender, birth_date, city, home_store_id, registered_at, email_opt_in, sms_opt_in,
               push_opt_in, updated_at, value_issues, _row_number
        FROM staging.customers ORDER BY 1""")
    assert rows == [
        # row 7 is a later version of C1 (row 1, whose 'да'/'1'/'нет' opt-ins it replaces)
        ("C1", "Иван", "Петров", "иван петров", "ivan@yandex.ru", "ivan@yandex.ru",
         "+79161234567", "male", date(1990, 3, 15), "Санкт-Петербург", "S1",
         utc(2025, 1, 5, 7), None, None, None, utc(2025, 2, 1, 6), None, 7),
        # placeholders and an impossible date nulled, with reasons; dd.mm.yyyy hh:mm read in
        # the Novosibirsk store's zone
        ("C2", "Анна", "Смирнова", "анна смирнова", None, None, None, "female", None,
         "Новосибирск", "S2", utc(2025, 1, 10, 5), True, True, True, utc(2025, 1, 10, 5),
         "placeholder email (test@test.ru); placeholder phone (0000000000); "
         "impossible birth date (31.02.1990)", 2),
        # dd/mm/yy birth date; unreadable values nulled; 1970-01-01 is a placeholder
        ("C3", "Олег", "Сидоров", "олег сидоров", None, None, "+79031112233", None,
         date(1985, 7, 1), "Москва", "S1", None, None, False, False, None,
         "invalid email: The part after the @-sign is not valid. It should have a period. "
         "(oleg@mail); unrecognised gender (x); unparseable registered_at (вчера); "
         "placeholder updated_at (1970-01-01 00:00:00); unrecognised email_opt_in (maybe)", 3),
        # ё folded in the name key; a future birth date is impossible; a time with an offset is
        # taken as is (the unknown store S9 does not matter then)
        ("C4", "Ёлка", "Зелёная", "елка зеленая", "elka@mail.ru", "elka@mail.ru",
         "+79031112233", "female", None, "Санкт-Петербург", "S9", utc(2025, 3, 1, 5), None,
         None, None, None, "impossible birth date (2030-01-01)", 5),
    ]


def test_orders(staged):
    assert query(staged, """
        SELECT order_id, source_customer_id, store_id, ordered_at, ordered_at_local, channel,
               status, total_amount FROM staging.orders ORDER BY ordered_at""") == [
        # 00:30 in Moscow is 21:30 UTC the day before; "1 200,50" is 1200.50
        ("O1", "C1", "S1", utc(2025, 3, 9, 21, 30), datetime(2025, 3, 10, 0, 30), "delivery",
         "completed", Decimal("1200.50")),
        # a guest; dd.mm.yyyy hh:mm at the Novosibirsk store (UTC+7)
        ("O2", None, "S2", utc(2025, 3, 10, 18), datetime(2025, 3, 11, 1), "in_store",
         "completed", Decimal("120.00")),
        # ISO with an offset; "10,5" is 10.50
        ("O10", "C1", "S1", utc(2025, 3, 12, 6), datetime(2025, 3, 12, 9), "app", "refunded",
         Decimal("10.50")),
    ]


def test_order_items_interactions_sessions(staged):
    assert query(staged, "SELECT order_id, line_number, product_id, quantity, unit_price, "
                         "_row_number FROM staging.order_items ORDER BY 1, 2") == [
        ("O1", 1, "P1", 3, Decimal("120.00"), 8),
        ("O1", 2, "P2", 1, Decimal("180.00"), 2),
        ("O2", 1, "P2", 2, Decimal("180.00"), 7),
    ]
    assert query(staged, "SELECT interaction_id, source_customer_id, channel, interaction_type, "
                         "campaign_id, occurred_at FROM staging.interactions ORDER BY 1") == [
        ("I1", "C1", "email", "opened", "CMP1", utc(2025, 3, 10, 7)),
        # no offset: read in the business time zone
        ("I2", "C1", "sms", "sent", "CMP2", utc(2025, 3, 10, 7)),
    ]
    assert query(staged, "SELECT session_id, source_customer_id, device, started_at, "
                         "duration_seconds, page_views, utm_source, value_issues "
                         "FROM staging.sessions ORDER BY 1") == [
        ("W1", "C1", "ios", utc(2025, 3, 10, 7), 120, 5, "google", None),
        ("W2", None, "web", utc(2025, 3, 10, 8), None, None, None,
         "unusable duration_seconds (-3); unusable page_views (x)"),
    ]


def test_rejects_carry_reason_file_row_and_raw_row(staged):
    assert query(staged, "SELECT table_name, _source_file, _row_number, reason "
                         "FROM staging.rejects ORDER BY table_name, _row_number") == [
        ("customers", "customers.csv", 1,
         "superseded: source_customer_id C1 again in customers.csv row 7 with other values"),
        ("customers", "customers.csv", 4, "missing customer_id"),
        ("customers", "customers.csv", 6,
         "malformed record: record 6: expected 14 fields, found 4: "
         "C5,Обрезанная,Строка,c5@mail.ru"),
        ("interactions", "interactions.csv", 3, "unknown customer: C9"),
        ("interactions", "interactions.csv", 4, "unknown channel: pigeon"),
        ("interactions", "interactions.csv", 5, "unknown interaction_type: bounced"),
        ("interactions", "interactions.csv", 6, "missing occurred_at"),
        ("order_items", "order_items.csv", 1,
         "superseded: order_id O1, line_number 1 again in order_items.csv row 8 with other "
         "values"),
        ("order_items", "order_items.csv", 3, "unknown product: P99"),
        ("order_items", "order_items.csv", 4, "quantity must be a positive integer: 0"),
        ("order_items", "order_items.csv", 5, "missing or unparseable line_number: x"),
        ("order_items", "order_items.csv", 6, "negative unit_price: -5"),
        ("orders", "orders.csv", 3, "unknown customer: C9"),
        ("orders", "orders.csv", 4, "negative total_amount: -50.00"),
        ("orders", "orders.csv", 5, "unparseable total_amount: abc"),
        ("orders", "orders.csv", 6, "unparseable ordered_at: когда-то"),
        ("orders", "orders.csv", 7, "unknown store: S4"),  # S4 itself is rejected
        ("orders", "orders.csv", 8, "unknown status: оплачен"),
        ("orders", "orders.csv", 9, "missing order_id"),
        ("orders", "orders.csv", 10,
         "malformed record: record 10: expected 7 fields, found 8: "
         "O9,C2,S1,2025-03-12 10:00:00,in_store,completed,10.00,лишнее"),
        # the file is cut inside a quoted field: that record is rejected, the rest loads
        ("orders", "orders.csv", 12,
         "malformed record: record 12: expected 7 fields, found 6: "
         "O11,C1,S1,2025-03-13 09:00:00,app,\"completed; "
         "the file ends inside a quoted field (unterminated quote; truncated file?)"),
        ("products", "products.csv", 1,
         "superseded: product_id P1 again in products.csv row 5 with other values"),
        ("products", "products.csv", 4, "missing category"),
        ("sessions", "sessions.csv", 3, "unknown customer: C9"),
        ("sessions", "sessions.csv", 4, "unparseable started_at: yesterday"),
        ("stores", "stores.csv", 4, "unknown time zone: MSK"),
        ("stores", "stores.csv", 5, "missing store_id"),
    ]
    # every reject keeps the raw row as the file said it, with its lineage
    raw = {(t, n): json.loads(r) for t, n, r in query(
        staged, "SELECT table_name, _row_number, raw_row FROM staging.rejects")}
    assert raw[("orders", 4)]["total_amount"] == "-50.00"
    assert raw[("orders", 4)]["_source_file"] == "orders.csv"
    assert raw[("stores", 4)]["timezone"] == "MSK"
    assert raw[("customers", 6)]["_parse_error"].startswith("record 6: expected 14 fields")
    assert query(staged, "SELECT count(*) FROM staging.rejects WHERE raw_row IS NULL "
                         "OR _file_sha256 IS NULL OR _source_file IS NULL") == [(0,)]


def test_every_raw_row_is_accounted_for(staged):
    con = duckdb.connect(str(staged), read_only=True)
    try:
        counts = {t: account_rows(con, t) for t in TABLES}
    finally:
        con.close()
    assert {t: (a.raw_rows, a.staged_rows, a.rejected_rows, a.ok) for t, a in counts.items()} == {
        "stores": (5, 3, 2, True), "products": (5, 3, 2, True),
        "customers": (7, 4, 3, True), "orders": (12, 3, 9, True),
        "order_items": (8, 3, 5, True), "interactions": (6, 2, 4, True),
        "sessions": (4, 2, 2, True)}


def test_accounting_catches_a_lost_a_doubled_and_a_foreign_row(staged, tmp_path):
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(staged, copy)
    con = duckdb.connect(str(copy))
    try:
        con.execute("DELETE FROM staging.orders WHERE order_id = 'O2'")  # lost
        con.execute("INSERT INTO staging.rejects SELECT * REPLACE ('dup' AS reason) "
                    "FROM staging.rejects WHERE table_name = 'orders' AND _row_number = 3")
        con.execute("INSERT INTO staging.orders SELECT * REPLACE (999 AS _row_number) "
                    "FROM staging.orders WHERE order_id = 'O1'")  # not from raw
        result = accounting_result(con, "orders")
    finally:
        con.close()
    assert not result.passed
    assert result.check_name == ACCOUNTING_CHECK
    assert result.severity == dg.AssetCheckSeverity.ERROR
    meta = {k: v.value for k, v in result.metadata.items()}
    assert (meta["raw_rows"], meta["missing_rows"], meta["duplicated_rows"],
            meta["unknown_rows"]) == (12, 1, 1, 1)
    assert meta["examples"] == ["orders.csv#2: missing", "orders.csv#3: appears 2 times",
                                "sha256 " + meta["examples"][2][7:19] + "#999: not in raw"]


def test_failing_blocking_check_stops_downstream(tmp_path):
    """An order with a channel outside the accepted values: staging.orders is built, its
    blocking check fails, and core.orders (downstream) is not built in that run."""
    inputs = tmp_path / "fixture"
    shutil.copytree(TINY, inputs)
    with (inputs / "orders.csv").open("a", encoding="utf-8") as fh:
        fh.write("O8,C1,S1,2025-03-12 11:00:00,telepathy,completed,10.00\n")
    project = make_project(tmp_path, input_dir=inputs)
    defs = project.definitions()
    upstream = ("stores", "customers", "orders")  # what core.orders needs, to keep it short
    wanted = [dg.AssetKey([layer, t]) for layer in ("raw", "staging") for t in upstream] + [
        dg.AssetKey(["core", "customer_identity"]), dg.AssetKey(["core", "orders"])]
    result = defs.resolve_job_def("build_all").execute_in_process(
        instance=project.instance, asset_selection=wanted, raise_on_error=False)
    assert not result.success
    built = {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey(["staging", "orders"]) in built
    assert dg.AssetKey(["core", "orders"]) not in built
    checks = {(e.asset_key.path[-1], e.check_name): e.passed
              for e in result.get_asset_check_evaluations()}
    assert checks[("orders", "accepted_values_channel")] is False
    assert checks[("orders", ACCOUNTING_CHECK)] is True
    failure = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failure] == ["staging__orders"]
    assert "accepted_values_channel" in failure[0].step_failure_data.error.message
    assert project.instance.get_latest_materialization_event(
        dg.AssetKey(["core", "orders"])) is None
