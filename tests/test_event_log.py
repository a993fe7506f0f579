"""The project's Dagster storage: a range run's per-day records, written in batches, read back by
Dagster as if written one by one (``crm_assets/defs/event_log.py``)."""

from datetime import timedelta

import dagster as dg
from conftest import AS_OF, FIRST_DAY
from dagster._core.events import DagsterEventType

from crm_assets.defs.event_log import BatchedSqliteEventLogStorage

CROISSANTS = dg.AssetKey(["events", "croissant_purchase"])


def test_the_instance_writes_asset_events_in_batches(built):
    assert isinstance(built.instance.event_log_storage, BatchedSqliteEventLogStorage)


def test_a_range_run_plans_its_days_at_once_and_records_each_day_it_built(built):
    days = [(FIRST_DAY + timedelta(days=i)).isoformat()
            for i in range((AS_OF - FIRST_DAY).days + 1)]
    instance = built.instance
    assert sorted(instance.get_materialized_partitions(CROISSANTS)) == days
    # planned: one record naming the range (Dagster writes a range run's plan as one subset)
    (planned,) = instance.get_event_records(dg.EventRecordsFilter(
        DagsterEventType.ASSET_MATERIALIZATION_PLANNED, asset_key=CROISSANTS))
    subset = planned.event_log_entry.dagster_event.event_specific_data.partitions_subset
    assert sorted(subset.get_partition_keys()) == days

    # each day's record holds that day's rows, as the warehouse has them
    in_table = dict(built.query("SELECT event_date::VARCHAR, count(*) FROM "
                                "events.croissant_purchase GROUP BY ALL"))
    # O1 and O2 on 10 March; O3 at 01:00 on the 11th in Novosibirsk (S2) is 21:00 on the 10th in
    # Moscow
    assert in_table == {"2025-03-10": 3}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=CROISSANTS, asset_partitions=days), limit=100).records
    recorded = {r.asset_materialization.partition:
                r.asset_materialization.metadata["dagster/row_count"].value for r in records}
    assert recorded == {day: in_table.get(day, 0) for day in days}

    # the asset's latest materialisation is the last one written, as one by one
    latest = instance.get_latest_materialization_event(CROISSANTS)
    assert latest.asset_materialization.partition == days[-1]

    # the asset's own row (written once per batch, by its last event) names that record and run
    (entry,) = instance.get_asset_records([CROISSANTS])
    last = entry.asset_entry.last_materialization_record
    assert last.storage_id == max(r.storage_id for r in records)
    assert last.asset_materialization.partition == days[-1]
    assert entry.asset_entry.last_run_id == latest.run_id
