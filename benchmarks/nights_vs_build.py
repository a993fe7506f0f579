"""Several nights in a row against a full refresh of the same files: do they give the same?

Run: ``python benchmarks/nights_vs_build.py [--persons N] [--nights K] [--seed S] [--work DIR]
[--out FILE]`` (not part of ``make bench``: it checks results, not speed).

``crm generate`` writes a small chain's files (2,000 persons, 2025-10-01 to 2026-06-30). Each of
the last ``K`` days (default 7) becomes a night's files: the day's new customers, orders and
their lines, interactions and sessions, plus late orders (a quarter of the orders of the day 61
days earlier, and their lines, held back until then), new versions of 1 % of the customer records
(consent to e-mail changed, ``updated_at`` that day), and two new records that each hold the name
and e-mail of one record known before and the phone of another of the same name, so the night
merges persons known before (the generator's own dirt, the same person under several records,
typos, placeholders, rarely does so over a few days).
The days before are built once (event days from 2026-04-01), then ``crm nightly`` runs for each
night's day in turn, its files added first. Then a copy of that warehouse and Dagster instance is
built again from raw (``crm build --full-refresh`` as of the last day, the same event days): a
copy, because ids are stable, so the persons the nights merged keep the ids they were given (a
warehouse built from nothing would number every later person one lower per merge). Every table is
compared, row for row (count and hash of the rows, the columns saying when or by which run a row
was written left out), but the weekly customer-base model and what its scores decide
(:data:`MODEL`).
And after the nights, every view of the BI snapshot must serve what its warehouse table holds,
and no event table may hold a day before the first day built (which the full refresh, rebuilding
its window only, would keep too).
Results go to ``benchmarks/results/nights_vs_build.json``; the exit status is 1 if any differs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).parent))
from kill_trials import (  # noqa: E402 (a sibling script)
    CRM,
    NIGHT_EVENTS_FROM,
    NIGHT_START,
    ROOT,
    fingerprint,
    night_environment,
)

LAST = date(2026, 6, 30)
LATE_DAYS = 61
TIMES = {"customers": "registered_at", "orders": "ordered_at", "interactions": "occurred_at",
         "sessions": "started_at"}
MODEL = {"meta.clv_models", "core.customer_predictions", "segments.high_clv",
         "segments.likely_to_buy_30d", "segments.likely_to_churn"}
"""The customer-base model and what is scored with it: fitted weekly (``fit_clv``), not nightly,
so the nights score with the model the first build fitted and the full refresh with its own.
Left out of the comparison, and so are their rows in the tables of every segment (the history,
the marts) and the counts of segment entries and exits (:func:`without_model`)."""


def without_model(table: str, columns: list[str]) -> str | None:
    """The rows of ``table`` that do not come from the model's scores."""
    segments = ", ".join(f"'{t.split('.')[1]}'" for t in MODEL if t.startswith("segments."))
    if table == "marts.event_daily_counts":
        return "event NOT IN ('segment_entered', 'segment_exited')"
    kept = [f"{c} NOT IN ({segments})" for c in ("segment", "segment_a", "segment_b")
            if c in columns]
    return " AND ".join(kept) or None


def served_mismatches(warehouse: Path) -> list[str]:
    """The BI snapshot's views whose rows are not their warehouse table's (its served columns):
    the publish of each night wrote only the months and parts that night changed."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        con.execute(f"ATTACH '{warehouse.parent / 'serving' / 'crm.duckdb'}' AS served "
                    "(READ_ONLY)")
        views = con.execute("SELECT schema_name, view_name FROM duckdb_views() WHERE "
                            "database_name = 'served' AND NOT internal AND NOT starts_with("
                            "view_name, '_')").fetchall()
        wrong = []
        for schema, view in views:
            columns = [r[0] for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = 'served' AND "
                "schema_name = ? AND table_name = ?", [schema, view]).fetchall()]
            row = ", ".join(f'"{c}"' for c in columns)
            sums = [con.execute(f"SELECT count(*), sum(hash({row}))::HUGEINT FROM {db}"
                                f'"{schema}"."{view}"').fetchone() for db in ("served.", "")]
            if sums[0] != sums[1]:
                wrong.append(f"{schema}.{view}")
        return wrong
    finally:
        con.close()


def outside_built_days(warehouse: Path, first: date) -> list[str]:
    """The event tables holding rows of days before ``first`` (no run built those days), and
    ``meta.event_days`` if it records any: a full refresh rebuilds only its window, so the
    comparison alone would not see them."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = [f"events.{t}" for (t,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'events'").fetchall()]
        return [t for t in [*tables, "meta.event_days"] if con.execute(
            f"SELECT count(*) FROM {t} WHERE event_date < ?", [first]).fetchone()[0]]
    finally:
        con.close()


