"""Benchmark of a night against a full build, at 1M persons: does a night cost what changed?

Run: ``python benchmarks/bench_nightly.py [--customers N] [--work DIR] [--keep] [--save-base DIR]
[--out FILE]``.

1. ``crm generate`` writes the demo chain's CRM export (18 months to 2026-06-30).
2. The files are split: the **base** is everything before the last day; the **night** holds the
   last day's rows (new customers, orders and their lines, interactions, sessions), plus late
   rows (the orders, and their lines, of one day two months earlier, held back from the base)
   and changed customer records (new versions of 0.1 % of the customers, opting in to e-mail).
3. ``crm build`` over the base (segments as of the day before, every event day): the full build.
4. The night's files are added and ``crm nightly --day <last day>`` runs: the night. It is run
   ``--nights`` times (default 3), each on the warehouse and Dagster instance as the full build
   left them (restored from a copy between runs), and the median is the night's figure: one
   night's time moves by ±10 % on this kind of machine, as much as a change being measured.
5. ``crm nightly`` again with nothing new: the no-change night.

After the first night, each table computed whole (no ``_batch``: the as-of models, segments and
marts) is compared with what it held before the night (:func:`changed_rows`): the share of its
rows the night changed, which no incremental scheme can avoid writing (``night.changed_rows``).

With ``--history-days N`` the warehouse has lived N days before the night: after the full build,
the segment membership history gets N earlier days of made-up entries and exits (0.5 % of each
segment's members leaving every day, memberships of 1-90 days, with a run recorded for every
day), and ``crm nightly`` for the full build's day takes them in (the events of those entries
and exits, the sizes of those days: not timed) before the night's state is saved. A full build
records one day of history, so without it the night cannot show a cost that grows with the
history's length.

Each command is its own process, timed for wall time, CPU (user + system, children included)
and peak RSS, as an operator would see it. The per-step times of each run are read from the
Dagster instance. Results go to ``benchmarks/results/nightly.json`` (``--out``: elsewhere, e.g.
another scale's run), the runs it held before kept under ``earlier_runs``.

There is no bare-SQL floor here: what a night saves is work not done, which the same SQL run bare
would do all of again; the floor of the full build's SQL is ``bench_staging.py``'s subject.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crm_assets.quoting import identifier, literal  # noqa: E402
from crm_assets.warehouse.state import (  # noqa: E402
    FRAMEWORK_VERSION,
    next_batch,
    set_built_version,
)
from crm_assets.warehouse.tables import SEGMENT_MEMBERSHIP_HISTORY, SEGMENT_RUNS  # noqa: E402

LAST = date(2026, 6, 30)
LATE = LAST - timedelta(days=61)
TIMES = {"customers": "registered_at", "orders": "ordered_at", "interactions": "occurred_at",
         "sessions": "started_at"}


def _say(message: str) -> None:
    print(message, flush=True)


def split(generated: Path, base: Path, night: Path, changed_share: float) -> dict[str, int]:
    """The generated files as the base and the night's files; rows per night file."""
    base.mkdir(parents=True)
    night.mkdir(parents=True)
    day, late = LAST.isoformat(), LATE.isoformat()
    con = duckdb.connect()
    late_orders = (f"SELECT order_id FROM read_csv('{generated}/orders.csv', all_varchar = true) "
                   f"WHERE left(ordered_at, 10) = '{late}' AND hash(order_id) % 4 = 0")
    rules = {
        "orders": f"left(ordered_at, 10) = '{day}' OR order_id IN ({late_orders})",
        "order_items": (f"order_id IN (SELECT order_id FROM read_csv('{generated}/orders.csv', "
                        f"all_varchar = true) WHERE left(ordered_at, 10) = '{day}') "
                        f"OR order_id IN ({late_orders})"),
    }
    counts = {}
    for path in sorted(generated.glob("*.csv")):
        table = path.stem
        rule = rules.get(table) or (f"left(coalesce({TIMES[table]}, ''), 10) = '{day}'"
                                    if table in TIMES else "false")
        source = f"read_csv('{path}', all_varchar = true)"
        con.execute(f"COPY (SELECT * FROM {source} WHERE NOT ({rule})) TO '{base / path.name}' "
                    "(HEADER)")
        target = night / f"{table}_{day}.csv"
        extra = ""
        if table == "customers":  # new versions of some existing records: opted in to e-mail
            extra = (f" UNION ALL SELECT * REPLACE ('true' AS email_opt_in, '{day} 12:00:00' AS "
                     f"updated_at) FROM {source} WHERE NOT ({rule}) AND "
                     f"hash(customer_id) % {round(1 / changed_share)} = 0")
        counts[table] = con.execute(
            f"COPY (SELECT * FROM {source} WHERE {rule}{extra}) TO '{target}' (HEADER)"
        ).fetchone()[0]
    con.close()
    return counts


