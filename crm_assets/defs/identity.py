"""The identity asset: every source customer record mapped to one stable ``customer_id``."""

import dagster as dg

from crm_assets.defs.metadata import table_schema
from crm_assets.defs.partitions import is_full_refresh
from crm_assets.defs.resources import POOL, Warehouse
from crm_assets.defs.sql_assets import IDENTITY_KEY
from crm_assets.identity.report import dedupe_report, report_markdown
from crm_assets.identity.resolve import resolve_identity
from crm_assets.settings import Settings
from crm_assets.warehouse.tables import CUSTOMER_IDENTITY


def build_identity_asset(settings: Settings) -> dg.AssetsDefinition:
    """``core/customer_identity``: :func:`~crm_assets.identity.resolve.resolve_identity`, and,
    when the input folder carries the generator's ground truth, how good the matching is."""

    @dg.asset(key=IDENTITY_KEY, group_name="core", deps=[["staging", "customers"]],
              kinds={"duckdb", "python"}, pool=POOL,
              description="Every source customer record mapped to one stable customer_id; merges "
                          "of existing people are recorded in meta.customer_merges.",
              metadata={"dagster/column_schema": table_schema(CUSTOMER_IDENTITY.schema)})
    def _identity(context: dg.AssetExecutionContext, warehouse: Warehouse):
        truth = settings.input_dir / "_truth" / "customers.csv"
        quality: dict = {}
        with warehouse.connect() as con:
            stats = resolve_identity(con, full=is_full_refresh(context))
            if truth.exists():  # demo and generated data carry ground truth
                report = dedupe_report(con, truth)
                quality = {"pairwise_precision": report[0]["precision"],
                           "pairwise_recall": report[0]["recall"],
                           "dedupe_report": dg.MetadataValue.md(report_markdown(report))}
        return dg.MaterializeResult(metadata={
            "dagster/row_count": int(stats.get("records", 0)),
            **{k: v for k, v in stats.items() if isinstance(v, (int, float, str))},
            **{k: v for k, v in quality.items() if v is not None}})

    return _identity