def split(generated: Path, base: Path, nights: Path, days: list[date]) -> dict[str, dict]:
    """The generated files as the base and one folder of files per night; rows per night file."""
    base.mkdir(parents=True)
    con = duckdb.connect()
    day_list = "[" + ", ".join(f"DATE '{d}'" for d in days) + "]"
    # the night an order arrives: its own day, or (a quarter of those of a day 61 days before a
    # night) that night
    con.execute(f"""
        CREATE TABLE arrival AS
        SELECT order_id, CASE
            WHEN list_contains({day_list}, CAST(left(ordered_at, 10) AS DATE))
                THEN CAST(left(ordered_at, 10) AS DATE)
            WHEN list_contains({day_list}, CAST(left(ordered_at, 10) AS DATE) + {LATE_DAYS})
                 AND hash(order_id) % 4 = 0
                THEN CAST(left(ordered_at, 10) AS DATE) + {LATE_DAYS}
            END AS night
        FROM read_csv('{generated}/orders.csv', all_varchar = true)
        WHERE ordered_at IS NOT NULL AND try_cast(left(ordered_at, 10) AS DATE) IS NOT NULL""")
    counts: dict[str, dict] = {d.isoformat(): {} for d in days}
    for path in sorted(generated.glob("*.csv")):
        table = path.stem
        source = f"read_csv('{path}', all_varchar = true)"
        if table in ("orders", "order_items"):
            night = "(SELECT night FROM arrival a WHERE a.order_id = t.order_id)"
        elif table in TIMES:
            night = (f"CASE WHEN list_contains({day_list}, try_cast(left({TIMES[table]}, 10) "
                     f"AS DATE)) THEN try_cast(left({TIMES[table]}, 10) AS DATE) END")
        else:
            night = "NULL"
        con.execute(f"CREATE OR REPLACE TABLE t AS SELECT * FROM {source}")
        con.execute(f"CREATE OR REPLACE TABLE placed AS SELECT *, {night} AS _night FROM t")
        con.execute(f"COPY (SELECT * EXCLUDE (_night) FROM placed WHERE _night IS NULL) "
                    f"TO '{base / path.name}' (HEADER)")
        for d in days:
            folder = nights / d.isoformat()
            folder.mkdir(parents=True, exist_ok=True)
            extra = ""
            if table == "customers":
                # new versions of 1 % of the records known before; and two records that each
                # join two persons known before (one's name and e-mail, the other's phone)
                known = f"(SELECT * FROM placed WHERE _night IS NULL OR _night < DATE '{d}')"
                extra = (f" UNION ALL SELECT * EXCLUDE (_night) REPLACE (CASE email_opt_in WHEN "
                         f"'true' THEN 'false' ELSE 'true' END AS email_opt_in, '{d} 12:00:00' "
                         f"AS updated_at) FROM {known} WHERE hash(customer_id, DATE '{d}') % 100 "
                         f"= 0 UNION ALL (SELECT a.* EXCLUDE (_night) REPLACE ('BRIDGE-{d}-' || "
                         f"a.customer_id AS customer_id, b.phone AS phone, '{d} 11:00:00' AS "
                         f"registered_at, '{d} 11:00:00' AS updated_at) FROM {known} a JOIN "
                         f"{known} b ON a.first_name = b.first_name AND a.last_name = b.last_name "
                         f"AND a.email <> b.email AND a.phone <> b.phone AND a.customer_id < "
                         f"b.customer_id ORDER BY hash(a.customer_id, b.customer_id, DATE '{d}') "
                         f"LIMIT 2)")
            counts[d.isoformat()][table] = con.execute(
                f"COPY (SELECT * EXCLUDE (_night) FROM placed WHERE _night = DATE '{d}'{extra}) "
                f"TO '{folder / f'{table}_{d}.csv'}' (HEADER)").fetchone()[0]
    con.close()
    return counts