def _copy(source: Path, target: Path) -> None:
    """Replace ``target`` (a file or a folder) by a copy of ``source``."""
    if target.is_dir():
        shutil.rmtree(target)
    if source.is_dir():
        shutil.copytree(source, target)
    elif source.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def add_history(warehouse: Path, days: int, churn: float = 0.005) -> int:
    """``days`` days of made-up segment history before the first one recorded (see the module
    docstring); rows added. Four rounds of people over the days, so a person's memberships of
    one segment never overlap."""
    con = duckdb.connect(str(warehouse))
    try:
        (first,) = con.execute(f"SELECT min(as_of_date) FROM {SEGMENT_RUNS.name}").fetchone()
        rounds = 4
        width = days // rounds
        (before,) = con.execute(
            f"SELECT count(*) FROM {SEGMENT_MEMBERSHIP_HISTORY.name}").fetchone()
        con.execute(f"""
            INSERT INTO {SEGMENT_MEMBERSHIP_HISTORY.name}
            WITH sizes AS (SELECT segment, count(*) AS members
                           FROM {SEGMENT_MEMBERSHIP_HISTORY.name} GROUP BY segment),
                 made AS (SELECT segment, k FROM sizes,
                          range(CAST(round(members * {churn}) * {days} AS BIGINT)) AS t(k)),
                 placed AS (
                    SELECT segment, k % 1000000 + 1 AS customer_id,
                           DATE '{first}' - {days} + CAST((k // 1000000) * {width}
                               + hash(segment, k) % ({width} - 91) AS INTEGER) AS valid_from,
                           CAST(1 + hash(k, segment, 7) % 90 AS INTEGER) AS length
                    FROM made)
            SELECT segment, customer_id, valid_from, valid_from + length, 'made-up'
            FROM placed""")
        con.execute(f"""
            INSERT INTO {SEGMENT_RUNS.name}
            SELECT s.segment, DATE '{first}' - {days} + CAST(d AS INTEGER), 'made-up', 0, 0, 0,
                   'made-up', now()
            FROM (SELECT DISTINCT segment FROM {SEGMENT_RUNS.name}) AS s, range({days}) AS t(d)""")
        # what reads them learns they changed as when a segment writes them
        batch = next_batch(con)
        set_built_version(con, SEGMENT_MEMBERSHIP_HISTORY.name, FRAMEWORK_VERSION, batch,
                          ["segment", "customer_id"])
        set_built_version(con, SEGMENT_RUNS.name, FRAMEWORK_VERSION, batch,
                          ["segment", "as_of_date"])
        (after,) = con.execute(
            f"SELECT count(*) FROM {SEGMENT_MEMBERSHIP_HISTORY.name}").fetchone()
        return int(after - before)
    finally:
        con.close()


WHOLE_SCHEMAS = ("core", "segments", "marts")
"""Where the tables computed whole live (those without ``_batch``, which are merged by key)."""
RUN_COLUMNS = ("as_of_date", "definition_version")
"""Columns saying when and by what version a row was computed: left out of the comparison."""


