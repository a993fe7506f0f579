"""Nights that cost what changed, and give what a full refresh gives.

The tiny fixture (see test_pipeline.py) is built as of 2025-03-12 with event days from
2025-01-01, then two nights bring the files of tests/fixtures/nightly/<day>/. Worked out by hand:

* 2025-03-13: C5 and C6 are Мария Иванова with no contact in common (two people); C9 arrives, so
  O6 (rejected on the 12th for its unknown customer C9) and its line are staged; O9 is a late
  order of C3 (person 2) on 2025-01-15, a croissant. So croissant_purchase gains the 13th (O8)
  and, late, the 12th (O6) and 2025-01-15 (O9); first_purchase gains the 13th (person 4, O8)
  and, late, the 12th (person 6's O6) and 2025-01-15 (person 2's first purchase moves there
  from O3 on the 10th, which loses it).
* 2025-03-14: C7 holds C5's e-mail (case aside) and C6's phone (another format) under the same
  name: persons 4 and 5 become one, 4 (the older) surviving; C2 comes again with a later
  update (the first C2 row is superseded); O2 comes again as refunded, so the 10th loses its
  croissant purchase.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from datetime import date

import dagster as dg
import duckdb
import pytest
from conftest import FIXTURES, RUN_COLUMNS, Project, data_tables, make_project, rows_of

from crm_assets.functions.allow_list import RUN_MACROS
from crm_assets.serving.snapshot import VIEWS_FILE
from crm_assets.warehouse.state import RUN_MACRO_VALUES

NIGHTS = FIXTURES / "nightly"
D = date.fromisoformat
START = D("2025-01-01")

def bring(project: Project, night: str) -> None:
    for path in (NIGHTS / night).glob("*.csv"):
        shutil.copyfile(path, project.input_dir / path.name)



def late_partitions(project: Project, run_id: str, asset: str, flag: str = "rebuilt_late"
                    ) -> list[str]:
    """The partitions of ``asset`` the run reported beyond its own, marked ``flag`` (rebuilt
    late, or ``caught_up``: built for a night that did not run)."""
    records = project.instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    return sorted(r.event_log_entry.dagster_event.partition for r in records
                  if r.event_log_entry.dagster_event.asset_key.to_user_string() == asset
                  and r.event_log_entry.dagster_event.partition != run_id and
                  r.event_log_entry.dagster_event.event_specific_data.materialization.metadata
                  .get(flag) is not None)


@pytest.fixture(scope="module")
def nights(tmp_path_factory) -> tuple[Project, dict[str, str]]:
    project = make_project(tmp_path_factory.mktemp("nightly"), partition_start=START)
    first = project.build(as_of=D("2025-03-12"), first_day=START, last_day=D("2025-03-12"))
    assert first.success, first.error
    runs = {}
    for night in ("2025-03-13", "2025-03-14"):
        bring(project, night)
        result = project.nightly(D(night))
        assert result.success, result.error
        runs[night] = result.run_id
    return project, runs


def test_a_night_stages_only_its_rows_and_rebuilds_the_late_days(nights):
    project, runs = nights
    # O6 was rejected for its unknown customer; C9 arrived: staged, with its line
    assert project.query("SELECT order_id FROM staging.orders WHERE order_id = 'O6'") == [("O6",)]
    assert project.scalar("SELECT count(*) FROM staging.rejects WHERE reason LIKE '%O6%'") == 0
    # the late days of the first night were rebuilt in that run, and only they
    assert late_partitions(project, runs["2025-03-13"], "events/croissant_purchase") == [
        "2025-01-15", "2025-03-12"]
    assert late_partitions(project, runs["2025-03-13"], "events/first_purchase") == [
        "2025-01-15", "2025-03-10", "2025-03-12"]
    assert late_partitions(project, runs["2025-03-14"], "events/croissant_purchase") == [
        "2025-03-10"]
    assert project.query("SELECT event_date, order_id, customer_id FROM events.first_purchase "
                         "ORDER BY 1, 2") == [
        (D("2025-01-15"), "O9", 2), (D("2025-03-10"), "O1", 1), (D("2025-03-11"), "O4", 3),
        (D("2025-03-12"), "O6", 6), (D("2025-03-13"), "O8", 4)]
    assert project.query("SELECT event_date, order_id FROM events.croissant_purchase "
                         "ORDER BY 1, 2") == [
        (D("2025-01-15"), "O9"), (D("2025-03-10"), "O1"), (D("2025-03-10"), "O3"),
        (D("2025-03-12"), "O6"), (D("2025-03-13"), "O8")]
    # the trigger file of a late day was written again
    exports = project.settings.contacts_path / "exports" / "first_purchase"
    assert "6," in (exports / "2025-03-12.csv").read_text(encoding="utf-8")


def test_a_merge_and_a_superseded_record(nights):
    project, _ = nights
    assert project.query("SELECT from_customer_id, to_customer_id FROM meta.customer_merges") == [
        (5, 4)]
    assert project.query("SELECT source_customer_id, customer_id FROM core.customer_identity "
                         "WHERE source_customer_id IN ('C5', 'C6', 'C7') ORDER BY 1") == [
        ("C5", 4), ("C6", 4), ("C7", 4)]
    assert project.query("SELECT customer_id FROM core.orders WHERE order_id = 'O10'") == [(4,)]
    assert project.scalar("SELECT count(*) FROM core.customers WHERE customer_id = 5") == 0
    assert project.query("SELECT _row_number, reason FROM staging.rejects WHERE table_name = "
                         "'customers' AND reason LIKE 'superseded%'") == [
        (2, "superseded: source_customer_id C2 again in customers_2025-03-14.csv row 2 with "
            "other values")]
    assert project.query("SELECT email_opt_in FROM staging.customers "
                         "WHERE source_customer_id = 'C2'") == [(True,)]


def test_nights_give_exactly_what_a_full_refresh_gives(nights, tmp_path):
    project, _ = nights
    again = project.copy(tmp_path)
    result = again.build(as_of=D("2025-03-14"), first_day=START, last_day=D("2025-03-14"),
                         full_refresh=True)
    assert result.success, result.error
    tables = data_tables(project)
    assert tables == data_tables(again)
    assert {"staging.email_addresses", "core.customers", "events.first_purchase",
            "marts.segment_membership_history", "meta.customer_merges"} <= set(tables)
    for table in tables:
        assert rows_of(project, table) == rows_of(again, table), table
    # the same trigger files: a day's file says whom the e-mail tool could reach when the day
    # was built (C2's later opt-in does not rewrite the 10th's, sent long ago; a full refresh
    # writes every file again, with today's consent)
    def exported(p: Project) -> list[str]:
        return sorted(x.name for x in (p.settings.contacts_path / "exports").rglob("*.csv"))

    assert exported(project) == exported(again)


def test_a_late_row_older_than_every_built_day_builds_no_part_of_its_day(tmp_path):
    """The events built from 2025-03-01 only: O9, the first night's late order of 2025-01-15,
    falls on a day never built. The night leaves that day to a backfill rather than build the
    part of it its people make (recorded as built, and its trigger file sent: the welcome
    e-mail for a first purchase two months old). The built days it changes are rewritten:
    person 2's first purchase is no longer O3, so the 10th loses it, as a full build gives."""
    first = D("2025-03-01")
    project = make_project(tmp_path / "nights", partition_start=first)
    assert project.build(as_of=D("2025-03-12"), first_day=first, last_day=D("2025-03-12")).success
    bring(project, "2025-03-13")
    result = project.nightly(D("2025-03-13"))
    assert result.success, result.error

    events = [t for t in data_tables(project) if t.startswith("events.")]
    assert "events.first_purchase" in events
    for table in events:
        assert project.scalar(f"SELECT count(*) FROM {table} WHERE event_date < ?", [first]) == 0
    assert project.scalar("SELECT count(*) FROM meta.event_days WHERE event_date < ?",
                          [first]) == 0
    assert project.query("SELECT event_date, order_id, customer_id FROM events.first_purchase "
                         "ORDER BY 1, 2") == [
        (D("2025-03-10"), "O1", 1), (D("2025-03-11"), "O4", 3), (D("2025-03-12"), "O6", 6),
        (D("2025-03-13"), "O8", 4)]
    assert late_partitions(project, result.run_id, "events/first_purchase") == [
        "2025-03-10", "2025-03-12"]
    exports = project.settings.contacts_path / "exports"
    assert min(p.stem for p in exports.rglob("*.csv")) == "2025-03-01"

    whole = make_project(tmp_path / "whole", input_dir=project.input_dir, partition_start=first)
    build = whole.build(as_of=D("2025-03-13"), first_day=first, last_day=D("2025-03-13"))
    assert build.success, build.error
    for table in [t for t in events if t not in HISTORY]:  # the nights ran two as-of days
        assert rows_of(project, table) == rows_of(whole, table), table


