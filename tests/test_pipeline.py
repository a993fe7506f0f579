"""The whole graph, materialised from a tiny hand-written fixture into a temporary warehouse.

The fixture (tests/fixtures/tiny) and what it must give, worked out by hand:

* customers: C1 and C2 are one person (same e-mail up to case, same phone in two formats, names in
  swapped order); C3 and C4 are two others; the 5th record has no customer_id and is rejected.
  Ids go by registration: C1 -> 1 (2025-01-05), C3 -> 2 (2025-01-10), C2 -> 1, C4 -> 3.
* orders: O6 (unknown customer C9) and O7 (negative amount) are rejected; O5 is cancelled.
  O1 was at 00:30 Moscow time on 2025-03-10 (21:30 UTC the day before) and belongs to the Moscow
  day 2025-03-10. O3 was at 01:00 on 2025-03-11 in Novosibirsk (UTC+7), i.e. 21:00 Moscow time on
  2025-03-10. So the croissant purchases are O1, O2 (person 1) and O3 (person 2), all on 2025-03-10.
* order item O3/2 names an unknown product (P99) and is rejected.
* interactions and sessions have no file: empty tables, not a crash.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date

import dagster as dg
import duckdb
from conftest import TINY as FIXTURES_TINY
from conftest import check_results, materialized

D = date.fromisoformat


def test_full_build_gives_hand_computed_tables(built, monkeypatch, capsys):
    project = built  # as of 2025-03-12, event days 2025-03-01 to 12
    assert project.query("SELECT source_customer_id, customer_id FROM core.customer_identity "
                         "ORDER BY 1") == [("C1", 1), ("C2", 1), ("C3", 2), ("C4", 3)]
    assert project.query(
        "SELECT table_name, _source_file, _row_number, reason FROM staging.rejects ORDER BY ALL"
    ) == [
        ("customers", "customers.csv", 5, "missing customer_id"),
        ("order_items", "order_items.csv", 5, "unknown product: P99"),
        # the lines of the rejected orders O6 and O7 go with them
        ("order_items", "order_items.csv", 8, "unknown or rejected order: O6"),
        ("order_items", "order_items.csv", 9, "unknown or rejected order: O7"),
        ("orders", "orders.csv", 6, "unknown customer: C9"),
        ("orders", "orders.csv", 7, "negative total_amount: -50.00"),
    ]
    # comma decimal read as a decimal
    assert project.scalar("SELECT total_amount FROM core.orders WHERE order_id = 'O2'") == 300
    # the segment: person 1 bought croissants in O1 and O2, person 2 in O3; person 3's was cancelled
    assert project.query(
        "SELECT customer_id, croissant_orders, as_of_date FROM segments.croissant_buyers ORDER BY 1"
    ) == [(1, 2, D("2025-03-12")), (2, 1, D("2025-03-12"))]
    # the event: three purchases, all on the Moscow day 2025-03-10, including the one at 00:30
    assert project.query(
        "SELECT order_id, customer_id, event_date FROM events.croissant_purchase ORDER BY 1"
    ) == [("O1", 1, D("2025-03-10")), ("O2", 1, D("2025-03-10")), ("O3", 2, D("2025-03-10"))]
    assert project.query("SELECT event, event_date, occurrences, customers "
                         "FROM marts.event_daily_counts ORDER BY ALL") == [
        ("croissant_purchase", D("2025-03-10"), 3, 2),
        # first purchases: O1 (person 1) and O3 (person 2) on the 10th, O4 (person 3) on the 11th
        ("first_purchase", D("2025-03-10"), 2, 2),
        ("first_purchase", D("2025-03-11"), 1, 1),
        # no segment_entered: the first day segments are computed is their starting population
    ]
    # everyone's first order is within 30 days of the as-of date: all three are new customers
    assert project.query("SELECT customer_id FROM segments.lifecycle_new ORDER BY 1") == [
        (1,), (2,), (3,)]
    assert project.query("SELECT customer_id, orders_total, recency_days, lifecycle_stage "
                         "FROM core.customer_features ORDER BY 1") == [
        (1, 2, 2, "new"), (2, 1, 2, "new"), (3, 1, 1, "new")]
    # optional sources without a file are empty typed tables
    assert project.scalar("SELECT count(*) FROM core.interactions") == 0
    assert project.scalar("SELECT count(*) FROM raw.sessions") == 0

    # the welcome chain's daily trigger file (first_purchase is tagged `trigger`): of the first
    # purchases on the 10th, person 1 withdrew e-mail consent (C2, the latest choice) and person
    # 2 gave it; person 3's on the 11th has no consent. One file per day of the backfill.
    exports = project.settings.contacts_path / "exports" / "first_purchase"
    assert len(list(exports.glob("*.csv"))) == 12
    assert (exports / "2025-03-10.csv").read_text(encoding="utf-8").splitlines() == [
        "customer_id,audience_group,first_name,contact", "2,target,Анна,anna@mail.ru"]
    assert (exports / "2025-03-11.csv").read_text(encoding="utf-8").splitlines() == [
        "customer_id,audience_group,first_name,contact"]

    # BI reads the same answers from the published snapshot, never from the warehouse file
    bi = duckdb.connect(str(project.settings.serving_path / "crm.duckdb"), read_only=True)
    try:
        assert bi.execute("SELECT customer_id, croissant_orders FROM segments.croissant_buyers "
                          "ORDER BY 1").fetchall() == [(1, 2), (2, 1)]
        assert bi.execute("SELECT order_id, event_date FROM events.croissant_purchase "
                          "ORDER BY 1").fetchall() == [
            ("O1", D("2025-03-10")), ("O2", D("2025-03-10")), ("O3", D("2025-03-10"))]
        served = {r[0] for r in bi.execute("SELECT DISTINCT schema_name FROM duckdb_views() "
                                           "WHERE NOT internal").fetchall()}
        assert served == {"core", "segments", "events", "marts"}  # not raw, staging or meta
    finally:
        bi.close()

    # `crm customer` finds the person from any of their source ids
    from crm_assets.cli.main import main

    project.use_from_cli(monkeypatch)
    capsys.readouterr()
    assert main(["customer", "C2", "--source"]) == 0
    out = capsys.readouterr().out
    assert "customer_id            1" in out
    assert "source records: C1 (email+name), C2 (email+name)" in out
    assert "segments now: croissant_buyers (since 2025-03-12)" in out
    assert out.startswith("person 1 (customer_id: the warehouse's person id), found by source "
                          "record 'C2'\n")
    # the two id spaces are named: a person id without --source, a source id with it
    assert main(["customer", "2"]) == 0
    assert capsys.readouterr().out.startswith("person 2 (customer_id: the warehouse's person "
                                              "id), found by customer_id 2\n")
    assert main(["customer", "C3"]) == 2
    assert "customer_id must be a number (or use --source for 'C3')" in capsys.readouterr().err


def test_second_build_changes_nothing(built, tmp_path):
    project = built.copy(tmp_path)
    tables = ("raw.customers", "raw.orders", "meta.loaded_files", "core.customer_identity",
              "segments.croissant_buyers", "events.croissant_purchase",
              "marts.segment_membership_history", "staging.rejects")
    before = {t: project.scalar(f"SELECT count(*) FROM {t}") for t in tables}
    second = project.build(as_of=D("2025-03-12"), first_day=D("2025-03-01"),
                           last_day=D("2025-03-12"))
    assert second.success, second.error
    after = {t: project.scalar(f"SELECT count(*) FROM {t}") for t in tables}
    assert after == before
    # the day's entries are still reported as the day's, not as "none since the last run"
    assert project.query("SELECT members, entered, exited FROM meta.segment_runs "
                         "WHERE segment = 'croissant_buyers'") == [(2, 2, 0)]
    assert before["raw.customers"] == 5 and before["meta.loaded_files"] == 5


def test_a_changed_segment_computed_again_the_same_day_keeps_the_days_net_change(built,
                                                                                  tmp_path):
    """A segment changed on disk and computed again as of the day it was computed: someone who
    entered that day and no longer qualifies never was a member (no row of theirs is left
    open), and the day's figures are its net change, not the difference between the two runs."""
    project = built.copy(tmp_path)
    path = project.sql_dir / "segments" / "croissant_buyers.sql"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "group by customer_id", "group by customer_id\nhaving count(distinct order_id) >= 2"),
        encoding="utf-8")
    assert project.build(as_of=D("2025-03-12")).success
    # person 1 bought croissants twice, person 2 once (both entered on the 12th before)
    assert project.query("SELECT customer_id, valid_from, valid_to "
                         "FROM marts.segment_membership_history "
                         "WHERE segment = 'croissant_buyers' ORDER BY 1") == [
        (1, D("2025-03-12"), None)]
    assert project.query("SELECT members, entered, exited FROM meta.segment_runs "
                         "WHERE segment = 'croissant_buyers'") == [(1, 1, 0)]


