"""The schedules: the nightly run, the weekly model fit and the hourly freshness checks. All ship
stopped."""

from datetime import timedelta

import dagster as dg

from crm_assets.defs.clv import FIT_JOB
from crm_assets.defs.jobs import NIGHTLY
from crm_assets.defs.partitions import AS_OF_TAG
from crm_assets.settings import Settings


def nightly_request(day) -> dg.RunRequest:
    """The run of the ``nightly`` job for ``day``: its event partition and segments as of it.

    The schedule, ``crm nightly`` and the ``landing`` sensor all ask for exactly this.
    """
    return dg.RunRequest(partition_key=day.isoformat(), tags={AS_OF_TAG: day.isoformat()})


def build_schedules(jobs: dict, settings: Settings) -> list[dg.ScheduleDefinition]:
    """``nightly`` (02:00 business time, for yesterday), ``clv_weekly`` (Mondays 04:00) and
    ``hourly_freshness`` (:15)."""
    zone = settings.business_timezone
    stopped = dg.DefaultScheduleStatus.STOPPED

    @dg.schedule(job=jobs["check_freshness"], cron_schedule="15 * * * *",
                 execution_timezone=zone, default_status=stopped)
    def hourly_freshness(context: dg.ScheduleEvaluationContext):
        """Every hour, whether each raw table received a new file within its limit."""
        return dg.RunRequest()

    @dg.schedule(job=jobs[NIGHTLY], cron_schedule="0 2 * * *", execution_timezone=zone,
                 default_status=stopped, name=NIGHTLY)
    def nightly(context: dg.ScheduleEvaluationContext):
        """At 02:00 business time, the nightly run for yesterday."""
        return nightly_request(context.scheduled_execution_time.date() - timedelta(days=1))

    @dg.schedule(job=jobs[FIT_JOB], cron_schedule="0 4 * * 1", execution_timezone=zone,
                 default_status=stopped, name="clv_weekly")
    def clv_weekly(context: dg.ScheduleEvaluationContext):
        """On Mondays at 04:00 business time (after the night), the model fit as of yesterday."""
        day = context.scheduled_execution_time.date() - timedelta(days=1)
        return dg.RunRequest(tags={AS_OF_TAG: day.isoformat()})

    return [nightly, clv_weekly, hourly_freshness]
