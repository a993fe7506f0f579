"""Versions end to end: edit real SQL files of a temporary project, plan, rebuild, read the history.

One warehouse is built once from the tiny fixture; then, as a data engineer would: cosmetic edits
(layout, comments, keyword case, identifier case and quoting) must change nothing; logic edits must
be listed by ``crm plan`` with everything downstream, rebuilt by ``crm plan --apply`` (the event's
days as one run), leave the old version in ``meta.definition_versions``, and stamp new rows with the
new version. The planning rules for half-rebuilt events are checked on their own, without a build.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import dagster as dg
import pytest

from crm_assets.catalog.definition import UnknownName, resolve_table
from crm_assets.cli.main import main
from crm_assets.project import load_project_catalog
from crm_assets.tools.plan import BuiltState, _event_ranges, compress_days
from crm_assets.tools.versions import VersionRecord, format_history

D = date.fromisoformat
SEGMENT, EVENT, ITEMS = "segments.croissant_buyers", "events.croissant_purchase", "core.order_items"


def _edit(path, *replacements: tuple[str, str]) -> None:
    text = path.read_text(encoding="utf-8")
    for old, new in replacements:
        assert text.count(old) == 1, f"{path.name} no longer holds {old!r}: update this test"
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")


def _versions(project) -> dict[str, str]:
    by_table = load_project_catalog(project.settings).by_table()
    return {t: by_table[t].version for t in (SEGMENT, EVENT, ITEMS)}


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out


def test_edit_plan_apply_and_history(built, tmp_path, monkeypatch, capsys):
    project = built.copy(tmp_path)  # as of AS_OF, event days from the 1st
    project.use_from_cli(monkeypatch)
    v1 = _versions(project)
    sql = project.sql_dir

    # cosmetic edits: same versions, nothing to rebuild
    _edit(sql / "segments" / "croissant_buyers.sql",
          ("select\n    customer_id,\n    min(", 'SELECT\n  "customer_id" ,\n      MIN('),
          ("from croissant_lines\n", "FROM   croissant_lines  -- one row per order line\n"),
          ("group by customer_id", "/* per person */ GROUP BY\n    CUSTOMER_ID"))
    _edit(sql / "core" / "order_items.sql",
          ("from items as i", 'FROM "items"   AS "I"'),
          ("i.quantity * i.unit_price as line_amount", "I.QUANTITY*i.unit_price AS line_amount"))
    assert _versions(project) == v1
    code, out = _run(capsys, "plan", "--as-of", "2025-03-12")
    assert code == 0 and out.startswith("Nothing to rebuild"), out

    # logic edits of a segment and an event: planned with what reads them, then applied
    _edit(sql / "segments" / "croissant_buyers.sql",
          ("and status = 'completed'", "and status = 'completed'\n        and quantity > 0"))
    _edit(sql / "events" / "croissant_purchase.sql",
          ("where category = 'croissant'", "where category = 'croissant'\n    and quantity > 0"))
    v2 = _versions(project)
    assert v2[SEGMENT] != v1[SEGMENT] and v2[EVENT] != v1[EVENT] and v2[ITEMS] == v1[ITEMS]
    code, out = _run(capsys, "plan", "--as-of", "2025-03-12", "--json", "--apply")
    assert code == 0
    plan = json.loads(out)
    assets = {a["asset"]: a for a in plan["assets"]}
    assert {n for n, a in assets.items() if a["reason"] != "downstream"} == {SEGMENT, EVENT}
    assert assets[SEGMENT]["built_versions"] == [v1[SEGMENT]]
    assert assets[SEGMENT]["disk_version"] == v2[SEGMENT]
    assert assets[EVENT]["ranges"] == [["2025-03-01", "2025-03-12"]]  # every built day
    assert assets["marts.segment_sizes_daily"]["because_of"] == [SEGMENT]  # via the history
    # a Python asset, over every event: segment_entered reads the history croissant_buyers writes
    assert assets["marts.event_daily_counts"]["because_of"] == [EVENT, SEGMENT]
    # and the events over the segment history, on the days built
    over_history = {"events.segment_entered", "events.segment_exited"}
    assert {n for n, a in assets.items() if a["reason"] == "downstream"
            and not n.startswith("marts.") and n != "serving.snapshot"} == over_history
    assert all(assets[n]["ranges"] == [["2025-03-01", "2025-03-12"]] for n in over_history)
    assert assets["serving.snapshot"]["reason"] == "downstream"  # BI gets the rebuilt tables
    runs = plan["runs"]
    assert SEGMENT in runs[0]["assets"] and runs[0]["first_day"] is None
    assert runs[1] == {"assets": [EVENT, *sorted(over_history)], "first_day": "2025-03-01",
                       "last_day": "2025-03-12"}
    assert "marts.event_daily_counts" in runs[2]["assets"] and len(runs) == 3
    assert "serving.snapshot" in runs[2]["assets"]  # last, after the events it publishes
    ranged = project.instance.get_runs(filters=dg.RunsFilter(tags={
        "dagster/asset_partition_range_start": "2025-03-01",
        "dagster/asset_partition_range_end": "2025-03-12"}))
    selections = sorted(sorted(k.to_user_string() for k in r.asset_selection or ())
                        for r in ranged)
    assert selections == [[], ["events/croissant_purchase", "events/segment_entered",
                               "events/segment_exited"]]
    # the build (all), the plan's run

    # new rows carry the new versions; both versions stay in the history
    assert project.query(f"SELECT DISTINCT definition_version FROM {SEGMENT}") == [(v2[SEGMENT],)]
    assert project.query(f"SELECT DISTINCT definition_version FROM {EVENT}") == [(v2[EVENT],)]
    for table in (SEGMENT, EVENT):
        layer, name = table.split(".")
        assert project.query(
            "SELECT definition_version FROM meta.definition_versions WHERE layer = ? AND name = ? "
            "ORDER BY first_materialized_at", [layer, name]) == [(v1[table],), (v2[table],)]
    code, out = _run(capsys, "plan", "--as-of", "2025-03-12")
    assert code == 0 and out.startswith("Nothing to rebuild"), out

    code, out = _run(capsys, "versions", "croissant_buyers")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (f"{SEGMENT}: 2 materialised version(s); on disk: {v2[SEGMENT][:12]}, "
                        "already materialised")
    assert lines[2].split()[:2] == ["1", v1[SEGMENT][:12]]
    assert lines[3].split()[:2] == ["2", v2[SEGMENT][:12]] and lines[3].endswith("<- on disk")
    assert f"diff {v1[SEGMENT][:12]} -> {v2[SEGMENT][:12]}:" in lines
    assert "+        and quantity > 0" in lines

    # a logic edit upstream invalidates what reads it, events on every built day
    _edit(sql / "core" / "order_items.sql", ("I.QUANTITY*i.unit_price AS line_amount",
                                             "round(i.quantity * i.unit_price, 2) AS line_amount"))
    code, out = _run(capsys, "plan", "--as-of", "2025-03-12", "--json")
    assets = {a["asset"]: a for a in json.loads(out)["assets"]}
    assert assets[ITEMS]["reason"] == "changed"
    assert assets[SEGMENT]["reason"] == assets[EVENT]["reason"] == "downstream"
    assert assets[EVENT]["ranges"] == [["2025-03-01", "2025-03-12"]]
    assert not any(n.startswith(("raw.", "staging.")) for n in assets)


# --------------------------------------------------------------------------------------------
# planning rules, without a warehouse


def _days(first: str, n: int) -> list[date]:
    return [D(first) + timedelta(days=i) for i in range(n)]


def test_compress_days():
    days = [*_days("2025-01-01", 3), D("2025-01-05"), *_days("2025-12-31", 2)]
    assert compress_days(reversed(days)) == [(D("2025-01-01"), D("2025-01-03")),
                                             (D("2025-01-05"), D("2025-01-05")),
                                             (D("2025-12-31"), D("2026-01-01"))]
    assert compress_days([]) == []


def test_event_ranges_after_a_half_finished_rebuild():
    built = set(_days("2025-03-01", 10))
    # rows of the old version on the 2nd and 9th; new version on the 5th; no rows elsewhere
    state = BuiltState(exists=True, version="new", built_days=built, days={
        D("2025-03-02"): frozenset({"old"}), D("2025-03-05"): frozenset({"new"}),
        D("2025-03-09"): frozenset({"old", "new"})})
    default = (D("2025-01-01"), D("2025-03-31"))
    # empty days next to stale ones go with them; the fresh 5th splits the ranges
    assert _event_ranges(state, "new", False, default) == [(D("2025-03-01"), D("2025-03-04")),
                                                           (D("2025-03-06"), D("2025-03-10"))]
    assert _event_ranges(state, "new", True, default) == [(D("2025-03-01"), D("2025-03-10"))]
    fresh = BuiltState(exists=True, version="new", built_days=built,
                       days={D("2025-03-05"): frozenset({"new"})})
    assert _event_ranges(fresh, "new", False, default) == []
    assert _event_ranges(BuiltState(exists=False), "new", False, default) == [default]
    empty = BuiltState(exists=True, version="old", built_days=built)
    assert _event_ranges(empty, "new", False, default) == [(D("2025-03-01"), D("2025-03-10"))]


def test_resolve_table():
    tables = ["core.customers", "staging.customers", "segments.croissant_buyers"]
    assert resolve_table("croissant_buyers", tables) == "segments.croissant_buyers"
    assert resolve_table("core.customers", tables) == "core.customers"
    with pytest.raises(UnknownName, match="ambiguous: core.customers, staging.customers"):
        resolve_table("customers", tables)
    with pytest.raises(UnknownName, match="unknown definition 'marts.nope'"):
        resolve_table("marts.nope", tables)


def test_history_shows_what_the_next_run_changes():
    from datetime import UTC, datetime

    record = VersionRecord("a" * 64, "select 1 as x\n", datetime(2025, 3, 1, tzinfo=UTC), "run-1")
    text = format_history("marts.t", [record], "b" * 64, "select 2 as x\n")
    assert text.splitlines()[0] == ("marts.t: 1 materialised version(s); on disk: bbbbbbbbbbbb, "
                                    "NOT materialised yet")
    assert "diff aaaaaaaaaaaa -> bbbbbbbbbbbb (on disk, not materialised):" in text
    assert "-select 1 as x" in text and "+select 2 as x" in text