def test_segment_history_moves_forward_with_the_as_of_date(project):
    assert project.build(as_of=D("2025-03-09")).success
    assert project.scalar("SELECT count(*) FROM segments.croissant_buyers") == 0
    assert project.build(as_of=D("2025-03-10")).success
    assert project.query("SELECT customer_id, valid_from, valid_to "
                         "FROM marts.segment_membership_history "
                         "WHERE segment = 'croissant_buyers' ORDER BY 1") == [
        (1, D("2025-03-10"), None), (2, D("2025-03-10"), None)]
    # who was a member on a past date
    on_the_9th = project.scalar(
        "SELECT count(*) FROM marts.segment_membership_history WHERE segment = 'croissant_buyers'"
        " AND valid_from <= DATE '2025-03-09' AND (valid_to IS NULL OR valid_to > '2025-03-09')")
    assert on_the_9th == 0
    # an earlier date than recorded is refused, and nothing changes
    late = project.build(as_of=D("2025-03-09"))
    assert not late.success
    assert "history is recorded up to 2025-03-10" in late.error
    assert project.scalar("SELECT count(*) FROM marts.segment_membership_history "
                          "WHERE segment = 'croissant_buyers'") == 2


def test_segment_history_is_rebuilt_from_a_past_day(built, tmp_path, monkeypatch, capsys):
    """``crm segment-history``: a backfill after the fact, e.g. for a segment added today."""
    project = built.copy(tmp_path)
    # the build recorded the 12th only: both croissant buyers "entered" then
    assert project.query("SELECT customer_id, valid_from FROM marts.segment_membership_history "
                         "WHERE segment = 'croissant_buyers' ORDER BY 1") == [
        (1, D("2025-03-12")), (2, D("2025-03-12"))]
    project.use_from_cli(monkeypatch)
    from crm_assets.cli.main import main

    capsys.readouterr()
    assert main(["segment-history", "croissant_buyers", "lifecycle_new",
                 "--from", "2025-03-08"]) == 0
    out = capsys.readouterr().out.splitlines()
    # O1, O2 and O3 were bought on the 10th (Moscow time): members from the 10th, not the 12th.
    # lifecycle_new reads core.customer_features, recomputed as of each day: persons 1 and 2
    # ordered first on the 10th, person 3 on the 11th (O4)
    assert [line.split() for line in out[1:]] == [
        ["croissant_buyers", "2025-03-08", "0", "0", "0"],
        ["croissant_buyers", "2025-03-09", "0", "0", "0"],
        ["croissant_buyers", "2025-03-10", "2", "2", "0"],
        ["croissant_buyers", "2025-03-11", "2", "0", "0"],
        ["croissant_buyers", "2025-03-12", "2", "0", "0"],
        ["lifecycle_new", "2025-03-08", "0", "0", "0"],
        ["lifecycle_new", "2025-03-09", "0", "0", "0"],
        ["lifecycle_new", "2025-03-10", "2", "2", "0"],
        ["lifecycle_new", "2025-03-11", "3", "1", "0"],
        ["lifecycle_new", "2025-03-12", "3", "0", "0"]]
    # the features are as of the last day again, as the build left them
    assert project.query("SELECT customer_id, recency_days FROM core.customer_features "
                         "ORDER BY 1") == [(1, 2), (2, 2), (3, 1)]
    assert project.query("SELECT customer_id, valid_from, valid_to "
                         "FROM marts.segment_membership_history "
                         "WHERE segment = 'croissant_buyers' ORDER BY 1") == [
        (1, D("2025-03-10"), None), (2, D("2025-03-10"), None)]
    # what reads the history was refreshed: sizes over the rebuilt days, and the BI snapshot
    assert project.query("SELECT size_date, members FROM marts.segment_sizes_daily "
                         "WHERE segment = 'croissant_buyers' ORDER BY 1") == [
        (D("2025-03-08"), 0), (D("2025-03-09"), 0), (D("2025-03-10"), 2), (D("2025-03-11"), 2),
        (D("2025-03-12"), 2)]
    assert project.scalar("SELECT count(*) FROM segments.croissant_buyers") == 2

    # a rebuild must reach the last recorded day; a refusal changes nothing
    assert main(["segment-history", "croissant_buyers", "--from", "2025-03-01",
                 "--to", "2025-03-11"]) == 1
    assert "history is recorded up to 2025-03-12" in capsys.readouterr().err
    assert project.scalar("SELECT min(as_of_date) FROM meta.segment_runs "
                          "WHERE segment = 'croissant_buyers'") == D("2025-03-08")


