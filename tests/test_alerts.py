"""Alerts for runs nobody watches: a failed run, or a run with a failed ERROR check, is written to
the alert log and POSTed once to a webhook (a real HTTP server on 127.0.0.1), by ``crm`` or by the
sensors under the daemon, never both."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import pytest
from conftest import Project

from crm_assets.defs.alerts import ALERTED_TAG, build_alert_sensors, send
from crm_assets.defs.runs import run_job
from crm_assets.defs.schedules import nightly_request

ORDERS_HEADER = "order_id,customer_id,store_id,ordered_at,channel,status,total_amount\n"
DAY = date(2025, 3, 13)


@pytest.fixture
def webhook():
    """A local HTTP server recording the JSON bodies POSTed to it; yields (url, bodies)."""
    bodies: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the http.server name)
            length = int(self.headers["Content-Length"])
            bodies.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/crm", bodies
    finally:
        server.shutdown()
        server.server_close()


def alerting(project: Project, url: str) -> Project:
    project.settings = replace(project.settings, alert_webhook=url,
                               alert_log=project.root / "logs" / "alerts.log")
    return project


def log_lines(project: Project) -> list[dict]:
    path = project.settings.alert_log_path
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_failed_night_is_alerted_once_to_the_log_and_the_webhook(built, tmp_path, webhook):
    url, bodies = webhook
    project = alerting(built.copy(tmp_path), url)
    (project.input_dir / "orders_bad_dates.csv").write_text(
        ORDERS_HEADER + "O8,C3,S1,2099-03-13 10:00:00,in_store,completed,120.00\n",
        encoding="utf-8")
    result = project.nightly(DAY)
    assert not result.success
    assert len(bodies) == 1
    body = bodies[0]
    assert body["run_id"] == result.run_id and body["job"] == "nightly"
    assert body["status"] == "FAILURE"
    assert body["text"].startswith(f"crm: run {result.run_id} of nightly FAILED\n")
    assert ("staging/orders reject_rate: 1 of 1 new rows of raw.orders rejected (100.0%; "
            "limit 50%): implausible ordered_at (after its file was loaded) 1.") in body["text"]
    assert [line["run_id"] for line in log_lines(project)] == [result.run_id]
    assert log_lines(project)[0]["sent"] == "webhook answered 200"

    # the daemon's sensor sees the same failed run: it was alerted already, nothing is sent
    run = project.instance.get_run_by_id(result.run_id)
    assert run.tags[ALERTED_TAG] == "true"
    on_failure, _ = build_alert_sensors(project.settings)
    failure = project.instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    on_failure(dg.build_run_status_sensor_context(
        sensor_name="alert_on_failure", dagster_event=failure[0].dagster_event,
        dagster_instance=project.instance, dagster_run=run).for_run_failure())
    assert len(bodies) == 1 and len(log_lines(project)) == 1

    # a night that goes well sends nothing
    (project.input_dir / "orders_bad_dates.csv").unlink()
    assert project.nightly(DAY).success
    assert len(bodies) == 1


def test_the_sensor_alerts_a_run_that_succeeded_with_a_refused_file(built, tmp_path, webhook):
    url, bodies = webhook
    project = alerting(built.copy(tmp_path), url)
    (project.input_dir / "orders_bad.csv").write_bytes((ORDERS_HEADER + "O9\n").encode("utf-16"))
    request = nightly_request(DAY)  # launched as the daemon would: nothing alerted by the launcher
    result = run_job(project.definitions(), "nightly", instance=project.instance,
                     tags=dict(request.tags), partition_key=request.partition_key)
    assert result.success and bodies == []

    _, on_checks = build_alert_sensors(project.settings)
    run = project.instance.get_run_by_id(result.run_id)
    success = project.instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS)
    context = dg.build_run_status_sensor_context(
        sensor_name="alert_on_failed_checks", dagster_event=success[0].dagster_event,
        dagster_instance=project.instance, dagster_run=run)
    on_checks(context)
    assert len(bodies) == 1
    text = bodies[0]["text"].splitlines()
    assert text[0] == f"crm: run {result.run_id} of nightly succeeded with failed checks"
    assert text[1].startswith("raw/orders no_refused_files: 1 file(s) refused")
    assert "orders_bad.csv: line 1: UTF-16 is not supported" in bodies[0]["text"]
    on_checks(context)  # evaluated again (a sensor restart): not sent twice
    assert len(bodies) == 1


def test_an_unreachable_webhook_is_noted_in_the_log_and_never_raises(built, tmp_path):
    project = alerting(built.copy(tmp_path), "http://127.0.0.1:9/nobody-listens")
    send({"text": "crm: test", "run_id": "r1"}, project.settings)
    (line,) = log_lines(project)
    assert line["text"] == "crm: test" and line["sent"].startswith("webhook failed: ")
