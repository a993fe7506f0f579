"""History in the BI snapshot: column types kept, descriptions carried, the history macros, and
``crm members`` / ``crm events`` over them; the same answers in a DuckDB 1.1 client.

A hand-made warehouse (no pipeline), published once. Business days are Moscow's (UTC+3):

* ``events.croissant_purchase``: customer 1 on June 1, 3 and 5 (the last at 23:30, 20:30 UTC),
  customer 2 twice on June 1, customer 4 at 00:30 on June 2 (21:30 UTC on June 1: a June 2
  purchase), customer 3 on May 20 (another month, another file).
* ``events.email_click``: customer 4 on June 1, customer 5 on May 10.
* ``marts.segment_membership_history`` of ``croissant_buyers``: 1 from June 1 on; 2 from June 1
  to June 5 (exclusive: not a member on the 5th); 3 from June 3 to 7, then from June 7 to 9 (a
  membership ending the day the next begins: no change on the 7th); 4 from June 8 on.
  ``lapsed``: 2 from June 5 on.

Every expected answer below is worked out by hand from these rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from crm_assets.cli.main import main
from crm_assets.project import load_project_catalog
from crm_assets.serving import snapshot
from crm_assets.serving.snapshot import (
    ALL_EVENTS_COLUMNS,
    LAYER_COLUMN_DOCS,
    MANIFEST_FILE,
    VIEWS_FILE,
    TableDoc,
    publish,
)
from crm_assets.warehouse import connect
from crm_assets.warehouse.tables import SEGMENT_MEMBERSHIP_HISTORY

PROJECT_DIR = Path(__file__).resolve().parents[1]
DUCKDB1 = PROJECT_DIR / ".duckdb1"
"""DuckDB 1.1.3, installed there by ``make install`` (never on the venv's path)."""

DOCS = {
    "events.croissant_purchase": TableDoc("Every purchase with a croissant.",
                                          {"order_id": "The order it was in."}),
    "segments.croissant_buyers": TableDoc("Bought a croissant.", {"customer_id": "A buyer."}),
}
"""What the SQL catalogue would say of two tables."""

BIG = 2 * 9223372036854775807 + 1
"""The sum of two largest BIGINTs and 1: a HUGEINT a DOUBLE would round (to 2^64)."""


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bi_history") / "crm.duckdb"
    with connect(path) as con:
        con.execute("""CREATE TABLE events.croissant_purchase AS
            SELECT CAST(customer_id AS BIGINT) AS customer_id, occurred_at, order_id,
                   CAST(timezone('Europe/Moscow', occurred_at) AS DATE) AS event_date,
                   'v1' AS definition_version
            FROM (VALUES (1, TIMESTAMPTZ '2026-06-01 09:00:00+03', 'O1'),
                         (1, TIMESTAMPTZ '2026-06-03 09:00:00+03', 'O2'),
                         (1, TIMESTAMPTZ '2026-06-05 23:30:00+03', 'O3'),
                         (2, TIMESTAMPTZ '2026-06-01 10:00:00+03', 'O4'),
                         (2, TIMESTAMPTZ '2026-06-01 11:00:00+03', 'O5'),
                         (4, TIMESTAMPTZ '2026-06-02 00:30:00+03', 'O6'),
                         (3, TIMESTAMPTZ '2026-05-20 12:00:00+03', 'O7'))
                 AS t(customer_id, occurred_at, order_id)""")
        con.execute("""CREATE TABLE events.email_click AS
            SELECT CAST(customer_id AS BIGINT) AS customer_id, occurred_at,
                   CAST(timezone('Europe/Moscow', occurred_at) AS DATE) AS event_date,
                   'v7' AS definition_version
            FROM (VALUES (4, TIMESTAMPTZ '2026-06-01 12:00:00+03'),
                         (5, TIMESTAMPTZ '2026-05-10 08:00:00+03'))
                 AS t(customer_id, occurred_at)""")
        con.execute("""CREATE TABLE segments.croissant_buyers AS SELECT CAST(customer_id AS BIGINT)
            AS customer_id, DATE '2026-06-10' AS as_of_date, 'v1' AS definition_version
            FROM (VALUES (1), (4)) AS t(customer_id)""")
        con.execute("""CREATE TABLE segments.lapsed AS SELECT CAST(2 AS BIGINT) AS customer_id,
            DATE '2026-06-10' AS as_of_date, 'v3' AS definition_version""")
        con.execute(f"""INSERT INTO {SEGMENT_MEMBERSHIP_HISTORY.name} VALUES
            ('croissant_buyers', 1, DATE '2026-06-01', NULL, 'v1'),
            ('croissant_buyers', 2, DATE '2026-06-01', DATE '2026-06-05', 'v1'),
            ('croissant_buyers', 3, DATE '2026-06-03', DATE '2026-06-07', 'v1'),
            ('croissant_buyers', 3, DATE '2026-06-07', DATE '2026-06-09', 'v1'),
            ('croissant_buyers', 4, DATE '2026-06-08', NULL, 'v1'),
            ('lapsed', 2, DATE '2026-06-05', NULL, 'v3')""")
        # types Parquet does not give back as they were, and some it does
        con.execute("""CREATE TABLE marts.kinds AS SELECT
            sum(x) AS total, CAST(340282366920938463463374607431768211455 AS UHUGEINT) // 10000000
                AS unsigned_total, {'n': sum(x)} AS in_struct, [sum(x)] AS in_list,
            CAST('ok' AS ENUM('sad', 'ok')) AS mood, CAST('0101' AS BIT) AS bits,
            CAST([1, 2] AS INTEGER[2]) AS pair, CAST('2020-01-01 10:00:00.123' AS TIMESTAMP_MS)
                AS at_ms, CAST('2020-01-01 10:00:00' AS TIMESTAMP_S) AS at_s,
            CAST(18446744073709551615 AS UBIGINT) AS unsigned, INTERVAL 3 DAY AS span,
            CAST('12:00:00+03' AS TIMETZ) AS noon, CAST(1.5 AS DECIMAL(18, 3)) AS amount,
            CAST('x' AS BLOB) AS raw, ['a'] AS tags
            FROM (VALUES (9223372036854775807), (9223372036854775807), (1)) AS t(x)""")
    return path


@pytest.fixture(scope="module")
def serving(warehouse: Path, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bi_history_serving")
    with connect(warehouse) as con:
        publish(con, folder, docs=DOCS)
    return folder


def U(day: str, time: str) -> str:
    """An instant as DuckDB writes it in UTC."""
    return f"2026-{day} {time}+00"


ANSWERS: dict[str, tuple[str, list[tuple]]] = {
    # June 1: not customer 4, whose 00:30 purchase is on Moscow's June 2
    "event_on": ("SELECT * FROM event_on('croissant_purchase', DATE '2026-06-01')", [
        ("1", "1", U("06-01", "06:00:00"), U("06-01", "06:00:00")),
        ("2", "2", U("06-01", "07:00:00"), U("06-01", "08:00:00"))]),
    "event_on_the_next_day": ("SELECT * FROM event_on('croissant_purchase', '2026-06-02')", [
        ("4", "1", U("06-01", "21:30:00"), U("06-01", "21:30:00"))]),
    "event_between": (
        "SELECT * FROM event_between('croissant_purchase', '2026-06-01', '2026-06-05')", [
            ("1", "3", U("06-01", "06:00:00"), U("06-05", "20:30:00")),
            ("2", "2", U("06-01", "07:00:00"), U("06-01", "08:00:00")),
            ("4", "1", U("06-01", "21:30:00"), U("06-01", "21:30:00"))]),
    # customer 1's three purchases span five days (June 1 to 5): within 5, not within 4
    "at_least_3_within_5": (
        "SELECT * FROM event_at_least('croissant_purchase', 3, 5, NULL, NULL)",
        [("1", "2026-06-05", "3")]),
    "at_least_3_within_4": (
        "SELECT * FROM event_at_least('croissant_purchase', 3, 4, NULL, NULL)", []),
    "at_least_2_within_1": (
        "SELECT * FROM event_at_least('croissant_purchase', 2, 1, NULL, NULL)",
        [("2", "2026-06-01", "2")]),
    "at_least_2_within_3_from_june_2": (
        "SELECT * FROM event_at_least('croissant_purchase', 2, 3, '2026-06-02', NULL)",
        [("1", "2026-06-05", "2")]),
    "at_least_2_within_3_to_june_4": (
        "SELECT * FROM event_at_least('croissant_purchase', 2, 3, NULL, DATE '2026-06-04')",
        [("1", "2026-06-03", "2"), ("2", "2026-06-01", "2")]),
    "members_on_june_4": ("SELECT * FROM segment_members('croissant_buyers', '2026-06-04')", [
        ("1", "2026-06-01", None), ("2", "2026-06-01", "2026-06-05"),
        ("3", "2026-06-03", "2026-06-07")]),
    # 2's membership ends on the 5th (valid_to is exclusive)
    "members_on_june_5": ("SELECT * FROM segment_members('croissant_buyers', '2026-06-05')", [
        ("1", "2026-06-01", None), ("3", "2026-06-03", "2026-06-07")]),
    "members_on_june_7": ("SELECT * FROM segment_members('croissant_buyers', '2026-06-07')", [
        ("1", "2026-06-01", None), ("3", "2026-06-07", "2026-06-09")]),
    "members_now": ("SELECT * FROM segment_members('croissant_buyers', NULL)", [
        ("1", "2026-06-01", None), ("4", "2026-06-08", None)]),
    "changes_in_june": (
        "SELECT * FROM segment_changes('croissant_buyers', '2026-06-01', '2026-06-30')", [
            ("1", "2026-06-01", "entered"), ("2", "2026-06-01", "entered"),
            ("3", "2026-06-03", "entered"), ("2", "2026-06-05", "left"),
            ("4", "2026-06-08", "entered"), ("3", "2026-06-09", "left")]),
    # 3's first membership ends on the 7th as the next begins: neither left nor entered
    "changes_june_5_to_8": (
        "SELECT * FROM segment_changes('croissant_buyers', '2026-06-05', '2026-06-08')", [
            ("2", "2026-06-05", "left"), ("4", "2026-06-08", "entered")]),
    "all_events": ("SELECT event, count(*), min(definition_version) FROM events._all_events "
                   "GROUP BY ALL ORDER BY ALL",
                   [("croissant_purchase", "7", "v1"), ("email_click", "2", "v7")]),
}
"""Each question: the query a BI user writes, and its rows (every value as text, UTC)."""

ERRORS: dict[str, tuple[str, str]] = {
    "unknown_event": (
        "SELECT * FROM event_on('croissant_purchas', '2026-06-01')",
        "no event named croissant_purchas in the BI snapshot; did you mean croissant_purchase?"),
    "unknown_segment": (
        "SELECT * FROM segment_members('nobody', NULL)",
        "no segment named nobody in the BI snapshot; segments: croissant_buyers, lapsed"),
    "no_days": (
        "SELECT * FROM event_at_least('croissant_purchase', 2, 0, NULL, NULL)",
        "times and within_days must be 1 or more"),
}
"""Questions the snapshot refuses, and the error each raises."""

VIEW_COMMENTS = {
    ("events", "croissant_purchase"): "Every purchase with a croissant.",
    ("segments", "croissant_buyers"): "Bought a croissant.",
    ("marts", "segment_membership_history"): SEGMENT_MEMBERSHIP_HISTORY.description,
    ("events", "email_click"): None,
    ("events", "_all_events"): snapshot.ALL_EVENTS_DOC,
}
COLUMN_COMMENTS = {
    ("events", "croissant_purchase", "order_id"): "The order it was in.",
    ("events", "croissant_purchase", "customer_id"): None,
    ("events", "croissant_purchase", "event_date"): LAYER_COLUMN_DOCS["events"]["event_date"],
    ("events", "email_click", "definition_version"):
        LAYER_COLUMN_DOCS["events"]["definition_version"],
    ("segments", "croissant_buyers", "customer_id"): "A buyer.",
    ("segments", "lapsed", "as_of_date"): LAYER_COLUMN_DOCS["segments"]["as_of_date"],
    ("marts", "segment_membership_history", "valid_to"):
        next(c.description for c in SEGMENT_MEMBERSHIP_HISTORY.columns if c.name == "valid_to"),
    ("events", "_all_events", "event"): ALL_EVENTS_COLUMNS["event"],
}
"""What BI tools show: the catalogue's, the framework's and the standard descriptions, and none
where nobody wrote one."""

INSPECT = {
    "views": "SELECT schema_name, view_name, comment FROM duckdb_views() "
             "WHERE database_name = current_database() AND NOT internal",
    "columns": "SELECT schema_name, table_name, column_name, comment FROM duckdb_columns() "
               "WHERE database_name = current_database() AND NOT internal",
    "kinds": "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = "
             "current_database() AND table_name = 'kinds' ORDER BY column_index",
    "total": "SELECT CAST(total AS VARCHAR), CAST(in_struct.n AS VARCHAR) FROM marts.kinds",
}

CLIENT = """
import json, sys
import duckdb
request = json.load(sys.stdin)
con = duckdb.connect(request["path"], read_only=True)
con.execute("SET TimeZone = 'UTC'")
out = {"version": duckdb.__version__, "results": {}}
for name, sql in request["queries"].items():
    try:
        out["results"][name] = {"rows": con.execute(sql).fetchall()}
    except duckdb.Error as err:
        out["results"][name] = {"error": str(err)}
print(json.dumps(out, default=str))
"""
"""What a BI tool's DuckDB does: open the snapshot read-only and run each query."""


def as_text(sql: str) -> str:
    return f"SELECT CAST(COLUMNS(*) AS VARCHAR) FROM ({sql})"


def ask(path: Path, queries: dict[str, str]) -> dict[str, dict]:
    """Each query's rows (lists) or error, in this process's DuckDB."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        out = {}
        for name, sql in queries.items():
            try:
                out[name] = {"rows": [list(r) for r in con.execute(sql).fetchall()]}
            except duckdb.Error as err:
                out[name] = {"error": str(err)}
        return out
    finally:
        con.close()


def questions() -> dict[str, str]:
    return {**{name: as_text(sql) for name, (sql, _) in ANSWERS.items()},
            **{name: sql for name, (sql, _) in ERRORS.items()}, **INSPECT}


def check_answers(results: dict[str, dict], warehouse_kinds: list) -> None:
    """``results`` (of :func:`questions`) are the answers worked out by hand."""
    for name, (_, rows) in ANSWERS.items():
        assert results[name] == {"rows": [list(r) for r in rows]}, name
    for name, (_, message) in ERRORS.items():
        assert message in results[name].get("error", ""), (name, results[name])
    views = {(s, v): c for s, v, c in results["views"]["rows"]}
    assert {k: views.get(k, "(no view)") for k in VIEW_COMMENTS} == VIEW_COMMENTS
    columns = {(s, t, c): d for s, t, c, d in results["columns"]["rows"]}
    assert {k: columns.get(k, "(no column)") for k in COLUMN_COMMENTS} == COLUMN_COMMENTS
    assert results["kinds"]["rows"] == warehouse_kinds
    assert results["total"]["rows"] == [[str(BIG), str(BIG)]]


def kinds_of(warehouse: Path) -> list[list[str]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return [list(r) for r in con.execute(INSPECT["kinds"]).fetchall()]
    finally:
        con.close()


def test_served_views_keep_the_warehouse_types_and_values(warehouse, serving):
    kinds = kinds_of(warehouse)
    assert ["total", "HUGEINT"] in kinds and ["mood", "ENUM('sad', 'ok')"] in kinds
    served = ask(serving / VIEWS_FILE, {"kinds": INSPECT["kinds"],
                                        "values": as_text("SELECT * FROM marts.kinds")})
    assert served["kinds"]["rows"] == kinds
    wh = duckdb.connect(str(warehouse), read_only=True)
    try:
        wh.execute("SET TimeZone = 'UTC'")
        values = wh.execute(as_text("SELECT * FROM marts.kinds")).fetchall()[0]
    finally:
        wh.close()
    names = [name for name, _ in kinds]
    noon = names.index("noon")  # a TIME WITH TIME ZONE comes back at its UTC offset
    assert (values[noon], served["values"]["rows"][0][noon]) == ("12:00:00+03", "09:00:00+00")
    assert {n: v for n, v in zip(names, served["values"]["rows"][0], strict=True)
            if n != "noon"} == {n: v for n, v in zip(names, values, strict=True) if n != "noon"}
    assert served["values"]["rows"][0][0] == str(BIG)  # exact beyond 2^53 (and 2^64)
    # in the file: DECIMAL(38,0), which Parquet has and every reader keeps exact
    file = json.loads((serving / MANIFEST_FILE).read_text())["tables"]["marts.kinds"][0]
    assert duckdb.sql(f"DESCRIBE SELECT total FROM '{file}'").fetchall()[0][1] == "DECIMAL(38,0)"


def test_history_macros_answer_as_worked_out_by_hand(warehouse, serving):
    check_answers(ask(serving / VIEWS_FILE, questions()), kinds_of(warehouse))


def test_a_duckdb_1_1_client_gets_the_same_answers_and_descriptions(warehouse, serving):
    assert (DUCKDB1 / "duckdb").is_dir(), (
        f"{DUCKDB1} is missing: run `make install` (it installs DuckDB 1.1.3 there for this test)")
    done = subprocess.run(
        [sys.executable, "-c", CLIENT], capture_output=True, text=True, check=True, timeout=120,
        input=json.dumps({"path": str(serving / VIEWS_FILE), "queries": questions()}),
        env={**os.environ, "PYTHONPATH": str(DUCKDB1)})
    answer = json.loads(done.stdout)
    assert answer["version"].startswith("1.1."), answer["version"]
    check_answers(answer["results"], kinds_of(warehouse))


def test_the_macros_read_only_the_event_asked_for(warehouse, tmp_path):
    with connect(warehouse) as con:
        publish(con, tmp_path, docs=DOCS)
    # email_click's June file made unreadable: only a query that reads it can fail
    june = next(p for p in json.loads((tmp_path / MANIFEST_FILE).read_text())["tables"][
        "events.email_click"] if "2026-06" in p)
    Path(june).write_bytes(b"not a Parquet file")
    got = ask(tmp_path / VIEWS_FILE, {
        "purchase": as_text("SELECT * FROM event_between('croissant_purchase', '2026-05-01', "
                            "'2026-06-30')"),
        "click": "SELECT * FROM event_on('email_click', '2026-06-01')"})
    assert [r[0] for r in got["purchase"]["rows"]] == ["1", "2", "3", "4"]
    assert "not a Parquet file" in got["click"]["error"] or "magic" in got["click"]["error"]


def test_descriptions_outlive_a_publish_without_the_catalogue(warehouse, tmp_path, monkeypatch):
    with connect(warehouse) as con:
        monkeypatch.setattr(snapshot, "PARQUET_LAYOUT", 1)
        first = publish(con, tmp_path, docs=DOCS)
        monkeypatch.setattr(snapshot, "PARQUET_LAYOUT", 2)
        # an erasure publishes without the catalogue: the last descriptions stay
        again = publish(con, tmp_path, since=None)
        assert publish(con, tmp_path).files_written == 0
    # files of an older layout are written again, once
    assert (again.files_written, again.files_reused) == (first.files_written, 0)
    got = ask(tmp_path / VIEWS_FILE, {"views": INSPECT["views"]})
    assert ["segments", "croissant_buyers", "Bought a croissant."] in got["views"]["rows"]


def cli(monkeypatch, capsys, serving: Path, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setenv("CRM_SERVING_DIR", str(serving))
    monkeypatch.setenv("CRM_TIMEZONE", "Europe/Moscow")
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_crm_members_and_crm_events_answer_as_the_macros(serving, monkeypatch, capsys, tmp_path):
    assert cli(monkeypatch, capsys, serving, "members", "croissant_buyers", "--on",
               "2026-06-05") == (0, "customer_id,valid_from,valid_to\n"
                                    "1,2026-06-01,\n3,2026-06-03,2026-06-07\n", "")
    assert cli(monkeypatch, capsys, serving, "members", "croissant_buyers")[1] == (
        "customer_id,valid_from,valid_to\n1,2026-06-01,\n4,2026-06-08,\n")
    # as a table, a member still in has an empty valid_to, not "None"
    assert [line.split() for line in cli(monkeypatch, capsys, serving, "members",
                                         "croissant_buyers", "--format", "table")[1].splitlines()
            ] == [["customer_id", "valid_from", "valid_to"], ["1", "2026-06-01"],
                  ["4", "2026-06-08"]]
    # instants in the business time zone: the 00:30 purchase of June 2
    assert cli(monkeypatch, capsys, serving, "events", "croissant_purchase", "--on",
               "2026-06-02")[1] == ("customer_id,occurrences,first_occurred_at,last_occurred_at\n"
                                    "4,1,2026-06-02 00:30:00+03,2026-06-02 00:30:00+03\n")
    code, out, _ = cli(monkeypatch, capsys, serving, "events", "croissant_purchase", "--from",
                       "2026-06-01", "--to", "2026-06-05", "--at-least", "2", "--format", "table")
    assert code == 0 and [line.split() for line in out.splitlines()] == [
        ["customer_id", "occurrences", "first_occurred_at", "last_occurred_at"],
        ["1", "3", "2026-06-01", "09:00:00+03", "2026-06-05", "23:30:00+03"],
        ["2", "2", "2026-06-01", "10:00:00+03", "2026-06-01", "11:00:00+03"]]
    for within, expected in ((5, "customer_id,reached_on,most_in_window\n1,2026-06-05,3\n"),
                             (4, "customer_id,reached_on,most_in_window\n")):
        assert cli(monkeypatch, capsys, serving, "events", "croissant_purchase", "--from",
                   "2026-06-01", "--to", "2026-06-30", "--at-least", "3", "--within",
                   str(within)) == (0, expected, "")


def test_crm_members_and_events_say_what_is_wrong_in_one_line(serving, monkeypatch, capsys,
                                                              tmp_path):
    for argv, code, message in [
        (["events", "croissant_purchas", "--on", "2026-06-01"], 1,
         "crm events: no event named croissant_purchas in the BI snapshot; did you mean "
         "croissant_purchase?"),
        (["members", "croissant_buyer"], 1, "crm members: no segment named croissant_buyer in "
                                            "the BI snapshot; did you mean croissant_buyers?"),
        (["members", "croissant_buyers", "--on", "2026-06-31"], 2,
         "crm members: --on '2026-06-31' is not a day (YYYY-MM-DD)"),
        (["events", "croissant_purchase", "--from", "2026-06-01"], 2,
         "crm events: give the days: --on D, or --from D1 --to D2"),
        (["events", "croissant_purchase", "--on", "2026-06-01", "--within", "3"], 2,
         "crm events: --within K goes with --at-least N"),
    ]:
        assert cli(monkeypatch, capsys, serving, *argv) == (code, "", message + "\n"), argv
    missing = tmp_path / "nowhere"
    assert cli(monkeypatch, capsys, missing, "members", "croissant_buyers") == (
        1, "", f"crm members: no BI snapshot at {missing / VIEWS_FILE}: any build publishes one "
               "(the serving/snapshot asset)\n")


def test_the_pipelines_snapshot_carries_the_catalogues_descriptions(built):
    """The serving/snapshot asset publishes with the SQL files' descriptions, and the macros
    answer on what the pipeline built."""
    d = load_project_catalog(built.settings).by_table()["segments.croissant_buyers"]
    assert d.description and d.column_docs
    got = ask(built.settings.serving_path / VIEWS_FILE, {
        "view": "SELECT comment FROM duckdb_views() WHERE schema_name = 'segments' "
                "AND view_name = 'croissant_buyers'",
        "columns": "SELECT column_name, comment FROM duckdb_columns() WHERE schema_name = "
                   "'segments' AND table_name = 'croissant_buyers' AND comment IS NOT NULL",
        "now": "SELECT customer_id FROM segment_members('croissant_buyers', NULL)",
        "table": "SELECT customer_id FROM segments.croissant_buyers ORDER BY 1"})
    assert got["view"]["rows"] == [[d.description]]
    assert dict(map(tuple, got["columns"]["rows"])) == {
        **{c: LAYER_COLUMN_DOCS["segments"][c] for c in ("as_of_date", "definition_version")},
        **d.column_docs}
    assert got["now"]["rows"] == got["table"]["rows"] != []