def test_campaign_audiences_from_the_bi_snapshot(built, monkeypatch, capsys, tmp_path):
    """Hand-computed reachability: person 1 (C1+C2) withdrew e-mail consent on C2 (the latest
    choice) but kept SMS from C1; person 2 (C3) consented to everything; person 3 (C4) to nothing.
    """
    built.use_from_cli(monkeypatch)
    from crm_assets.cli.main import main

    def bucket(seed: str, customer_id: int) -> int:  # the documented rule, computed here
        return int(hashlib.md5(f"{seed}:{customer_id}".encode()).hexdigest()[:8], 16) % 10000

    def audience(*args) -> tuple[str, list[list[str]]]:
        out = tmp_path / "audience.csv"
        capsys.readouterr()
        assert main(["audience", *args, "--out", str(out)]) == 0
        return capsys.readouterr().out.strip(), [
            line.split(",") for line in out.read_text(encoding="utf-8").splitlines()[1:]]

    report, rows = audience("croissant_buyers", "--channel", "email")
    assert rows == [["2", "target", "Анна", "anna@mail.ru"]]
    assert report.startswith("croissant_buyers: 2 people, 1 reachable by email; 1 target, "
                             "0 holdout")
    _, rows = audience("croissant_buyers", "--channel", "sms")
    assert rows == [["1", "target", "Иван", "+79161234567"],
                    ["2", "target", "Анна", "+79031112233"]]

    # a 50% holdout: who is held out follows the md5 of "<seed>:<id>", the same on every run
    _, rows = audience("croissant_buyers", "--channel", "sms", "--holdout", "50",
                       "--seed", "spring-2025")
    expected = [[str(c), "holdout" if bucket("spring-2025", c) < 5000 else "target"]
                for c in (1, 2)]
    assert [r[:2] for r in rows] == expected
    # a sample first: buckets of "spring-2025" are 3267 (person 1) and 6858 (person 2); with
    # 30% held out (buckets < 3000) and 20% contacted (3000 to 4999), only person 1 is a target
    assert (bucket("spring-2025", 1), bucket("spring-2025", 2)) == (3267, 6858)
    report, rows = audience("croissant_buyers", "--channel", "sms", "--holdout", "30",
                            "--sample", "20", "--seed", "spring-2025")
    assert [r[:2] for r in rows] == [["1", "target"]]
    assert "1 target, 0 holdout" in report
    # the welcome chain's trigger: person 3's first purchase on the 11th, but no consent
    report, rows = audience("first_purchase", "--day", "2025-03-11")
    assert rows == [] and report.startswith("first_purchase: 1 people, 0 reachable by email")

    assert main(["audience", "first_purchase"]) == 1  # an event needs its day
    assert "give the day" in capsys.readouterr().err


