"""Personal data stays where it belongs: the BI snapshot holds no direct identifiers, the contacts
snapshot and the trigger exports (in their own folder) hold them for campaigns."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from crm_assets.serving.snapshot import VIEWS_FILE

EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[A-Za-z]{2,}")
PHONE = re.compile(r"^\+?[\d\s()\-]+$")  # and 10 digits or more (not a date)


def _values(views: Path) -> dict[str, list[str]]:
    """Every value of every column of every table of a snapshot, as text, by ``table.column``."""
    con = duckdb.connect(str(views), read_only=True)
    try:
        columns = con.execute(
            "SELECT schema_name || '.' || table_name, column_name FROM duckdb_columns() "
            "WHERE database_name = current_database() AND NOT internal").fetchall()
        return {f"{t}.{c}": [r[0] for r in con.execute(
                    f'SELECT DISTINCT CAST("{c}" AS VARCHAR) FROM {t} WHERE "{c}" IS NOT NULL'
                ).fetchall()] for t, c in columns}
    finally:
        con.close()


def _personal(project) -> tuple[set[str], set[str]]:
    """The names and birth dates of the fixture's people, from the warehouse (every version)."""
    names = {v.lower() for r in project.query(
        "SELECT first_name, last_name FROM raw.customers") for v in r if v and len(v) > 1}
    births = {str(r[0]) for r in project.query(
        "SELECT birth_date FROM core.customers WHERE birth_date IS NOT NULL")}
    return names, births


def _leaks(values: dict[str, list[str]], names: set[str], births: set[str]) -> dict[str, list]:
    found: dict[str, list] = {}
    for column, seen in values.items():
        bad = [v for v in seen if EMAIL.search(v) or v.lower() in names
               or (PHONE.match(v) and sum(ch.isdigit() for ch in v) >= 10)
               or (column.endswith("birth_date") and v in births)]
        if bad:
            found[column] = bad
    return found


def test_the_bi_snapshot_holds_no_e_mail_phone_name_or_birth_date(built):
    names, births = _personal(built)
    assert {"иван", "петров", "анна"} <= names  # the fixture's people, so the scan can fail
    bi = _values(built.settings.serving_path / VIEWS_FILE)
    assert _leaks(bi, names, births) == {}
    assert not any(c.split(".")[-1] in ("email", "phone", "first_name", "last_name",
                                          "birth_date", "name_key") for c in bi)
    # what BI needs stays: ids, gender, city, consents, age, reachability, segments
    for column in ("core.customers.customer_id", "core.customers.gender", "core.customers.city",
                   "core.customer_features.age_band",
                   "core.customers.email_opt_in", "core.customer_features.age",
                   "core.customer_features.is_email_reachable",
                   "segments.croissant_buyers.customer_id"):
        assert column in bi, column
    # the same scan finds them in the contacts snapshot, which serves exactly that
    contacts = _values(built.settings.contacts_path / VIEWS_FILE)
    assert set(_leaks(contacts, names, births)) >= {
        "core.customers.email", "core.customers.phone", "core.customers.first_name",
        "core.customers.last_name", "core.customers.birth_date"}
    assert {c.rsplit(".", 1)[0] for c in contacts} == {"core.customers"}
    # two folders, so file permissions can keep BI users out of the contacts
    serving, folder = built.settings.serving_path.resolve(), built.settings.contacts_path.resolve()
    assert serving not in folder.parents and folder not in serving.parents
    # the trigger exports hold e-mail addresses: beside the contacts, never under BI's folder
    exports = list(folder.rglob("*.csv"))
    assert exports and not list(serving.rglob("*.csv"))


def test_a_new_table_with_contact_columns_is_withheld_from_bi(tmp_path):
    """The rule is by column, whatever table holds it: a segment that selects e-mail and phone
    (for a hurried export, say) publishes them to no tier but contacts' own table."""
    from crm_assets.serving.snapshot import BI, CONTACTS, publish
    from crm_assets.warehouse import connect

    with connect(tmp_path / "crm.duckdb") as con:
        con.execute("CREATE TABLE core.customers AS SELECT 1 AS customer_id, "
                    "'a@b.ru' AS email, 'Москва' AS city")
        con.execute("CREATE TABLE segments.moscow_contacts AS SELECT 1 AS customer_id, "
                    "'a@b.ru' AS email, '+79161234567' AS phone, 'Иван' AS first_name, "
                    "'Москва' AS city")
        publish(con, tmp_path / "serving", tier=BI)
        publish(con, tmp_path / "contacts", tier=CONTACTS)
    mine = ("core.customers.", "segments.moscow_contacts.")
    bi = {c for c in _values(tmp_path / "serving" / VIEWS_FILE) if c.startswith(mine)}
    assert bi == {"core.customers.customer_id", "core.customers.city",
                       "segments.moscow_contacts.customer_id", "segments.moscow_contacts.city"}
    contacts = {c for c in _values(tmp_path / "contacts" / VIEWS_FILE) if c.startswith(mine)}
    assert contacts == {"core.customers.customer_id", "core.customers.email",
                             "core.customers.city"}


def test_secret_urls_are_masked():
    from crm_assets.secrets import mask_url, scrub

    assert mask_url("postgresql://crm:pa55@db:5432/crm") == "postgresql://crm:***@db:5432/crm"
    assert mask_url("postgresql://db/crm") == "postgresql://db/crm"  # no password, nothing hidden
    assert mask_url("https://hooks.slack.com/services/T0/B0/XyZ") == "https://hooks.slack.com/***"
    assert mask_url("https://u:tok@example.com/h?k=1") == "https://example.com/***"
    hook = "https://hooks.example.com/services/T0/B0/S3CRET"
    assert scrub(f"POST {hook} failed", hook) == "POST https://hooks.example.com/*** failed"
    assert "S3CRET" not in scrub("path /services/T0/B0/S3CRET refused", hook)


def test_an_unreachable_run_storage_is_named_without_its_password(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"),
           "DAGSTER_PG_URL": "postgresql://crm:pa55w0rd@127.0.0.1:1/test",
           "CRM_WAREHOUSE": str(tmp_path / "w.duckdb")}
    done = subprocess.run([str(Path(sys.executable).with_name("crm")), "status"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "pa55w0rd" not in done.stdout + done.stderr
    assert "cannot use the run storage in PostgreSQL at postgresql+psycopg2://crm:***@127.0.0.1:1" \
        in done.stderr


def test_a_failing_webhook_is_logged_without_its_secret_path(tmp_path):
    """The webhook answers 500 with its own path as the reason phrase, as some proxies do: the
    error urllib raises then holds the secret path, and the alert log must not."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from crm_assets.defs.alerts import send
    from crm_assets.settings import load_settings

    class Echo(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(500, f"no route to {self.path}")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        hook = f"http://127.0.0.1:{server.server_port}/services/T0/B0/S3CRETT0KEN"
        settings = load_settings(project_dir=tmp_path, alert_webhook=hook,
                                 alert_log=tmp_path / "alerts.log")
        send({"text": "crm: test"}, settings)
    finally:
        server.shutdown()
        server.server_close()
    line = (tmp_path / "alerts.log").read_text(encoding="utf-8")
    assert "webhook failed: HTTP Error 500: no route to ***" in line
    assert "S3CRETT0KEN" not in line