def test_a_night_after_a_night_that_did_not_run_builds_that_day_too(tmp_path):
    """The night of 2025-03-13 does not run; the files of both nights are there for the night of
    the 14th, which builds the 13th too, whole (the people of the 14th's files alone would
    leave out O8, the 13th's first purchase): every event as a full build gives it, the 13th
    recorded as built and reported as a materialisation of its partition, its trigger file
    written."""
    first = D("2025-03-01")
    project = make_project(tmp_path / "nights", partition_start=first)
    assert project.build(as_of=D("2025-03-12"), first_day=first, last_day=D("2025-03-12")).success
    bring(project, "2025-03-13")
    bring(project, "2025-03-14")
    result = project.nightly(D("2025-03-14"))
    assert result.success, result.error

    assert (D("2025-03-13"), "O8", 4) in project.query(
        "SELECT event_date, order_id, customer_id FROM events.first_purchase")
    assert project.scalar("SELECT count(*) FROM meta.event_days WHERE event_date = ? AND "
                          "event = 'first_purchase'", [D("2025-03-13")]) == 1
    for asset in ("events/first_purchase", "exports/first_purchase"):
        assert late_partitions(project, result.run_id, asset, "caught_up") == ["2025-03-13"]
    exports = project.settings.contacts_path / "exports" / "first_purchase"
    assert "4," in (exports / "2025-03-13.csv").read_text(encoding="utf-8")

    whole = make_project(tmp_path / "whole", input_dir=project.input_dir, partition_start=first)
    build = whole.build(as_of=D("2025-03-14"), first_day=first, last_day=D("2025-03-14"))
    assert build.success, build.error
    events = [t for t in data_tables(project) if t.startswith("events.") and t not in HISTORY]
    assert "events.croissant_purchase" in events
    for table in events:
        assert rows_of(project, table) == rows_of(whole, table), table


