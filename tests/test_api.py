"""The notebook API: DataFrames read from the BI snapshot of the tiny fixture's build.

Hand-computed from tests/fixtures/tiny (see test_pipeline.py): persons 1 and 2 bought croissants
on the Moscow day 2025-03-10 (O1, O2 and O3); the build ran as of 2025-03-12 only, so the history
says both entered croissant_buyers on the 12th.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from crm_assets import api
from crm_assets.serving.snapshot import VIEWS_FILE

TWELFTH = pd.Timestamp("2025-03-12")


@pytest.fixture
def snapshot(built):
    return built.settings.serving_path / VIEWS_FILE


def test_members_now_and_on_a_past_day(snapshot):
    now = api.members("croissant_buyers", snapshot=snapshot)
    assert now["customer_id"].tolist() == [1, 2]
    assert set(now["as_of_date"]) == {TWELFTH}  # dates come as pandas timestamps
    assert api.members("croissant_buyers", on="2025-03-11", snapshot=snapshot).empty
    on_the_12th = api.members("croissant_buyers", on=date(2025, 3, 12), snapshot=snapshot)
    assert on_the_12th[["customer_id", "valid_from"]].values.tolist() == [
        [1, TWELFTH], [2, TWELFTH]]


def test_events_between_two_days(snapshot):
    tenth = api.events("croissant_purchase", "2025-03-10", "2025-03-10", snapshot=snapshot)
    assert sorted(tenth["order_id"]) == ["O1", "O2", "O3"]
    assert api.events("croissant_purchase", "2025-03-11", "2025-03-12", snapshot=snapshot).empty
    assert len(api.events("croissant_purchase", snapshot=snapshot)) == 3  # open bounds


def test_segment_sizes_and_clear_errors(snapshot, tmp_path):
    sizes = api.segment_sizes("croissant_buyers", snapshot=snapshot)
    assert sizes[["size_date", "members", "entered"]].values.tolist() == [
        [TWELFTH, 2, 2]]
    with pytest.raises(api.SnapshotError, match="no segment named 'nope'"):
        api.members("nope", snapshot=snapshot)
    with pytest.raises(api.SnapshotError, match="no BI snapshot at"):
        api.events("croissant_purchase", snapshot=tmp_path / VIEWS_FILE)
