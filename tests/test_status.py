"""``crm status``: what an operator checks in the morning, from the warehouse and the instance."""

from __future__ import annotations

import json
from datetime import date

import duckdb

from crm_assets.cli.main import main

ORDERS_HEADER = "order_id,customer_id,store_id,ordered_at,channel,status,total_amount\n"


def test_status_names_runs_missing_days_refused_files_and_reject_rates(built, tmp_path,
                                                                       monkeypatch, capsys):
    project = built.copy(tmp_path)  # built as of 2025-03-12, event days from 2025-03-01
    (project.input_dir / "orders_bad.csv").write_bytes((ORDERS_HEADER + "O9\n").encode("utf-16"))
    assert project.nightly(date(2025, 3, 13)).success
    project.use_from_cli(monkeypatch)

    assert main(["status", "--json"]) == 1  # something needs a person
    status = json.loads(capsys.readouterr().out)
    assert [(j["job"], j["status"]) for j in status["jobs"]] == [
        ("build_all", "SUCCESS"), ("nightly", "SUCCESS")]
    assert status["unfinished_runs"] == [] and status["claimed_slots"] == 0
    assert status["stale_assets"] == []
    yesterday = project.settings.yesterday()
    croissant = next(e for e in status["event_days"] if e["event"] == "croissant_purchase")
    assert croissant["built"] == 13 and croissant["last_built"] == "2025-03-13"
    assert croissant["missing_days"] == [f"{date(2025, 3, 14)}..{yesterday}"]
    assert croissant["missing"] == (yesterday - date(2025, 3, 13)).days
    assert croissant["next_night_builds"] == croissant["missing"]  # all after the last built
    (refused,) = status["refused_files"]
    assert refused["file"] == "orders_bad.csv" and "UTF-16 is not supported" in refused["reason"]
    # orders.csv: 7 rows, O6 (unknown customer C9) and O7 (negative amount) rejected
    orders = next(r for r in status["reject_rates"] if r["table"] == "orders")
    assert (orders["new_rows"], orders["rejected_rows"], orders["limit"]) == (7, 2, 0.5)
    assert orders["reasons"] == {"negative total_amount": 1, "unknown customer": 1}
    assert any(line.startswith("refused file waiting: ") for line in status["attention"])
    assert f"events.croissant_purchase: {croissant['missing']} day(s) not built: " \
           f"2025-03-14..{yesterday} (the next crm nightly builds the {croissant['missing']} " \
           "after 2025-03-13)" in status["attention"]

    assert main(["status"]) == 1
    text = capsys.readouterr().out
    assert "needs attention" in text and "orders" in text and "2/7 = 28.6%" in text


def test_status_says_which_missing_days_a_night_builds_and_which_a_backfill(built, tmp_path,
                                                                            monkeypatch, capsys):
    """Event days from 2025-02-20 now, built from 2025-03-01 to 2025-03-12: the nine days before
    wait for a backfill (a night builds only the days after the last one built)."""
    project = built.copy(tmp_path)
    project.use_from_cli(monkeypatch)
    monkeypatch.setenv("CRM_PARTITION_START", "2025-02-20")

    assert main(["status", "--json"]) == 1
    status = json.loads(capsys.readouterr().out)
    yesterday = project.settings.yesterday()
    croissant = next(e for e in status["event_days"] if e["event"] == "croissant_purchase")
    assert croissant["missing_days"] == ["2025-02-20..2025-02-28", f"2025-03-13..{yesterday}"]
    after = (yesterday - date(2025, 3, 12)).days
    assert croissant["next_night_builds"] == after
    assert (f"events.croissant_purchase: {after + 9} day(s) not built: 2025-02-20..2025-02-28, "
            f"2025-03-13..{yesterday} (the next crm nightly builds the {after} after 2025-03-12; "
            "crm build --first-day 2025-02-20 --last-day 2025-02-28 builds the other 9)"
            ) in status["attention"]


def test_a_day_before_the_first_partition_is_flagged_and_a_full_refresh_deletes_it(
        built, tmp_path, monkeypatch, capsys):
    """What a night of a release before 2026-12-08 could leave: part of a day before the first
    partition (2025-03-01), here O1's croissant purchase copied onto 2025-01-15."""
    project = built.copy(tmp_path)
    con = duckdb.connect(str(project.settings.warehouse_path))
    con.execute("INSERT INTO events.croissant_purchase SELECT * REPLACE (occurred_at - "
                "INTERVAL 54 DAY AS occurred_at, DATE '2025-01-15' AS event_date) "
                "FROM events.croissant_purchase WHERE order_id = 'O1'")
    con.execute("INSERT INTO meta.event_days VALUES ('croissant_purchase', DATE '2025-01-15', 1, "
                "1, now())")
    con.close()
    project.use_from_cli(monkeypatch)

    def croissant() -> dict:
        main(["status", "--json"])
        status = json.loads(capsys.readouterr().out)
        return next(e for e in status["event_days"] if e["event"] == "croissant_purchase"), \
            status["attention"]

    days, attention = croissant()
    assert days["days_before_partition_start"] == 1
    assert any(line.startswith("events.croissant_purchase: 1 day(s) before the first partition "
                               "(2025-03-01) hold rows") for line in attention)

    result = project.build(as_of=date(2025, 3, 12), first_day=date(2025, 3, 1),
                           last_day=date(2025, 3, 12), full_refresh=True)
    assert result.success, result.error
    assert project.scalar("SELECT count(*) FROM events.croissant_purchase "
                          "WHERE event_date < DATE '2025-03-01'") == 0
    days, attention = croissant()
    assert days["days_before_partition_start"] == 0
    assert not any("before the first partition" in line for line in attention)
