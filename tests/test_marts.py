"""Marts computed from hand-written memberships: what they say, checked by hand."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from crm_assets.catalog import load_catalog
from crm_assets.project import external_tables
from crm_assets.warehouse.models import materialize_model
from crm_assets.warehouse.tables import SEGMENT_MEMBERSHIP_HISTORY

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def warehouse(prepared_warehouse):
    return prepared_warehouse


def _members(con: duckdb.DuckDBPyConnection, rows: list[tuple[str, int, date | None]]) -> None:
    """Memberships (segment, customer, the day they ended or None) of 2026-06-01."""
    con.executemany(f"INSERT INTO {SEGMENT_MEMBERSHIP_HISTORY.name} VALUES (?, ?, ?, ?, 'v1')",
                    [(s, c, date(2026, 6, 1), ended) for s, c, ended in rows])


def _overlap(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], tuple]:
    d = load_catalog(PROJECT / "sql", external_tables()).by_table()["marts.segment_overlap"]
    materialize_model(con, d, run_id="test")
    return {(a, b): (n, na, nb, float(share)) for a, b, n, na, nb, share in con.execute(
        "SELECT * FROM marts.segment_overlap").fetchall()}


def test_segment_overlap_counts_the_current_members_of_each_pair(warehouse):
    _members(warehouse, [
        ("a", 1, None), ("b", 1, None),                    # 1: a and b
        ("a", 2, None), ("b", 2, None), ("c", 2, None),    # 2: all three
        ("a", 3, None),                                    # 3: a only
        ("c", 4, None), ("b", 4, date(2026, 6, 5)),        # 4: c, and b no longer
    ])
    # a: 1, 2, 3; b: 1, 2; c: 2, 4. Both a and b: 1, 2; a and c: 2; b and c: 2.
    assert _overlap(warehouse) == {
        ("a", "b"): (2, 3, 2, 0.6667), ("a", "c"): (1, 3, 2, 0.3333),
        ("b", "a"): (2, 2, 3, 1.0), ("b", "c"): (1, 2, 2, 0.5),
        ("c", "a"): (1, 2, 3, 0.5), ("c", "b"): (1, 2, 2, 0.5),
    }


def test_segment_overlap_counts_segments_past_the_combination_bits(warehouse):
    """Combinations hold 496 segments; the 497th on are counted member by member, the same."""
    names = [f"s{i:03d}" for i in range(500)]  # s496 .. s499 are past the bits
    _members(warehouse, [
        (names[0], 1, None), (names[499], 1, None),        # 1: the first and the last
        (names[498], 2, None), (names[499], 2, None),      # 2: two past the bits
        (names[0], 3, None), (names[1], 3, None), (names[499], 3, None),
        *[(name, 4, None) for name in names[10:20]],       # 4: ten within the bits
    ])
    overlap = _overlap(warehouse)
    # s000: 1, 3; s001: 3; s498: 2; s499: 1, 2, 3
    assert overlap[(names[0], names[499])] == (2, 2, 3, 1.0)
    assert overlap[(names[499], names[0])] == (2, 3, 2, 0.6667)
    assert overlap[(names[498], names[499])] == (1, 1, 3, 1.0)
    assert overlap[(names[499], names[498])] == (1, 3, 1, 0.3333)
    assert overlap[(names[1], names[499])] == (1, 1, 3, 1.0)
    assert overlap[(names[0], names[1])] == (1, 2, 1, 0.5)
    assert overlap[(names[10], names[19])] == (1, 1, 1, 1.0)
    # ordered pairs: 1 gives 2, 2 gives 2, 3 gives 6 of which 2 are 1's, 4 gives 10 * 9
    assert len(overlap) == 2 + 2 + 4 + 90


def test_segment_profiles_describe_the_current_members_of_each_segment(warehouse):
    """Averages over the members with a value; the top city by members, ties by name."""
    warehouse.execute("""CREATE TABLE core.customer_features AS SELECT * FROM (VALUES
        (1, 'female', 30, 'Moscow', 100.00, 2, true, false),
        (2, 'male', 40, 'Kazan', 50.00, 1, false, true),
        (3, NULL, NULL, 'Kazan', 0.00, 0, true, false),
        (4, 'female', 20, 'Moscow', 30.00, 3, false, false),
        (5, 'male', 60, 'Sochi', 900.00, 9, true, true),
        (7, 'female', 25, NULL, 10.00, 1, true, true),
        (8, 'male', 50, 'Omsk', 20.00, 2, false, false))
        t(customer_id, gender, age, city, revenue_365d, orders_365d, is_email_reachable,
          is_sms_reachable)""")
    _members(warehouse, [
        ("a", 1, None), ("a", 2, None), ("a", 3, None), ("a", 4, None),
        ("a", 5, date(2026, 6, 5)),                        # 5 left: not counted
        ("b", 6, None),                                    # 6 has no features row
        ("b", 7, None),                                    # 7 has no city
        ("b", 8, None),
    ])
    d = load_catalog(PROJECT / "sql", external_tables()).by_table()["marts.segment_profiles"]
    materialize_model(warehouse, d, run_id="test")
    rows = warehouse.execute("SELECT * FROM marts.segment_profiles ORDER BY segment").fetchall()
    # a: female 1 and 4, male 2, 3 unknown: 2 of 3; ages 30, 40, 20; Moscow 2 and Kazan 2, the
    # tie to Kazan; revenue (100 + 50 + 0 + 30) / 4; orders 6 / 4; e-mail 1 and 3; SMS 2.
    # b: 6 has no features (no gender, age, city, revenue; not reachable), 7 no city, so Omsk
    # (one member) is the top city, not the two without one; female 7, male 8; ages 25, 50.
    assert rows == [
        ("a", 4, 0.6667, 30.0, "Kazan", 45.0, 1.5, 0.5, 0.25),
        ("b", 3, 0.5, 37.5, "Omsk", 15.0, 1.5, 0.3333, 0.3333),
    ]


def test_segment_sizes_daily_counts_members_entries_and_exits_of_every_day(warehouse):
    """Every day from a segment's first to its last computed day, with the memberships that
    began before the first (kept by a rebuild) and a person who left and came back."""
    d1, d2, d3, d4, d5 = (date(2026, 6, day) for day in range(1, 6))
    warehouse.executemany(
        f"INSERT INTO {SEGMENT_MEMBERSHIP_HISTORY.name} VALUES (?, ?, ?, ?, 'v1')", [
            ("a", 1, date(2026, 5, 25), None),             # before the first day, still in
            ("a", 2, d1, d3), ("a", 2, d4, None),          # left on the 3rd, back on the 4th
            ("a", 3, d2, d5),
            ("a", 4, d5, None),
            ("a", 5, date(2026, 5, 20), date(2026, 5, 28)),  # gone before the first day
            ("b", 1, d3, None),
            ("b", 2, d1, d4),                              # in b before b's first day
            ("z", 1, d1, None),                            # no day computed: no row
        ])
    warehouse.executemany(  # a computed on the 1st and the 5th only: the days between count too
        "INSERT INTO meta.segment_runs VALUES (?, ?, 'v1', 0, 0, 0, 'test', now())",
        [("a", d1), ("a", d5), ("b", d3), ("b", d4)])
    d = load_catalog(PROJECT / "sql", external_tables()).by_table()["marts.segment_sizes_daily"]
    materialize_model(warehouse, d, run_id="test")
    # a: 1st: 1, 2 (2 entered); 2nd: 1, 2, 3 (3 entered); 3rd: 1, 3 (2 left); 4th: 1, 2, 3
    # (2 entered again); 5th: 1, 2, 4 (4 entered, 3 left). b: 3rd: 1, 2 (1 entered); 4th: 1
    # (2 left).
    assert warehouse.execute("SELECT * FROM marts.segment_sizes_daily").fetchall() == [
        ("a", d1, 2, 1, 0), ("a", d2, 3, 1, 0), ("a", d3, 2, 0, 1), ("a", d4, 3, 1, 0),
        ("a", d5, 3, 1, 1), ("b", d3, 2, 1, 0), ("b", d4, 1, 0, 1)]
    assert warehouse.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'segment_sizes_daily' ORDER BY ordinal_position"
                             ).fetchall() == [
        ("segment", "VARCHAR"), ("size_date", "DATE"), ("members", "BIGINT"),
        ("entered", "BIGINT"), ("exited", "BIGINT")]
