"""``meta/clv_models``: the weekly fit of the customer-base models, with its model card.

The fit is its own job (``fit_clv``, the weekly ``clv_weekly`` schedule, ``crm clv fit``); the
nightly run leaves it out and scores with the latest published model
(``core/customer_predictions``). ``build_all`` (``crm build``, ``crm demo``) includes it, so a
new warehouse has a model.
"""

from datetime import date

import dagster as dg

from crm_assets.catalog import Catalog
from crm_assets.defs.metadata import asset_key, table_schema
from crm_assets.defs.partitions import resolve_as_of
from crm_assets.defs.resources import POOL, Warehouse
from crm_assets.settings import Settings
from crm_assets.warehouse.clv import SUMMARY, ClvFitError, fit_clv_models, fit_request, model_card
from crm_assets.warehouse.tables import CLV_MODELS

CLV_KEY = asset_key(CLV_MODELS.name)
FIT_JOB = "fit_clv"
CALIBRATION_END_TAG = "crm/clv_calibration_end"
"""Run tag: fit on purchases up to this day (``YYYY-MM-DD``); default the as-of day minus
``[tool.crm.clv] holdout_days``."""


def build_clv_fit_asset(catalog: Catalog, settings: Settings) -> dg.AssetsDefinition:
    summary = catalog.by_table()[SUMMARY]

    @dg.asset(key=CLV_KEY, deps=[asset_key(SUMMARY)], group_name="predictions",
              kinds={"duckdb", "python"}, pool=POOL, description=CLV_MODELS.description,
              metadata={"dagster/column_schema": table_schema(CLV_MODELS.schema),
                        "dagster/table_name": CLV_MODELS.name})
    def clv_models(context: dg.AssetExecutionContext, warehouse: Warehouse):
        as_of = resolve_as_of(context, settings)
        tag = context.run.tags.get(CALIBRATION_END_TAG)
        explicit = context.run.job_name == FIT_JOB
        try:
            request = fit_request(as_of, date.fromisoformat(tag) if tag else None,
                                  settings.clv_holdout_days, settings.clv_fit_sample_size,
                                  settings.clv_monthly_discount_rate)
            with warehouse.connect() as con:
                row = fit_clv_models(con, summary, request, context.run.run_id)
        except (ClvFitError, ValueError) as err:
            if explicit:
                raise dg.Failure(f"no model fitted: {err}") from err
            # a build over too little history: no model yet, predictions stay empty
            context.log.warning(f"no customer-base model fitted: {err}")
            return dg.MaterializeResult(metadata={"fitted": False, "reason": str(err)})
        context.log.info(f"published {row['model_version']}: r={row['r']:.4g} "
                         f"alpha={row['alpha']:.4g} a={row['a']:.4g} b={row['b']:.4g}")
        return dg.MaterializeResult(metadata={
            "fitted": True, "model_version": row["model_version"],
            "model_card": dg.MetadataValue.md(model_card(row)),
            "calibration_end": str(row["calibration_end"]),
            "holdout_end": str(row["holdout_end"] or ""),
            **{k: float(row[k]) for k in ("r", "alpha", "a", "b", "log_likelihood")},
            **{k: float(row[k]) for k in ("p", "q", "gamma") if row[k] is not None},
            "holdout_error": float(row["holdout_error"] or 0.0),
            "sample_size": row["sample_size"], "population": row["population"],
            "fit_seconds": row["fit_seconds"]})

    return clv_models
