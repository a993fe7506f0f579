"""The calendar of event memberships: one partition per day of the business time zone."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import dagster as dg

from crm_assets.settings import Settings


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """Days from ``partition_start`` to yesterday, cut at midnight in the business time zone."""
    return dg.DailyPartitionsDefinition(start_date=settings.partition_start.isoformat(),
                                        timezone=settings.business_timezone)


def day_window(settings: Settings, first: date, last: date) -> tuple[datetime, datetime]:
    """Instants ``[first 00:00, last+1 00:00)`` in the business zone."""
    zone = settings.zone
    return (datetime.combine(first, time(), zone),
            datetime.combine(last + timedelta(days=1), time(), zone))
