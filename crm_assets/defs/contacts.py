"""``staging/email_addresses`` and ``staging/phone_numbers``: each distinct contact checked once."""

import dagster as dg

from crm_assets.defs.metadata import asset_key, table_schema
from crm_assets.defs.partitions import is_full_refresh
from crm_assets.defs.resources import POOL, Warehouse
from crm_assets.warehouse.contacts import check_contacts
from crm_assets.warehouse.tables import EMAIL_ADDRESSES, PHONE_NUMBERS


def build_contact_checks() -> dg.AssetsDefinition:
    """One step writing both tables (one read of the new raw customer files)."""
    specs = [dg.AssetSpec(asset_key(t.name), group_name="staging", kinds={"duckdb", "python"},
                          deps=[dg.AssetKey(["raw", "customers"])], description=t.description,
                          metadata={"dagster/column_schema": table_schema(t.schema)})
             for t in (EMAIL_ADDRESSES, PHONE_NUMBERS)]

    @dg.multi_asset(specs=specs, name="contact_checks", pool=POOL)
    def _contacts(context: dg.AssetExecutionContext, warehouse: Warehouse):
        with warehouse.connect() as con:
            done = check_contacts(con, context.run.run_id,
                                  full_refresh=is_full_refresh(context))
        for table in (EMAIL_ADDRESSES, PHONE_NUMBERS):
            yield dg.MaterializeResult(asset_key=asset_key(table.name), metadata={
                "dagster/row_count": done.held[table.name],
                "checked_now": done.checked[table.name], "new_files": done.files})

    return _contacts