def test_partition_rerun_replaces_exactly_its_day(built, tmp_path):
    project = built.copy(tmp_path)
    con_sql = ("INSERT INTO events.croissant_purchase SELECT customer_id, "
               "occurred_at + INTERVAL 1 DAY, order_id || '-stale', store_id, croissants, "
               "event_date + 1, definition_version "
               "FROM events.croissant_purchase WHERE order_id = 'O2'")
    import duckdb

    con = duckdb.connect(str(project.settings.warehouse_path))
    con.execute(con_sql)
    con.close()
    # re-running 2025-03-10 leaves the (stale) row of the 11th alone
    assert project.build(as_of=D("2025-03-12"), first_day=D("2025-03-10"),
                         last_day=D("2025-03-10")).success
    assert project.query("SELECT event_date, count(*) FROM events.croissant_purchase "
                         "GROUP BY 1 ORDER BY 1") == [(D("2025-03-10"), 3), (D("2025-03-11"), 1)]
    # re-running the 11th removes it
    assert project.build(as_of=D("2025-03-12"), first_day=D("2025-03-11"),
                         last_day=D("2025-03-11")).success
    assert project.query("SELECT event_date, count(*) FROM events.croissant_purchase "
                         "GROUP BY 1 ORDER BY 1") == [(D("2025-03-10"), 3)]


