"""The calendar of event memberships: one partition per day of the business time zone."""

from __future__ import annotations

import dagster as dg

from crm_assets.settings import Settings


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """Days from ``partition_start`` to yesterday, cut at midnight in the business time zone."""
    return dg.DailyPartitionsDefinition(start_date=settings.partition_start.isoformat(),
                                        timezone=settings.business_timezone)
