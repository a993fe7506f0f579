"""Alerts: a run that failed, or succeeded with a failed check of severity ERROR (a refused file),
is written to the alert log and, when a webhook is configured, POSTed to it as JSON.

The message is Slack-compatible (``text`` is what Slack shows; the other keys are for scripts):

    {"text": "crm: run 1f0c… of nightly FAILED\\nstaging__orders: ...", "run_id": "1f0c…",
     "job": "nightly", "status": "FAILURE", "problems": ["staging__orders: ..."]}

Two senders, one alert per run (the run is tagged :data:`ALERTED_TAG` first): ``crm`` after each
run it launches and each dead run it marks failed, and the ``alert_on_failure`` and
``alert_on_failed_checks`` sensors (running by default, every run of the instance, the UI's and
the schedules' included) under ``dagster dev`` or the daemon. A webhook that cannot be reached is
noted in the log; it never fails a run.
"""

from __future__ import annotations

import json
import re
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from crm_assets.secrets import scrub
from crm_assets.settings import Settings

ALERTED_TAG = "crm/alerted"
"""Run tag set once the run's alert went out, so that no other sender repeats it."""

WEBHOOK_TIMEOUT_SECONDS = 10


def step_failure_message(event: dg.DagsterEvent) -> str:
    """The error a step raised, without Dagster's wrapper and exception class."""
    error = event.step_failure_data.error
    while (error is not None and error.cause is not None
           and "StepExecutionError" in (error.cls_name or "")):
        error = error.cause  # the error raised in the step, not Dagster's wrapper
    message = error.message.strip() if error else ""
    return re.sub(r"^dagster\._core\.definitions\.events\.Failure: ", "", message)


def run_problems(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """What went wrong in the run, one line each: failed steps and failed checks."""
    events = instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_FAILURE,
                                                dg.DagsterEventType.ASSET_CHECK_EVALUATION,
                                                dg.DagsterEventType.RUN_FAILURE})
    problems = []
    for entry in events:
        event = entry.dagster_event
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            problems.append(f"{event.step_key}: {step_failure_message(event)}")
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            check = event.asset_check_evaluation_data
            if not check.passed and check.severity == dg.AssetCheckSeverity.ERROR:
                problems.append(f"{check.asset_key.to_user_string()} {check.check_name}: "
                                f"{check.description}")
        elif not problems and entry.message:  # a run failed outside any step (a dead process)
            problems.append(entry.message)
    return problems


def alert_run(instance: dg.DagsterInstance, run_id: str, settings: Settings) -> dict | None:
    """Send the run's alert if it failed or has failed ERROR checks, once; the message sent."""
    run = instance.get_run_by_id(run_id)
    if run is None or not run.is_finished or ALERTED_TAG in run.tags:
        return None
    failed = run.status == dg.DagsterRunStatus.FAILURE
    problems = run_problems(instance, run_id)
    if not failed and not problems:
        return None
    instance.add_run_tags(run_id, {ALERTED_TAG: "true"})
    verdict = "FAILED" if failed else "succeeded with failed checks"
    message = {"text": "\n".join([f"crm: run {run_id} of {run.job_name} {verdict}", *problems]),
               "run_id": run_id, "job": run.job_name, "status": run.status.value,
               "problems": problems}
    send(message, settings)
    return message


def send(message: dict, settings: Settings) -> None:
    """Append ``message`` to the alert log (one JSON line, with when and what the webhook said)
    and POST it to the webhook when one is configured."""
    outcome = "no webhook configured"
    if settings.alert_webhook:
        request = urllib.request.Request(
            settings.alert_webhook, data=json.dumps(message).encode("utf-8"), method="POST",
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
                outcome = f"webhook answered {response.status}"
        except OSError as err:  # URLError, HTTPError, timeouts: noted, never raised
            outcome = f"webhook failed: {scrub(str(err), settings.alert_webhook)}"
    log = settings.alert_log_path
    log.parent.mkdir(parents=True, exist_ok=True)
    line = {"at": datetime.now(UTC).isoformat(timespec="seconds"), **message, "sent": outcome}
    with Path(log).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, ensure_ascii=False) + "\n")


def build_alert_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    """``alert_on_failure`` and ``alert_on_failed_checks``: :func:`alert_run` for every run of
    the instance that ends failed, or succeeded with a failed ERROR check."""

    @dg.run_failure_sensor(name="alert_on_failure", monitor_all_code_locations=True,
                           default_status=dg.DefaultSensorStatus.RUNNING,
                           description="Writes an alert (log file, webhook) for each failed run.")
    def alert_on_failure(context: dg.RunFailureSensorContext):
        alert_run(context.instance, context.dagster_run.run_id, settings)

    @dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, name="alert_on_failed_checks",
                          monitor_all_code_locations=True,
                          default_status=dg.DefaultSensorStatus.RUNNING,
                          description="Writes an alert for each successful run with a failed "
                                      "check of severity ERROR (a refused file).")
    def alert_on_failed_checks(context: dg.RunStatusSensorContext):
        alert_run(context.instance, context.dagster_run.run_id, settings)

    return [alert_on_failure, alert_on_failed_checks]