ORDERS_HEADER = "order_id,customer_id,store_id,ordered_at,channel,status,total_amount\n"


def test_refused_file_is_set_aside_and_the_night_goes_on_with_the_good_files(built, tmp_path):
    project = built.copy(tmp_path)
    (project.input_dir / "orders_2025-03-13.csv").write_text(
        ORDERS_HEADER + "O8,C3,S1,2025-03-13 10:00:00,in_store,completed,120.00\n",
        encoding="utf-8")
    (project.input_dir / "order_items_2025-03-13.csv").write_text(
        "order_id,line_number,product_id,quantity,unit_price\nO8,1,P1,1,120.00\n",
        encoding="utf-8")
    bad = project.input_dir / "orders" / "late.csv"
    bad.parent.mkdir()
    bad.write_text("order_id,customer_id,store_id,channel,status,total_amount\n"
                   "O9,C1,S1,in_store,completed,10.00\n", encoding="utf-8")
    why = (f"{bad}: line 1: missing required column(s) 'ordered_at' of table 'orders' "
           "(header has: order_id, customer_id, store_id, channel, status, total_amount)")

    result = project.nightly(D("2025-03-13"))
    assert result.success, result.error
    # set aside with its reason, recorded, reported by a red check on raw/orders
    aside = bad.parent / "_refused" / "late.csv"
    assert not bad.exists() and aside.exists()
    assert (bad.parent / "_refused" / "late.csv.reason.txt").read_text() == why + "\n"
    assert project.query("SELECT source_file, reason, set_aside_to FROM meta.refused_files") == [
        ("orders/late.csv", why, str(aside))]
    checks = check_results(project, result.run_id)
    passed, text = checks[("raw/orders", "no_refused_files")]
    assert not passed and why in text and str(aside) in text
    assert checks[("raw/order_items", "no_refused_files")] == (True, "no refused file waiting")
    # the good file went all the way: core, that day's events, segments, the BI snapshot
    assert project.scalar("SELECT count(*) FROM core.orders WHERE order_id = 'O8'") == 1
    assert project.query("SELECT count(*) FROM events.croissant_purchase "
                         "WHERE event_date = DATE '2025-03-13'") == [(1,)]
    done = materialized(project, result.run_id)
    assert {"segments/croissant_buyers", "serving/snapshot"} <= done
    bi = duckdb.connect(str(project.settings.serving_path / "crm.duckdb"), read_only=True)
    try:
        assert bi.execute("SELECT count(*) FROM core.orders WHERE order_id = 'O8'"
                          ).fetchone() == (1,)
    finally:
        bi.close()
    assert project.scalar("SELECT count(*) FROM raw.orders") == 8  # nothing of the bad file

    # fixed bytes under the same name load the next night, and the check turns green
    bad.write_text(ORDERS_HEADER + "O9,C1,S1,2025-03-13 18:00:00,in_store,completed,10.00\n",
                   encoding="utf-8")
    result = project.nightly(D("2025-03-13"))
    assert result.success, result.error
    assert project.scalar("SELECT count(*) FROM core.orders WHERE order_id = 'O9'") == 1
    assert check_results(project, result.run_id)[("raw/orders", "no_refused_files")] == (
        True, "no refused file waiting")


def test_a_file_whose_rows_are_all_rejected_fails_the_reject_rate_check_and_stops_the_night(
        built, tmp_path):
    project = built.copy(tmp_path)
    (project.input_dir / "orders_bad_dates.csv").write_text(
        ORDERS_HEADER + "O8,C3,S1,1989-03-13 10:00:00,in_store,completed,120.00\n"
        "O9,C3,S1,1989-03-14 10:00:00,in_store,completed,120.00\n"
        "O10,C1,S9,2025-03-13 10:00:00,in_store,completed,120.00\n", encoding="utf-8")
    result = project.nightly(D("2025-03-13"))
    assert not result.success
    assert "staging__orders" in result.error and "reject_rate" in result.error
    passed, text = check_results(project, result.run_id)[("staging/orders", "reject_rate")]
    assert not passed
    assert text.startswith("3 of 3 new rows of raw.orders rejected (100.0%; limit 50%): "
                           "implausible ordered_at (before earliest_plausible_date 1990-01-01) "
                           "2, unknown store 1.")
    done = materialized(project, result.run_id)
    assert "staging/orders" in done  # its rows are judged and kept (the rejects with why) ...
    assert not {"core/orders", "core/order_items", "segments/croissant_buyers",
                "serving/snapshot"} & done  # ... but nothing is built on them
    assert "core/customers" in done  # what does not read staging.orders goes on


