"""Bring your own data: a real export reduced to the contract's minimum, from the late 1990s.

Two files: customers with only ``customer_id``, orders without ``status``, ``store_id`` or
``channel``. Every order must be staged (no hidden date rule, no status filter silently emptying
everything) and the segments and events must hold what a hand count gives.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

import duckdb
from conftest import FIXTURES, PROJECT_DIR, make_project

AS_OF = date(1998, 6, 30)


def test_two_minimal_files_from_the_1990s_build_non_empty_segments_and_events(tmp_path):
    project = make_project(tmp_path, FIXTURES / "byo_1990s", partition_start=date(1997, 1, 1),
                           earliest_plausible_date=date(1990, 1, 1))
    result = project.build(as_of=AS_OF, first_day=date(1998, 6, 1), last_day=AS_OF)
    assert result.success, result.error
    assert project.scalar("SELECT count(*) FROM staging.rejects") == 0
    # the lifecycle stages partition the customers: one stage each, every customer
    assert project.query("SELECT count(*), count(DISTINCT customer_id), count(lifecycle_stage) "
                         "FROM core.customer_features") == [(4, 4, 4)]
    assert project.scalar("SELECT count(*) FROM core.customers") == 4
    # no status column: every order is a completed purchase
    assert project.query("SELECT order_id, status, total_amount FROM core.orders ORDER BY 1") == [
        ("A1", "completed", 10), ("A2", "completed", 20), ("A3", "completed", 30),
        ("A4", "completed", 5), ("A5", "completed", 8), ("A6", "completed", 8)]

    def members(segment: str) -> list[str]:
        return [r[0] for r in project.query(
            f"SELECT i.source_customer_id FROM segments.{segment} s JOIN core.customer_identity i "
            "USING (customer_id) ORDER BY 1")]

    # K2's first order is on 1998-06-20, 10 days before the as-of date: new. K3's only order was
    # 211 days before it (more than 180): lapsed. K4 bought last 222 days before, 314 days after
    # the first: lapsed too, however long their usual gap (three of them would be 942 days).
    # K1 bought 20 days before, ~15 months after the first: active, in neither.
    assert members("lifecycle_new") == ["K2"]
    assert members("lifecycle_lapsed") == ["K3", "K4"]
    assert project.query(
        "SELECT i.source_customer_id, f.lifecycle_stage, f.recency_days, f.orders_total "
        "FROM core.customer_features f JOIN core.customer_identity i USING (customer_id) "
        "ORDER BY 1") == [("K1", "active", 20, 2), ("K2", "new", 10, 1), ("K3", "lapsed", 211, 1),
                          ("K4", "lapsed", 222, 2)]
    # the segment is what its description says: bought before, nothing in the last 180 days
    assert members("lifecycle_lapsed") == [r[0] for r in project.query(
        "SELECT source_customer_id FROM staging.orders GROUP BY 1 "
        "HAVING max(ordered_at) < TIMESTAMPTZ '1998-06-30 21:00:00+00' - INTERVAL 180 DAY "
        "ORDER BY 1")]
    # a first purchase in June 1998 (09:00 Moscow time, no store: the business zone)
    assert project.query("SELECT event_date, count(*) FROM events.first_purchase GROUP BY 1") == [
        (date(1998, 6, 20), 1)]


def test_orders_before_the_earliest_plausible_date_are_rejected_until_it_moves(tmp_path):
    project = make_project(tmp_path, FIXTURES / "byo_1990s", partition_start=date(1997, 1, 1),
                           earliest_plausible_date=date(1998, 1, 1), max_reject_rate={
                               "default": 0.7})
    result = project.build(as_of=AS_OF, first_day=AS_OF, last_day=AS_OF)
    assert result.success, result.error
    assert project.query("SELECT _row_number, reason FROM staging.rejects ORDER BY 1") == [
        (1, "implausible ordered_at (before earliest_plausible_date 1998-01-01): "
            "1997-03-01 10:00:00"),
        (4, "implausible ordered_at (before earliest_plausible_date 1998-01-01): "
            "1997-12-01 10:00:00"),
        (5, "implausible ordered_at (before earliest_plausible_date 1998-01-01): "
            "1997-01-10 10:00:00"),
        (6, "implausible ordered_at (before earliest_plausible_date 1998-01-01): "
            "1997-11-20 10:00:00")]

    # the setting moved back: the next run judges every order again under the new rule
    project.settings = replace(project.settings, earliest_plausible_date=date(1995, 1, 1))
    assert project.nightly(AS_OF).success
    assert project.scalar("SELECT count(*) FROM staging.rejects") == 0
    assert project.scalar("SELECT count(*) FROM core.orders") == 6


def test_the_currency_is_the_business_s_not_the_code_s(tmp_path):
    project = make_project(tmp_path, FIXTURES / "byo_1990s", currency_code="USD",
                           currency_symbol="$", plausible_days_after_load=3)
    warehouse = project.definitions().resources["warehouse"]
    with warehouse.connect() as con:
        assert con.execute("SELECT currency_code(), currency_symbol()").fetchone() == ("USD", "$")
        # and the latest plausible instant of a row: its load plus the configured days
        assert con.execute("SELECT latest_plausible(TIMESTAMPTZ '2026-01-01 00:00:00+00') = "
                           "TIMESTAMPTZ '2026-01-04 00:00:00+00'").fetchone() == (True,)
    # descriptions and column docs say "the business's currency", never a currency's name
    for path in project.sql_dir.rglob("*.sql"):
        assert not re.search(r"\b(roubles?|rubles?|dollars?)\b", path.read_text(), re.I), path


def test_lifecycle_descriptions_quote_the_configured_thresholds():
    """One rule: the numbers the lifecycle segments and the column describe are the ones
    ``[tool.crm.lifecycle]`` configures (and the defaults, for a project without the section)."""
    from crm_assets.functions.registry import DEFAULT_LIFECYCLE
    from crm_assets.settings import load_settings

    configured = {**DEFAULT_LIFECYCLE, **load_settings().lifecycle}
    assert configured == DEFAULT_LIFECYCLE  # the shipped pyproject.toml says the defaults
    sql = PROJECT_DIR / "sql"
    lifecycle = (sql / "segments" / "lifecycle.sql").read_text()
    features = (sql / "core" / "customer_features.sql").read_text()
    assert f"new (first order within\n--   {configured['new_days']} days)" in lifecycle
    assert f"lapsed (nothing bought for more than {configured['lapsed_days']} days)" in lifecycle
    assert f"active (last order within {configured['active_days']} days" in lifecycle
    assert (f"new (first order within {configured['new_days']} days), lapsed (nothing bought "
            f"for more\n--     than {configured['lapsed_days']} days), active (last order "
            f"within {configured['active_days']} days") in features


def test_interval_arithmetic_counts_business_days_across_daylight_saving(tmp_path):
    """Berlin moves its clocks on 2025-03-30: from 1 March 10:00 to 30 May 10:00 local is 90
    calendar days but 89 days 23 hours of elapsed time. A definition means the former."""
    project = make_project(tmp_path, FIXTURES / "byo_1990s", business_timezone="Europe/Berlin")
    a, b = "TIMESTAMPTZ '2025-03-01 10:00:00+01'", "TIMESTAMPTZ '2025-05-30 10:00:00+02'"
    question = (f"SELECT {b} - {a} >= INTERVAL 90 DAY, {a} + INTERVAL 90 DAY = {b}, "
                f"CAST(TIMESTAMPTZ '2025-05-29 23:30:00+00' AS DATE)")
    with project.definitions().resources["warehouse"].connect() as con:
        assert con.execute(question).fetchone() == (True, True, date(2025, 5, 30))
    with duckdb.connect() as utc:  # what a session in UTC would have said
        utc.execute("SET TimeZone = 'UTC'")
        assert utc.execute(question).fetchone() == (False, False, date(2025, 5, 29))
