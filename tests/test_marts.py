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