FINGERPRINTS = """
import json, sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
views = con.execute("SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal "
                    "AND database_name = current_database()").fetchall()
out = {}
for schema, view in views:
    columns = [r[0] for r in con.execute(f'DESCRIBE "{schema}"."{view}"').fetchall()]
    row = ", ".join(f'"{c}"' for c in columns)
    n, h = con.execute(f'SELECT count(*), sum(hash({row}))::VARCHAR FROM "{schema}"."{view}"'
                       ).fetchone()
    out[f"{schema}.{view}"] = [columns, n, h]
print(json.dumps(out))
"""


def test_the_bi_snapshot_after_the_nights_serves_what_the_warehouse_holds(nights):
    """Every served table, row for row (count and hash of its served columns), as the warehouse
    holds it: the months a night rewrote and the files it kept (the event and fact months, the
    open and closed parts of the membership history) add up to the tables."""
    project, _ = nights
    done = subprocess.run([sys.executable, "-c", FINGERPRINTS,
                           str(project.settings.serving_path / VIEWS_FILE)],
                          capture_output=True, text=True, check=True)
    served = json.loads(done.stdout)
    assert {"marts.segment_membership_history", "core.order_items", "events.first_purchase",
            "events._all_events"} <= set(served)
    assert project.scalar("SELECT count(*) FROM marts.segment_membership_history "
                          "WHERE valid_to IS NOT NULL") > 0  # the nights closed memberships
    for table, (columns, rows, hashed) in served.items():
        if table == "events._all_events":  # a union of the event views, not a table
            continue
        row = ", ".join(f'"{c}"' for c in columns)
        assert project.query(f"SELECT count(*), sum(hash({row}))::VARCHAR FROM {table}") == [
            (rows, hashed)], table


def built_batches(project: Project) -> dict[str, int]:
    return dict(project.query("SELECT table_name, batch FROM meta.built_versions"))


def latest_metadata(project: Project, *key: str) -> dict:
    return {k: v.value for k, v in project.instance.get_latest_materialization_event(
        dg.AssetKey(list(key))).asset_materialization.metadata.items()}


