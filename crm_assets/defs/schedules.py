"""The schedules: nightly segments and events, hourly freshness. All ship stopped."""

from datetime import timedelta

import dagster as dg

from crm_assets.defs.partitions import AS_OF_TAG
from crm_assets.settings import Settings


def build_schedules(jobs: dict, settings: Settings) -> list[dg.ScheduleDefinition]:
    """``nightly_segments`` (02:00), ``nightly_events`` (02:30), ``hourly_freshness`` (:15),
    in the business time zone; each day's runs are for yesterday."""
    zone = settings.business_timezone
    stopped = dg.DefaultScheduleStatus.STOPPED

    @dg.schedule(job=jobs["check_freshness"], cron_schedule="15 * * * *", execution_timezone=zone,
                 default_status=stopped)
    def hourly_freshness(context: dg.ScheduleEvaluationContext):
        """Every hour, whether each raw table received a new file within its limit."""
        return dg.RunRequest()

    @dg.schedule(job=jobs["daily_events"], cron_schedule="30 2 * * *", execution_timezone=zone,
                 default_status=stopped)
    def nightly_events(context: dg.ScheduleEvaluationContext):
        """At 02:30 business time, yesterday's partition of every event."""
        day = context.scheduled_execution_time.date() - timedelta(days=1)
        return dg.RunRequest(partition_key=day.isoformat(), tags={AS_OF_TAG: day.isoformat()})

    @dg.schedule(job=jobs["refresh_segments"], cron_schedule="0 2 * * *", execution_timezone=zone,
                 default_status=stopped)
    def nightly_segments(context: dg.ScheduleEvaluationContext):
        """At 02:00 business time, segments as of yesterday."""
        day = context.scheduled_execution_time.date() - timedelta(days=1)
        return dg.RunRequest(tags={AS_OF_TAG: day.isoformat()})

    return [nightly_events, nightly_segments, hourly_freshness]
