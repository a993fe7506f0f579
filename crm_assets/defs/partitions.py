"""The calendar of the project's runs: day partitions of events, and the as-of date of segments."""

from datetime import date

import dagster as dg

from crm_assets.settings import Settings

AS_OF_TAG = "crm/as_of_date"
"""Run tag carrying the as-of date of segments (``YYYY-MM-DD``); default: yesterday (business)."""

FULL_REFRESH_TAG = "crm/full_refresh"
"""Run tag ``true``: every incremental step computes everything from raw again (``crm build
--full-refresh``), as dbt's ``--full-refresh`` does."""


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """Days from ``partition_start`` to yesterday, cut at midnight in the business time zone."""
    return dg.DailyPartitionsDefinition(start_date=settings.partition_start.isoformat(),
                                        timezone=settings.business_timezone)


def partition_range_tags(first_day: date, last_day: date) -> dict[str, str]:
    """Tags that make one run cover every day from ``first_day`` to ``last_day`` (a single run)."""
    return {"dagster/asset_partition_range_start": first_day.isoformat(),
            "dagster/asset_partition_range_end": last_day.isoformat()}


def resolve_as_of(context: dg.AssetExecutionContext | dg.OpExecutionContext,
                  settings: Settings) -> date:
    """The run's as-of date: its tag, else yesterday in the business time zone."""
    tag = context.run.tags.get(AS_OF_TAG)
    if tag:
        try:
            return date.fromisoformat(tag)
        except ValueError as err:
            raise dg.Failure(f"run tag {AS_OF_TAG}={tag!r} is not a YYYY-MM-DD date") from err
    return settings.yesterday()


def is_full_refresh(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> bool:
    """Whether the run asks every incremental step to compute everything again."""
    return context.run.tags.get(FULL_REFRESH_TAG, "").lower() in ("true", "1", "yes")
