"""``core/rfm_segment_map``: the RFM map the project ships
(:mod:`crm_assets.warehouse.reference`)."""

import dagster as dg

from crm_assets.defs.metadata import asset_key, table_schema
from crm_assets.defs.resources import POOL, Warehouse
from crm_assets.settings import Settings
from crm_assets.warehouse.reference import ReferenceDataError, load_rfm_map
from crm_assets.warehouse.tables import RFM_SEGMENT_MAP

RFM_MAP_KEY = asset_key(RFM_SEGMENT_MAP.name)


def build_reference_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    path = settings.rfm_segment_map

    @dg.asset(key=RFM_MAP_KEY, group_name="core", kinds={"duckdb", "csv"}, pool=POOL,
              description=RFM_SEGMENT_MAP.description,
              metadata={"path": str(path), "dagster/table_name": RFM_SEGMENT_MAP.name,
                        "dagster/column_schema": table_schema(RFM_SEGMENT_MAP.schema)})
    def rfm_segment_map(context: dg.AssetExecutionContext, warehouse: Warehouse):
        try:
            with warehouse.connect() as con:
                ranges, changed = load_rfm_map(con, path)
        except ReferenceDataError as err:
            raise dg.Failure(str(err)) from err
        if not changed:
            context.log.info(f"{path} unchanged: {RFM_SEGMENT_MAP.name} left as it is")
        return dg.MaterializeResult(metadata={"dagster/row_count": ranges, "changed": changed})

    return [rfm_segment_map]