def test_a_night_with_nothing_new_changes_nothing(nights, tmp_path):
    project, _ = nights
    again = project.copy(tmp_path)
    before = {t: rows_of(again, t) for t in data_tables(again)}
    built = built_batches(again)
    result = again.nightly(D("2025-03-14"))
    assert result.success, result.error
    assert {t: rows_of(again, t) for t in data_tables(again)} == before
    assert latest_metadata(again, "serving", "snapshot")["files_written"] == 0  # the same files
    # the models and segments computed as of the day read nothing new: none was computed again
    assert built_batches(again) == built
    features = latest_metadata(again, "core", "customer_features")
    assert features["unchanged"] is True
    croissant = latest_metadata(again, "segments", "croissant_buyers")
    assert croissant["unchanged"] is True
    assert croissant["members"] == project.scalar("SELECT count(*) FROM segments.croissant_buyers")


def test_a_night_with_other_lifecycle_thresholds_computes_the_features_again(nights, tmp_path):
    """The inputs digest holds the values of the run constants a query calls: nothing new came,
    but `lapsed_days` changed, so the features are computed again; core.customer_ids, which
    calls none, is left as it was."""
    assert set(RUN_MACRO_VALUES) == RUN_MACROS  # every run constant has its value in the digest
    project, _ = nights
    again = project.copy(tmp_path)
    stage = ("SELECT recency_days, lifecycle_stage FROM core.customer_features "
             "JOIN core.customer_identity USING (customer_id) WHERE source_customer_id = 'C3'")
    # person 2: first order O9 on 2025-01-15 (not new), last O3 on the 10th, 4 days before
    assert again.query(stage) == [(4, "active")]
    again.settings = dataclasses.replace(again.settings, lifecycle={"lapsed_days": 2})
    result = again.nightly(D("2025-03-14"))
    assert result.success, result.error
    assert again.query(stage) == [(4, "lapsed")]
    assert latest_metadata(again, "core", "customer_features")["unchanged"] is False
    assert latest_metadata(again, "core", "customer_ids")["unchanged"] is True


def test_a_night_with_no_new_file_still_moves_the_as_of_date(nights, tmp_path):
    """Nothing arrived for the 15th, but the day passed: what is computed as of a day is
    computed again (a day more since each last order), what is not is left as it is."""
    project, _ = nights
    again = project.copy(tmp_path)
    recency = "SELECT customer_id, recency_days FROM core.customer_features ORDER BY 1"
    before = again.query(recency)
    built = built_batches(again)
    result = again.nightly(D("2025-03-15"))
    assert result.success, result.error
    assert again.query(recency) == [(c, None if r is None else r + 1) for c, r in before]
    of = ("SELECT recency_days FROM core.customer_features JOIN core.customer_identity "
          "USING (customer_id) WHERE source_customer_id = ?")
    assert again.scalar(of, ["C4"]) == 4  # O4 on the 11th (O5 was cancelled)
    assert again.scalar(of, ["C6"]) == 1  # person 4's O10 on the 14th
    assert latest_metadata(again, "core", "customer_features")["unchanged"] is False
    assert latest_metadata(again, "segments", "croissant_buyers")["unchanged"] is False
    after = built_batches(again)
    assert after["core.customer_features"] > built["core.customer_features"]
    assert after["core.orders"] == built["core.orders"]  # no new order: merged nothing
    # core.customer_ids does not read the as-of date, and nothing it reads changed: as it was
    assert latest_metadata(again, "core", "customer_ids")["unchanged"] is True
    assert after["core.customer_ids"] == built["core.customer_ids"]


LAST = D("2026-06-30")
DEMO_START = D("2026-05-01")
DEMO_RUN_COLUMNS = RUN_COLUMNS | {"_loaded_at", "loaded_at", "file_mtime_ns", "first_seen_at",
                                  "merged_at", "raw_row"}
"""Also when each file was loaded (one night later) and the raw row as JSON (which holds it)."""
HISTORY = {"marts.segment_membership_history", "meta.segment_runs", "marts.segment_sizes_daily",
           "events.segment_entered", "events.segment_exited", "marts.event_daily_counts"}
"""What records each as-of day a run computed: the nights computed the 29th too (the event
counts are compared without the segment entries and exits)."""