def test_cli_runs_print_each_step_as_it_happens_unless_quiet(built, tmp_path, monkeypatch,
                                                             capsys):
    from crm_assets.cli.main import main
    project = built.copy(tmp_path)
    project.use_from_cli(monkeypatch)
    assert main(["nightly", "--day", "2025-03-13"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"run \S+ of nightly started", lines[0])
    steps = [line.split()[1:] for line in lines[1:-1]]
    assert steps[0] == ["core/rfm_segment_map", "started"]  # reads no raw table
    # each step starts, then ends with its time and rows (5 of the 7 orders are kept)
    done = {s[0]: " ".join(s[1:]) for s in steps if s[1] == "done"}
    assert re.fullmatch(r"done in \d+\.\d s, 5 rows", done["staging/orders"])
    assert re.fullmatch(r"done in \d+\.\d s, 7 rows", done["raw/orders"])
    assert len(done) == sum(s[1] == "started" for s in steps)
    assert re.fullmatch(rf"run \S+ succeeded: {len(done)} steps done in \d+\.\d s", lines[-1])
    assert main(["nightly", "--day", "2025-03-13", "--quiet"]) == 0
    assert "started" not in capsys.readouterr().err


def test_a_cli_run_is_a_run_of_its_job_where_the_ui_looks(built, tmp_path, monkeypatch, capsys):
    from dagster._core.storage.tags import REPOSITORY_LABEL_TAG

    from crm_assets.cli.main import main
    project = built.copy(tmp_path)
    project.use_from_cli(monkeypatch)
    assert main(["nightly", "--day", "2025-03-13", "--quiet"]) == 0
    # the job page's query (dagster-graphql's Pipeline.runs): the job, in its code location
    label = "__repository__@crm_assets.definitions"  # workspace.yaml's python_module
    runs = project.instance.get_runs(filters=dg.RunsFilter(
        job_name="nightly", tags={REPOSITORY_LABEL_TAG: label}))
    assert len(runs) == 1
    origin = runs[0].remote_job_origin  # what the timeline groups runs by
    assert origin.repository_origin.code_location_origin.location_name == "crm_assets.definitions"
    assert origin.job_name == "nightly"
    # and the build the fixture ran through Python is one of build_all's
    assert project.instance.get_runs(filters=dg.RunsFilter(
        job_name="build_all", tags={REPOSITORY_LABEL_TAG: label}))


def test_an_email_written_with_at_for_the_sign_still_finds_its_person(built, tmp_path):
    project = built.copy(tmp_path)
    header = (FIXTURES_TINY / "customers.csv").read_text(encoding="utf-8").splitlines()[0]
    (project.input_dir / "customers_2025-03-13.csv").write_text(
        header + "\nC10,Иван,Петров,ivan at yandex.ru,,М,1990-03-15,Москва,S1,"
        "2025-03-13 10:00:00,,,,2025-03-13 10:00:00\n", encoding="utf-8")
    assert project.nightly(D("2025-03-13")).success
    ids = dict(project.query("SELECT source_customer_id, customer_id FROM core.customer_identity"))
    assert ids["C10"] == ids["C1"] == 1  # C1 wrote ivan@yandex.ru
    assert project.query("SELECT email, email_key, value_issues FROM staging.customers "
                         "WHERE source_customer_id = 'C10'") == [
        (None, "ivan@yandex.ru", "invalid email: An email address must have an @-sign. "
                                 "(matched as ivan@yandex.ru) (ivan at yandex.ru)")]
    # the golden record keeps the valid address, never the guessed one
    assert project.scalar("SELECT email FROM core.customers WHERE customer_id = 1") == \
        "ivan@yandex.ru"
