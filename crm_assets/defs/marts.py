"""``marts/event_daily_counts``: occurrences and distinct customers per event and business day."""

from __future__ import annotations

import dagster as dg

from crm_assets.catalog import Catalog
from crm_assets.defs.metadata import asset_key
from crm_assets.defs.resources import POOL, Warehouse
from crm_assets.warehouse.marts import EVENT_DAILY_COUNTS, materialize_event_daily_counts


def build_event_daily_counts(catalog: Catalog) -> dg.AssetsDefinition:
    events = [d.table for d in catalog.definitions if d.kind == "event"]

    @dg.asset(key=asset_key(EVENT_DAILY_COUNTS), group_name="marts",
              deps=[asset_key(t) for t in events], kinds={"duckdb", "sql"}, pool=POOL,
              description="Occurrences and distinct customers per event and business day.")
    def _counts(warehouse: Warehouse):
        with warehouse.connect() as con:
            rows, sql, not_built = materialize_event_daily_counts(con, events)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": rows, "sql": dg.MetadataValue.md(f"```sql\n{sql}\n```"),
            "events_not_built_yet": dg.MetadataValue.json(not_built)})

    return _counts
