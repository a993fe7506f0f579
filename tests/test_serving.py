"""Serving BI: a snapshot readers never share with the pipeline, rewritten only where it changed.

A hand-made warehouse (no pipeline needed): one table per served layer, an event table over two
months, and tables of layers BI does not read. Counts of files below are worked out by hand: one
Parquet file per table, one per month of an event table.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from crm_assets.serving import snapshot
from crm_assets.serving.snapshot import MANIFEST_FILE, SERVED_SCHEMAS, VIEWS_FILE, publish
from crm_assets.warehouse import connect
from crm_assets.warehouse.tables import FRAMEWORK_TABLES

FRAMEWORK = sorted(tuple(t.name.split(".")) for t in FRAMEWORK_TABLES
                   if t.view_sql is None and t.name.split(".")[0] in SERVED_SCHEMAS)
"""The framework's tables BI reads (the identity map, the segment history, ...): empty here, one
file each."""


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "crm.duckdb"
    with connect(path) as con:
        con.execute("CREATE TABLE core.customers AS SELECT * FROM "
                    "(VALUES (1, 'Анна'), (2, 'Иван')) t(customer_id, first_name)")
        con.execute("CREATE TABLE segments.croissant_buyers AS SELECT 1 AS customer_id")
        con.execute("""CREATE TABLE events.croissant_purchase AS SELECT * FROM (VALUES
            (1, TIMESTAMPTZ '2026-01-10 09:00:00+03', DATE '2026-01-10'),
            (2, TIMESTAMPTZ '2026-01-31 23:30:00+03', DATE '2026-01-31'),
            (1, TIMESTAMPTZ '2026-02-01 08:00:00+03', DATE '2026-02-01'))
            t(customer_id, occurred_at, event_date)""")
        con.execute("CREATE TABLE staging.orders AS SELECT 'O1' AS order_id")
    return path


def served(serving: Path, sql: str) -> int:
    """The number ``sql`` gives in a new BI process (a process keeps the database it opened)."""
    code = (f"import duckdb; con = duckdb.connect({str(serving / VIEWS_FILE)!r}, read_only=True); "
            f"print(con.execute({sql!r}).fetchone()[0])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_a_publish_serves_every_bi_table_and_rewrites_only_what_changed(warehouse, tmp_path):
    serving = tmp_path / "serving"
    with connect(warehouse) as con:
        first = publish(con, serving)
    # customers, croissant_buyers, 2 months of croissant_purchase, and the framework's (empty)
    # identity map, segment history, ...
    assert (first.tables, first.files_written, first.files_reused) == (
        3 + len(FRAMEWORK), 4 + len(FRAMEWORK), 0)
    assert first.rows == 2 + 1 + 3 + 0
    reader = duckdb.connect(str(serving / VIEWS_FILE), read_only=True)
    reader.execute("SET TimeZone = 'UTC'")
    assert reader.execute("SELECT customer_id, occurred_at, event_date FROM "
                          "events.croissant_purchase ORDER BY occurred_at").fetchall() == [
        (1, datetime(2026, 1, 10, 6, tzinfo=UTC), datetime(2026, 1, 10).date()),
        (2, datetime(2026, 1, 31, 20, 30, tzinfo=UTC), datetime(2026, 1, 31).date()),
        (1, datetime(2026, 2, 1, 5, tzinfo=UTC), datetime(2026, 2, 1).date())]
    # and every event's occurrences in one view, for the history macros
    assert reader.execute("SELECT table_schema, table_name FROM information_schema.tables "
                          "ORDER BY ALL").fetchall() == sorted([
        ("core", "customers"), ("events", "_all_events"), ("events", "croissant_purchase"),
        ("segments", "croissant_buyers"), *FRAMEWORK])
    # written for DuckDB 1.x drivers
    assert reader.execute("SELECT tags['storage_version'] FROM duckdb_databases() "
                          "WHERE database_name = current_database()").fetchone()[0] == "v1.0.0+"

    with connect(warehouse) as con:
        again = publish(con, serving)
        assert (again.files_written, again.files_reused) == (0, 4 + len(FRAMEWORK))
        # one more purchase in February: only February's file is written again
        con.execute("INSERT INTO events.croissant_purchase VALUES "
                    "(2, TIMESTAMPTZ '2026-02-02 10:00:00+03', DATE '2026-02-02')")
        changed = publish(con, serving)
    assert (changed.files_written, changed.files_reused) == (1, 3 + len(FRAMEWORK))
    assert served(serving, "SELECT count(*) FROM events.croissant_purchase") == 4
    # the session opened before keeps its snapshot, whole
    assert reader.execute("SELECT count(*) FROM events.croissant_purchase").fetchone() == (3,)
    reader.close()


def test_a_moved_warehouse_folder_keeps_its_snapshot_files(warehouse, tmp_path):
    """Restored elsewhere (another disk, another host path), a folder's snapshot goes on as it
    was: a table not rebuilt since the last publish is not read again (its build records say so,
    whatever its rows; here a segment is edited behind the records' back to show it), and the
    views read the files where they are now."""
    with connect(warehouse) as con:
        con.execute("INSERT INTO meta.built_versions (table_name, definition_version, batch, "
                    "built_at, grain) SELECT unnest(['core.customers', "
                    "'segments.croissant_buyers', 'events.croissant_purchase']), 'v1', 1, now(), "
                    "['customer_id']")
        first = publish(con, tmp_path / "old" / "serving")
        (tmp_path / "old").rename(tmp_path / "new")
        con.execute("INSERT INTO segments.croissant_buyers VALUES (2)")
        serving = tmp_path / "new" / "serving"
        again = publish(con, serving, since=1)
    assert (again.files_written, again.files_reused, again.files_removed) == (
        0, first.files_written, 0)
    assert served(serving, "SELECT count(*) FROM events.croissant_purchase") == 3
    assert served(serving, "SELECT count(*) FROM segments.croissant_buyers") == 1
    manifest = json.loads((serving / MANIFEST_FILE).read_text(encoding="utf-8"))
    files = [Path(p) for f in manifest["tables"].values() for p in f]
    assert len(files) == first.files_written
    assert all(p.is_relative_to(serving) and p.exists() for p in files)


def test_a_publish_after_a_night_rewrites_the_months_the_night_touched(warehouse, tmp_path):
    """A night that wrote two months of an event (a late day in January, today in March) has
    both written again, and February, which it did not touch, served from its file unread."""
    serving = tmp_path / "serving"

    def built(batch: int, days: list[str]) -> None:
        """The build records of a run (batch) that built the event's ``days``; the customers and
        the segment as built by batch 1."""
        con.execute("INSERT OR REPLACE INTO meta.built_versions (table_name, definition_version, "
                    "batch, built_at, grain) SELECT unnest(['core.customers', "
                    "'segments.croissant_buyers', 'events.croissant_purchase']), 'v1', 1, now(), "
                    "['customer_id']")
        con.execute("UPDATE meta.built_versions SET batch = ? "
                    "WHERE table_name = 'events.croissant_purchase'", [batch])
        con.execute("INSERT OR REPLACE INTO meta.event_days SELECT 'croissant_purchase', "
                    "CAST(d AS DATE), 1, ?, now() FROM unnest(?::VARCHAR[]) t(d)", [batch, days])

    with connect(warehouse) as con:
        con.execute("INSERT INTO events.croissant_purchase VALUES "
                    "(2, TIMESTAMPTZ '2026-03-05 10:00:00+03', DATE '2026-03-05')")
        built(1, ["2026-01-10", "2026-01-31", "2026-02-01", "2026-03-05"])
        first = publish(con, serving)
        con.execute("INSERT INTO events.croissant_purchase VALUES "
                    "(1, TIMESTAMPTZ '2026-01-15 12:00:00+03', DATE '2026-01-15'), "
                    "(1, TIMESTAMPTZ '2026-03-06 12:00:00+03', DATE '2026-03-06')")
        built(2, ["2026-01-15", "2026-03-06"])
        night = publish(con, serving, since=1)
    assert first.files_written == 5 + len(FRAMEWORK)  # 3 months, customers, croissant_buyers
    assert night.files_written == 2  # January and March, not February
    assert night.files_reused == first.files_written - 2
    months = ("SELECT list(n ORDER BY m) FROM (SELECT strftime(event_date, '%m') AS m, "
              "count(*)::VARCHAR AS n FROM events.croissant_purchase GROUP BY m)")
    code = (f"import duckdb; con = duckdb.connect({str(serving / VIEWS_FILE)!r}, read_only=True); "
            f"print(','.join(con.execute({months!r}).fetchone()[0]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "3,1,2"  # January 3 (one late), February 1, March 2


HISTORY = "marts.segment_membership_history"


def history_built(con: duckdb.DuckDBPyConnection, batch: int, parts: list[str]) -> None:
    """The build records of a segment run (batch) that wrote ``parts`` of the history."""
    con.execute("INSERT OR REPLACE INTO meta.built_versions (table_name, definition_version, "
                "batch, built_at, grain) VALUES (?, 'framework', ?, now(), "
                "['segment', 'customer_id'])", [HISTORY, batch])
    con.executemany("INSERT INTO meta.changed_parts VALUES (?, ?, ?)",
                    [(HISTORY, part, batch) for part in parts])


def test_a_publish_after_a_night_rewrites_the_open_memberships_and_the_month_it_closed(
        warehouse, tmp_path):
    """The membership history is served as its open rows and its closed rows by month of
    valid_to: a night that closed a membership in March and opened one has those two files
    written again, and the months of memberships closed before served from their files unread."""
    serving = tmp_path / "serving"

    with connect(warehouse) as con:
        con.execute(f"""INSERT INTO {HISTORY} VALUES
            ('a', 1, DATE '2026-01-05', DATE '2026-01-20', 'v1'),
            ('a', 2, DATE '2026-01-05', DATE '2026-02-10', 'v1'),
            ('a', 1, DATE '2026-02-01', NULL, 'v1'),
            ('a', 3, DATE '2026-02-15', NULL, 'v1')""")
        history_built(con, 1, ["*"])
        first = publish(con, serving)
        # a night as of March 2: 3 leaves, 4 enters
        con.execute(f"UPDATE {HISTORY} SET valid_to = DATE '2026-03-02' WHERE customer_id = 3")
        con.execute(f"INSERT INTO {HISTORY} VALUES ('a', 4, DATE '2026-03-02', NULL, 'v1')")
        history_built(con, 2, ["open", "2026-03"])
        night = publish(con, serving, since=1)
    tables = json.loads((serving / MANIFEST_FILE).read_text(encoding="utf-8"))["tables"]
    assert sorted(Path(p).parent.name for p in tables[HISTORY]) == [
        "2026-01", "2026-02", "2026-03", "open"]
    # the first publish: customers, croissant_buyers, the event's two months, the other
    # framework tables, and three parts of the history (January, February, open); the night:
    # open and March
    assert first.files_written == 4 + len(FRAMEWORK) - 1 + 3
    assert night.files_written == 2
    assert served(serving, f"SELECT count(*) FROM {HISTORY}") == 5
    assert served(serving, f"SELECT count(*) FROM {HISTORY} WHERE valid_to IS NULL") == 2
    assert served(serving, f"SELECT count(*) FROM {HISTORY} "
                           "WHERE valid_to = DATE '2026-03-02' AND customer_id = 3") == 1


def test_a_history_served_whole_before_is_split_whole_on_the_next_night(
        warehouse, tmp_path, monkeypatch):
    """A warehouse whose snapshot serves the membership history as one file (published by a
    release before the split) has every part of it written on the first night after the
    upgrade, and its old file no longer served beside them: the night's own parts alone would
    leave last night's rows next to today's."""
    serving = tmp_path / "serving"

    with connect(warehouse) as con:
        con.execute(f"""INSERT INTO {HISTORY} VALUES
            ('a', 1, DATE '2026-01-05', DATE '2026-01-20', 'v1'),
            ('a', 2, DATE '2026-01-05', NULL, 'v1'),
            ('a', 3, DATE '2026-02-15', NULL, 'v1')""")
        history_built(con, 1, ["*"])
        with monkeypatch.context() as before_the_split:
            before_the_split.delitem(snapshot.CLOSED_BY_MONTH, HISTORY)
            publish(con, serving)
        tables = json.loads((serving / MANIFEST_FILE).read_text(encoding="utf-8"))["tables"]
        assert [Path(p).parent.name for p in tables[HISTORY]] == ["all"]
        # the first night after the upgrade, as of March 2: 3 leaves, 4 enters
        con.execute(f"UPDATE {HISTORY} SET valid_to = DATE '2026-03-02' WHERE customer_id = 3")
        con.execute(f"INSERT INTO {HISTORY} VALUES ('a', 4, DATE '2026-03-02', NULL, 'v1')")
        history_built(con, 2, ["open", "2026-03"])
        night = publish(con, serving, since=1)
    tables = json.loads((serving / MANIFEST_FILE).read_text(encoding="utf-8"))["tables"]
    assert sorted(Path(p).parent.name for p in tables[HISTORY]) == ["2026-01", "2026-03", "open"]
    assert night.files_written == 3
    assert served(serving, f"SELECT count(*) FROM {HISTORY}") == 4
    assert served(serving, f"SELECT count(*) FROM {HISTORY} WHERE valid_to IS NULL") == 2


@pytest.mark.parametrize(("zone", "column_type", "searched"), [
    ("Europe/Moscow", "TIMESTAMPTZ", True),
    ("Europe/Berlin", "TIMESTAMPTZ", True),  # summer time: midnight is another UTC hour
    ("Asia/Kathmandu", "TIMESTAMPTZ", True),  # +05:45
    # on 1 November 2009 at 00:01 the clocks of St. John's went back to 23:01 on 31 October:
    # for an hour, later instants are in an earlier month, which start instants cannot tell
    ("America/St_Johns", "TIMESTAMPTZ", False),
    ("America/St_Johns", "TIMESTAMP", True),  # a clock-free column: the calendar's month
    ("America/St_Johns", "DATE", True),
])
def test_a_tables_months_are_told_by_their_start_instants_exactly_as_strftime_tells_them(
        zone, column_type, searched):
    """The month a row's file is named by is ``strftime`` of its month column in the business
    time zone; a publish computes it by comparing with the months' first instants, which must
    give the same month for every instant, or fall back to ``strftime`` where it cannot."""
    con = duckdb.connect()
    con.execute(f"SET TimeZone = '{zone}'")
    # every 7 minutes within a day of each month start from June 2009 to March 2010, and a NULL
    con.execute(f"""CREATE TABLE main.sales AS
        SELECT CAST(start + to_minutes(step * 7) AS {column_type}) AS ordered_at
        FROM (SELECT CAST(m AS TIMESTAMPTZ) AS start FROM range(TIMESTAMP '2009-06-01',
                                                                 TIMESTAMP '2010-04-01',
                                                                 INTERVAL 1 MONTH) t(m)),
             range(-206, 206) s(step)
        UNION ALL SELECT NULL""")
    table = snapshot._Table("main", "sales", [("ordered_at", con.execute(
        "SELECT data_type FROM duckdb_columns() WHERE table_name = 'sales'").fetchone()[0])])
    for months in (None, {"2009-10", "2010-01"}, {"2009-11"}):
        month = snapshot._month_of(con, table, months)
        if months != {"2009-11"}:  # (from November's start on, St. John's clock only goes on)
            assert (month != table.part) == searched
        (differ,) = con.execute(f"SELECT count(*) FROM main.sales WHERE {month} IS DISTINCT FROM "
                                "strftime(ordered_at, '%Y-%m')").fetchone()
        assert differ == 0
    (months_seen,) = con.execute(f"SELECT count(DISTINCT {snapshot._month_of(con, table)}) "
                                 "FROM main.sales").fetchone()
    assert months_seen == 11  # May 2009 (the day before June's start) to March 2010


def test_a_table_spanning_centuries_keeps_strftime_for_its_months():
    """A placeholder year far from the rest would make the search hold thousands of months."""
    con = duckdb.connect()
    con.execute("CREATE TABLE main.sales AS SELECT * FROM (VALUES (DATE '1900-01-01'), "
                "(DATE '2026-06-30')) t(event_date)")
    table = snapshot._Table("main", "sales", [("event_date", "DATE")])
    assert snapshot._month_of(con, table) == table.part
    con.execute("DELETE FROM main.sales WHERE event_date < DATE '2000-01-01'")
    assert snapshot._month_of(con, table) != table.part


def test_bi_readers_never_block_the_pipeline(warehouse, tmp_path):
    serving = tmp_path / "serving"
    with connect(warehouse) as con:
        publish(con, serving)
    reader = duckdb.connect(str(serving / VIEWS_FILE), read_only=True)
    try:
        with connect(warehouse) as con:  # the warehouse is not what the reader holds
            con.execute("INSERT INTO core.customers VALUES (3, 'Олег')")
            assert publish(con, serving).files_written == 1  # and the reader's file is not either
        assert served(serving, "SELECT count(*) FROM core.customers") == 3
    finally:
        reader.close()


def test_files_of_old_snapshots_go_once_no_recent_snapshot_uses_them(warehouse, tmp_path):
    serving = tmp_path / "serving"
    files_of = []
    with connect(warehouse) as con:
        for n in range(5):  # five snapshots, each with a different customers file
            con.execute(f"INSERT INTO core.customers VALUES ({10 + n}, 'x')")
            publish(con, serving)
            files_of.append(set(json.loads((serving / MANIFEST_FILE).read_text())["tables"][
                "core.customers"]))
    # all five are younger than a day: every file is kept for the sessions still on them
    assert all(Path(f).exists() for files in files_of for f in files)

    # two days later, the next publish keeps the three latest snapshots' files only
    manifest = json.loads((serving / MANIFEST_FILE).read_text())
    for generation in manifest["generations"]:
        generation["published_at"] = (datetime.fromisoformat(generation["published_at"])
                                      - timedelta(days=2)).isoformat()
    (serving / MANIFEST_FILE).write_text(json.dumps(manifest))
    with connect(warehouse) as con:
        result = publish(con, serving)  # nothing changed: the newest snapshot again
    assert result.files_removed == 2
    assert [all(Path(f).exists() for f in files) for files in files_of] == [
        False, False, True, True, True]


def test_a_large_part_is_written_whole_on_every_core_and_order_kept_for_the_rest(
        warehouse, tmp_path, monkeypatch):
    """Parts from UNORDERED_ROWS rows on are written without keeping the row order (faster);
    every row is served all the same, and the session's setting is as it was after."""
    monkeypatch.setattr(snapshot, "UNORDERED_ROWS", 1000)
    serving = tmp_path / "serving"
    with connect(warehouse) as con:
        con.execute("CREATE TABLE marts.big AS SELECT range AS n, range % 7 AS k "
                    "FROM range(250000)")
        con.execute("CREATE TABLE marts.small_sorted AS SELECT * FROM range(900) t(n) "
                    "ORDER BY n DESC")
        publish(con, serving)
        assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
    # every row once: 250,000 rows, n 0 .. 249,999, their sum 249,999 * 250,000 / 2
    assert served(serving, "SELECT count(DISTINCT n) FROM marts.big") == 250_000
    assert served(serving, "SELECT sum(n) FROM marts.big") == 249_999 * 250_000 // 2
    assert served(serving, "SELECT sum(k) FROM marts.big") == sum(i % 7 for i in range(250_000))
    # the small table reads back in its table's order: 899, 898, ..., 0
    assert served(serving, "SELECT count(*) FROM (SELECT n, row_number() OVER () AS i "
                           "FROM marts.small_sorted) WHERE n = 900 - i") == 900