def split_last_day(generated, base, last) -> None:
    """The generated files as the days before ``LAST`` and ``LAST``'s own files."""
    import duckdb

    base.mkdir()
    last.mkdir()
    day = LAST.isoformat()
    times = {"customers": "registered_at", "orders": "ordered_at", "interactions": "occurred_at",
             "sessions": "started_at"}
    con = duckdb.connect()
    for path in sorted(generated.glob("*.csv")):
        table = path.stem
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{path}', all_varchar = true)")
        if table in times:
            is_last = f"left(coalesce({times[table]}, ''), 10) = '{day}'"
        elif table == "order_items":
            is_last = (f"order_id IN (SELECT order_id FROM read_csv('{generated}/orders.csv', "
                       f"all_varchar = true) WHERE left(ordered_at, 10) = '{day}')")
        else:
            is_last = "false"
        con.execute(f"COPY (SELECT * FROM t WHERE NOT ({is_last})) TO '{base / path.name}' "
                    "(HEADER)")
        con.execute(f"COPY (SELECT * FROM t WHERE {is_last}) TO "
                    f"'{last / f'{table}_{day}.csv'}' (HEADER)")
        con.execute("DROP TABLE t")
    con.close()


def test_the_demo_last_night_gives_what_a_full_build_gives(tmp_path):
    """Demo data (the generator, test-sized): a build of the days before the last, then the
    last day's night, against one build of everything."""
    from crm_assets.demo import generate

    generate(tmp_path / "generated", customers=300, seed=11, start=DEMO_START, end=LAST)
    split_last_day(tmp_path / "generated", tmp_path / "base", tmp_path / "last")
    nights = make_project(tmp_path / "nights", input_dir=tmp_path / "base",
                          partition_start=DEMO_START)
    first = nights.build(as_of=D("2026-06-29"), first_day=DEMO_START, last_day=D("2026-06-29"))
    assert first.success, first.error
    for path in (tmp_path / "last").glob("*.csv"):
        shutil.copyfile(path, nights.input_dir / path.name)
    night = nights.nightly(LAST)
    assert night.success, night.error

    whole = make_project(tmp_path / "whole", input_dir=nights.input_dir,
                         partition_start=DEMO_START)
    build = whole.build(as_of=LAST, first_day=DEMO_START, last_day=LAST)
    assert build.success, build.error

    tables = [t for t in data_tables(nights) if t not in HISTORY]
    assert tables == [t for t in data_tables(whole) if t not in HISTORY]
    assert nights.scalar("SELECT count(*) FROM raw.orders WHERE _source_file LIKE '%06-30%'") > 0
    for table in tables:
        assert rows_of(nights, table, DEMO_RUN_COLUMNS) == rows_of(whole, table,
                                                                    DEMO_RUN_COLUMNS), table
    counts = ("SELECT * FROM marts.event_daily_counts WHERE event NOT LIKE 'segment%' "
              "ORDER BY ALL")
    assert nights.query(counts) == whole.query(counts)


def test_answers_of_other_cleaning_rules_are_judged_again(built, tmp_path):
    """A night checks only new e-mails; answers kept from other rules (a library upgrade, an
    edited cleaning function: another ``cleaning_version``) are all checked again."""
    project = built.copy(tmp_path)

    def older_rules(stale_version: bool) -> None:
        # anna@mail.ru (C3) as if a former validator had refused it, everywhere it went
        con = duckdb.connect(str(project.settings.warehouse_path))
        con.execute("UPDATE staging.email_addresses SET email = NULL, email_key = NULL, "
                    "issue = 'invalid e-mail' WHERE raw_value = 'anna@mail.ru'")
        con.execute("UPDATE staging.customers SET email = NULL, email_key = NULL "
                    "WHERE source_customer_id = 'C3'")
        if stale_version:
            con.execute("UPDATE meta.built_versions SET definition_version = 'older rules' "
                        "WHERE table_name IN ('staging.email_addresses', 'staging.phone_numbers',"
                        " 'staging.customers')")
        con.close()

    def anna() -> tuple:
        return project.query(
            "SELECT s.email, c.email FROM staging.customers s JOIN core.customer_identity i "
            "USING (source_customer_id) JOIN core.customers c ON c.customer_id = i.customer_id "
            "WHERE s.source_customer_id = 'C3'")[0]

    older_rules(stale_version=False)
    assert project.nightly(D("2025-03-13")).success
    assert anna()[0] is None  # the same rules: nothing new, nothing checked again

    older_rules(stale_version=True)
    assert anna() == (None, "anna@mail.ru")  # core took in nothing from that
    assert project.nightly(D("2025-03-14")).success
    assert anna() == ("anna@mail.ru", "anna@mail.ru")
    assert project.scalar("SELECT count(*) FROM staging.email_addresses") == project.scalar(
        "SELECT count(DISTINCT email) FROM raw.customers")