def changed_rows(before: Path, after: Path) -> dict[str, dict]:
    """For each table computed whole (no ``_batch`` column) in both warehouse files: its rows
    after the night and how many of them differ from every row it held before (``EXCEPT ALL``,
    the run columns left out), largest share first.

    What a night cannot avoid rewriting: a table holding a day count as of the date (recency,
    age) changes in nearly every row every day, whatever the night brought.
    """
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")  # a child's bar would land in the log
        con.execute(f"ATTACH {literal(str(before))} AS before (READ_ONLY)")
        con.execute(f"ATTACH {literal(str(after))} AS after (READ_ONLY)")
        columns: dict[str, list[str]] = {}
        for db in ("before", "after"):
            for table, column in con.execute(
                    "SELECT schema_name || '.' || table_name, column_name FROM duckdb_columns() "
                    "WHERE database_name = ? AND list_contains(?, schema_name) "
                    "AND NOT starts_with(table_name, '_') ORDER BY column_index",
                    [db, list(WHOLE_SCHEMAS)]).fetchall():
                columns.setdefault(f"{db}:{table}", []).append(column)
        out = {}
        for key, cols in columns.items():
            db, table = key.split(":", 1)
            if db != "after" or "_batch" in cols or cols != columns.get(f"before:{table}"):
                continue
            kept = ", ".join(identifier(c) for c in cols if c not in RUN_COLUMNS)
            rows, changed = con.execute(
                f"SELECT (SELECT count(*) FROM after.{table}), (SELECT count(*) FROM ("
                f"SELECT {kept} FROM after.{table} EXCEPT ALL "
                f"SELECT {kept} FROM before.{table}))").fetchone()
            out[table] = {"rows": int(rows), "changed": int(changed),
                          "share": round(changed / rows, 4) if rows else 0.0}
        return dict(sorted(out.items(), key=lambda kv: (-kv[1]["share"], kv[0])))
    finally:
        con.close()


