"""What leaves the warehouse, as assets: the BI snapshot (no direct identifiers), the contacts
snapshot, and the trigger exports (beside the contacts: they hold e-mail addresses).

The snapshots' views carry the SQL catalogue's descriptions of tables and columns: the catalogue
is read when a snapshot is published (from the in-process cache the definitions filled, ~40 ms on
the project's SQL), so loading the definitions costs nothing more.
"""

from datetime import date

import dagster as dg

from crm_assets.catalog import Catalog, Definition
from crm_assets.defs.metadata import asset_key, report_days
from crm_assets.defs.resources import POOL, Warehouse
from crm_assets.project import load_project_catalog
from crm_assets.serving.exports import (
    TRIGGER_TAG,
    days_to_export,
    export_folder,
    write_trigger_exports,
)
from crm_assets.serving.snapshot import (
    BI,
    CONTACTS,
    SERVED_SCHEMAS,
    VIEWS_FILE,
    TableDoc,
    Tier,
    publish,
)
from crm_assets.settings import Settings
from crm_assets.warehouse.state import latest_build, set_watermark, watermark
from crm_assets.warehouse.tables import BUILT_VERSIONS

BUILDS = BUILT_VERSIONS.name

SERVING_KEY = dg.AssetKey(["serving", "snapshot"])
CONTACTS_KEY = dg.AssetKey(["serving", "contacts"])


def build_serving_asset(settings: Settings, assets: list[dg.AssetsDefinition]
                        ) -> dg.AssetsDefinition:
    """The snapshot BI reads (:mod:`crm_assets.serving.snapshot`), after every table it serves."""
    served = sorted({k for a in assets for k in a.keys if k.path[0] in SERVED_SCHEMAS},
                    key=lambda k: k.to_user_string())
    return _snapshot_asset(SERVING_KEY, BI, settings, settings.serving_path, served,
                           f"What BI tools read: {settings.serving_path / VIEWS_FILE} (read-only, "
                           "views over Parquet), swapped in atomically; no run ever opens it. No "
                           "direct identifiers (names, e-mail, phone, birth date).")


def build_contacts_asset(settings: Settings) -> dg.AssetsDefinition:
    """The contacts snapshot (:data:`~crm_assets.serving.snapshot.CONTACTS`), for campaign tools."""
    return _snapshot_asset(CONTACTS_KEY, CONTACTS, settings, settings.contacts_path,
                           [dg.AssetKey(["core", "customers"])],
                           f"Contacts and consents for campaign tools and crm audience: "
                           f"{settings.contacts_path / VIEWS_FILE}, its own folder so file "
                           "permissions keep it from BI users.")


def catalog_docs(catalog: Catalog) -> dict[str, TableDoc]:
    """Each definition's description and column descriptions, by table, for ``COMMENT ON``."""
    return {d.table: TableDoc(d.description, d.column_docs) for d in catalog.definitions
            if d.description or d.column_docs}


def _snapshot_asset(key: dg.AssetKey, tier: Tier, settings: Settings, folder,
                    deps: list[dg.AssetKey], description: str) -> dg.AssetsDefinition:
    @dg.asset(key=key, group_name="serving", deps=deps, kinds={"duckdb", "parquet"}, pool=POOL,
              description=description)
    def _snapshot(context: dg.AssetExecutionContext, warehouse: Warehouse):
        docs = catalog_docs(load_project_catalog(settings))
        with warehouse.connect() as con:
            built = latest_build(con)
            result = publish(con, folder, since=watermark(con, key.to_user_string(), BUILDS),
                             tier=tier, docs=docs)
            set_watermark(con, key.to_user_string(), BUILDS, built)
        context.log.info(f"published {result.tables} tables to {result.path}: "
                         f"{result.files_written} Parquet files written, "
                         f"{result.files_reused} unchanged, {result.files_removed} removed")
        return dg.MaterializeResult(metadata={
            "path": dg.MetadataValue.path(str(result.path)),
            "tables": result.tables, "dagster/row_count": result.rows,
            "files_written": result.files_written, "files_reused": result.files_reused,
            "files_removed": result.files_removed})

    return _snapshot


def build_trigger_exports(catalog: Catalog, settings: Settings,
                          partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """``exports/<event>`` for each event tagged ``trigger``: one CSV per day of who met it and may
    be e-mailed (:mod:`crm_assets.serving.exports`), for the e-mail tool's trigger chain."""
    return [_trigger_export(d, settings, partitions_def) for d in catalog.definitions
            if d.kind == "event" and TRIGGER_TAG in d.tags]


def _trigger_export(d: Definition, settings: Settings, partitions_def: dg.PartitionsDefinition
                    ) -> dg.AssetsDefinition:
    folder = export_folder(settings.contacts_path, d.name)

    @dg.asset(key=["exports", d.name], group_name="exports", partitions_def=partitions_def,
              deps=[asset_key(d.table), dg.AssetKey(["core", "customers"])],
              backfill_policy=dg.BackfillPolicy.single_run(), kinds={"duckdb", "csv"}, pool=POOL,
              description=f"Who met {d.table} each day and may be e-mailed (a contact and e-mail "
                          f"consent): {folder}/<day>.csv, for the trigger chain it feeds.")
    def _export(context: dg.AssetExecutionContext, warehouse: Warehouse):
        window = [date.fromisoformat(key) for key in context.partition_keys]
        with warehouse.connect() as con:
            days, up_to = days_to_export(con, d.name, window)
            earlier = [day for day in days if day not in window]
            first_time = [day for day in earlier if not (folder / f"{day}.csv").exists()]
            written = write_trigger_exports(con, d.name, folder, days, up_to)
        report_days(context, written, [day for day in earlier if day not in first_time],
                    {"path": dg.MetadataValue.path(str(folder / f"{window[-1]}.csv"))},
                    caught_up=first_time)
        return dg.MaterializeResult()

    return _export