def run(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(argv[1:])} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return round(time.perf_counter() - started, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=2000)
    parser.add_argument("--nights", type=int, default=7)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip", type=int, nargs="*", default=[],
                        help="nights (1 = the first) that do not run: their files wait for the "
                             "next night, which catches their days up")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "nights_vs_build.json")
    parser.add_argument("--work", type=Path,
                        default=Path(os.environ.get("TMPDIR", "/tmp")) / "crm-nights-vs-build")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    days = [LAST - timedelta(days=args.nights - 1 - i) for i in range(args.nights)]
    generated, nights_dir, whole_dir = (args.work / n for n in ("generated", "nights", "whole"))
    subprocess.run([CRM, "generate", "--customers", str(args.persons), "--out", str(generated),
                    "--seed", str(args.seed), "--start", NIGHT_START.isoformat(), "--end",
                    LAST.isoformat()], check=True, capture_output=True)
    counts = split(generated, nights_dir / "input", args.work / "night_files", days)
    before = (days[0] - timedelta(days=1)).isoformat()
    env = night_environment(nights_dir)
    times = {"build_before": run([CRM, "build", "--as-of", before, "--first-day",
                                  NIGHT_EVENTS_FROM.isoformat(), "--last-day", before], env)}
    for i, d in enumerate(days, 1):
        for path in (args.work / "night_files" / d.isoformat()).glob("*.csv"):
            shutil.copyfile(path, nights_dir / "input" / path.name)
        if i in args.skip and d != LAST:
            print(f"night {d}: does not run", flush=True)
            continue
        times[d.isoformat()] = run([CRM, "nightly", "--day", d.isoformat()], env)
        print(f"night {d}: {times[d.isoformat()]} s, rows {counts[d.isoformat()]}", flush=True)
    shutil.copytree(nights_dir, whole_dir)
    times["full_refresh"] = run([CRM, "build", "--full-refresh", "--as-of", LAST.isoformat(),
                                 "--first-day", NIGHT_EVENTS_FROM.isoformat(), "--last-day",
                                 LAST.isoformat()], night_environment(whole_dir))
    nights = fingerprint(nights_dir / "warehouse" / "crm.duckdb", without_model)
    whole = fingerprint(whole_dir / "warehouse" / "crm.duckdb", without_model)
    compared = sorted((nights.keys() | whole.keys()) - MODEL)
    differing = [t for t in compared if nights.get(t) != whole.get(t)]
    differing += [f"served {t}" for t in served_mismatches(nights_dir / "warehouse" / "crm.duckdb")]
    differing += [f"days before {NIGHT_EVENTS_FROM} in {t}" for t in outside_built_days(
        nights_dir / "warehouse" / "crm.duckdb", NIGHT_EVENTS_FROM)]
    merges = duckdb.connect(str(nights_dir / "warehouse" / "crm.duckdb"), read_only=True)
    merged = merges.execute("SELECT count(*) FROM meta.customer_merges").fetchone()[0]
    merges.close()
    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "persons": args.persons,
              "nights": [d.isoformat() for d in days], "night_rows": counts,
              "nights_not_run": [days[i - 1].isoformat() for i in args.skip if i < len(days)],
              "merges_by_the_nights": merged, "seconds": times, "tables_compared": len(compared),
              "differing": differing}
    out = args.out
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{len(compared)} tables compared, {len(differing)} differ: {differing}; "
          f"{merged} merges by the nights -> {out}")
    return 1 if differing else 0


if __name__ == "__main__":
    raise SystemExit(main())