def in_child(function, *args):
    """``function(*args)`` in a fresh interpreter, and its result. A process forked from this one
    reports at least this one's peak RSS as its own (Linux), so DuckDB work done here (the
    made-up history, the comparison of the tables) would inflate every later command's figure:
    the 3M run's nights after the first and its no-change night all reported 3.6 GB."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def timed(argv: list[str], env: dict[str, str]) -> dict:
    """Run ``argv`` (a ``crm`` command) as a process: its wall, CPU and peak RSS."""
    start = time.perf_counter()
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process:
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{output[-4000:]}")
    return {"wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024)}


def save(out: Path, result: dict) -> None:
    """``result`` to the JSON file ``out``, the runs it held before kept under
    ``earlier_runs``, newest first."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        before = json.loads(out.read_text(encoding="utf-8"))
        result["earlier_runs"] = [before, *before.pop("earlier_runs", [])]
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def step_times(env: dict[str, str]) -> dict[str, float]:
    """Seconds of each step of the latest run on the instance under ``DAGSTER_HOME``."""
    code = ("import json, dagster as dg; i = dg.DagsterInstance.get(); r = i.get_runs(limit=1)[0];"
            "print(json.dumps({s.step_key: round(s.end_time - s.start_time, 3) "
            "for s in i.get_run_step_stats(r.run_id) if s.end_time}))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True)
    steps = json.loads(done.stdout.strip().splitlines()[-1])
    return dict(sorted(steps.items(), key=lambda kv: -kv[1]))


def by_layer(steps: dict[str, float]) -> dict[str, float]:
    """Step seconds added up by layer: the schema a step writes (``staging__orders``: staging),
    the contact checks and the freshness check apart; largest first."""
    layers: dict[str, float] = {}
    for key, seconds in steps.items():
        layer = key.split("__", 1)[0] if "__" in key else key
        layers[layer] = layers.get(layer, 0.0) + seconds
    return {k: round(v, 2) for k, v in sorted(layers.items(), key=lambda kv: -kv[1])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--changed-share", type=float, default=0.001)
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "nightly.json",
                        help="where the results go (default: benchmarks/results/nightly.json)")
    parser.add_argument("--nights", type=int, default=3,
                        help="times the night is run from the full build's state (median taken)")
    parser.add_argument("--history-days", type=int, default=0,
                        help="days of made-up segment history before the night (see above)")
    parser.add_argument("--save-base", type=Path,
                        help="copy the working folder here after the full build (to replay the "
                             "night: its files are in night/)")
    args = parser.parse_args()
    if args.history_days and args.history_days < 400:
        parser.error("--history-days: at least 400 (four rounds of memberships of up to 90 days)")
    work = args.work or Path(os.environ.get("TMPDIR", "/tmp")) / "crm-bench-nightly"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    crm = str(Path(sys.executable).with_name("crm"))
    env = {**os.environ, "CRM_PROJECT_DIR": str(ROOT), "CRM_INPUT_DIR": str(work / "input"),
           "CRM_WAREHOUSE": str(work / "warehouse" / "crm.duckdb"),
           "CRM_CATALOG_CACHE": str(work / "catalog_cache.json"),
           "CRM_PARTITION_START": "2025-01-01", "CRM_LANDING_DIR": str(work / "landing"),
           "DAGSTER_HOME": str(work / "dagster_home")}
    try:
        started = time.perf_counter()
        subprocess.run([crm, "generate", "--customers", str(args.customers), "--out",
                        str(work / "generated"), "--seed", "42"], env=env, check=True,
                       capture_output=True)
        _say(f"generated {args.customers:,} persons in {time.perf_counter() - started:.0f} s")
        night_rows = split(work / "generated", work / "input", work / "night", args.changed_share)
        base_rows = {p.stem: sum(1 for _ in p.open("rb")) - 1
                     for p in (work / "input").glob("*.csv")}
        _say(f"night files: {night_rows}")

        full = timed([crm, "build", "--as-of", (LAST - timedelta(days=1)).isoformat(),
                      "--first-day", "2025-01-01", "--last-day",
                      (LAST - timedelta(days=1)).isoformat()], env)
        full["steps"] = step_times(env)
        full["layers"] = by_layer(full["steps"])
        _say(f"full build: {full['wall_s']} s wall, {full['cpu_s']} s CPU, "
             f"{full['peak_rss_mb']} MB")
        history = None
        if args.history_days:
            rows = in_child(add_history, work / "warehouse" / "crm.duckdb", args.history_days)
            settle = timed([crm, "nightly", "--day", (LAST - timedelta(days=1)).isoformat()],
                           env)
            history = {"days": args.history_days, "rows_added": rows, "taken_in": settle}
            _say(f"{args.history_days} days of history ({rows:,} rows) taken in: "
                 f"{settle['wall_s']} s")
        if args.save_base:
            shutil.rmtree(args.save_base, ignore_errors=True)
            shutil.copytree(work, args.save_base, ignore=shutil.ignore_patterns("generated"))
        for path in (work / "night").glob("*.csv"):
            shutil.copyfile(path, work / "input" / path.name)
        state = ("warehouse", "dagster_home", "catalog_cache.json")
        saved = work / "before_night"
        for name in state:
            _copy(work / name, saved / name)
        nights = []
        for i in range(max(1, args.nights)):
            if i:  # the state the full build left, again
                for name in state:
                    _copy(saved / name, work / name)
            night = timed([crm, "nightly", "--day", LAST.isoformat()], env)
            night["steps"] = step_times(env)
            night["layers"] = by_layer(night["steps"])
            if not i:
                night["changed_rows"] = in_child(changed_rows, saved / "warehouse" / "crm.duckdb",
                                                 work / "warehouse" / "crm.duckdb")
                _say("rows of the tables computed whole that the night changed: " + ", ".join(
                    f"{table} {c['share']:.0%}" for table, c in night["changed_rows"].items()))
            _say(f"night {i + 1}: {night['wall_s']} s wall, {night['cpu_s']} s CPU, "
                 f"{night['peak_rss_mb']} MB; steps by layer (s): {night['layers']}")
            nights.append(night)
        shutil.rmtree(saved)
        night = sorted(nights, key=lambda n: n["wall_s"])[len(nights) // 2]  # the median
        night["changed_rows"] = nights[0]["changed_rows"]
        night["runs"] = [{k: n[k] for k in ("wall_s", "cpu_s", "peak_rss_mb")} for n in nights]
        night["median_of"] = len(nights)
        idle = timed([crm, "nightly", "--day", LAST.isoformat()], env)
        _say(f"night with nothing new: {idle['wall_s']} s wall, {idle['cpu_s']} s CPU")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    share = sum(night_rows.values()) / max(1, sum(base_rows.values()))
    result = {
        "persons": args.customers, "night_rows": night_rows, "night_share_of_rows": share,
        "full_build": full, "history": history, "night": night, "night_with_nothing_new": idle,
        "night_over_full": {k: round(night[k] / full[k], 4)
                            for k in ("wall_s", "cpu_s", "peak_rss_mb")},
        "machine": {"cores": os.cpu_count(), "load_after": os.getloadavg()},
    }
    out = args.out
    save(out, result)
    ratio = result["night_over_full"]
    _say(f"nights (wall s): {[n['wall_s'] for n in night['runs']]}, median {night['wall_s']}")
    _say(f"night / full build: wall {ratio['wall_s']:.1%}, CPU {ratio['cpu_s']:.1%}, "
         f"peak RSS {ratio['peak_rss_mb']:.1%} (goal: 5 % of the full build) -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
