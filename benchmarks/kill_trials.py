"""Kill a real ``crm build`` at random instants; does the next build finish, and build the same?

Run: ``python benchmarks/kill_trials.py [--trials N] [--seed S] [--work DIR]`` (not part of
``make bench``: it measures recovery, not speed).

On the demo data (``seeds/``, event days of June 2026): one clean build, then for each trial a new
warehouse and Dagster instance, a build killed with SIGKILL after a random share of the clean
build's time, and the same build again with nothing in between, with a time limit. A trial is
*hung* if the second build does not finish in time, *failed* if it fails, *different* if any
table differs from the clean build's (row for row, the columns saying when or by which run a row
was written left out). Results go to ``benchmarks/results/kill_trials.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
CRM = str(Path(sys.executable).with_name("crm"))
BUILD = [CRM, "build", "--as-of", "2026-06-30", "--first-day", "2026-06-01",
         "--last-day", "2026-06-30"]
WRITTEN_AT = {"_loaded_at", "loaded_at", "file_mtime_ns", "first_seen_at", "merged_at",
              "raw_row", "_batch", "rejected_at", "computed_at", "run_id", "staged_at",
              "built_at", "batch", "first_materialized_at"}
BOOKKEEPING = {"meta.built_versions", "meta.watermarks", "meta.staged_files", "meta.event_days",
               "meta.changed_parts"}


def environment(folder: Path) -> dict[str, str]:
    return {**os.environ, "CRM_PROJECT_DIR": str(ROOT), "CRM_INPUT_DIR": str(ROOT / "seeds"),
            "CRM_WAREHOUSE": str(folder / "warehouse" / "crm.duckdb"),
            "CRM_CATALOG_CACHE": str(folder / "catalog_cache.json"),
            "CRM_LANDING_DIR": str(folder / "landing"), "DAGSTER_HOME": str(folder / "dagster")}


def fingerprint(warehouse: Path) -> dict[str, str]:
    """Each data table's rows (the run columns left out), as a hash computed by DuckDB."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = [f"{s}.{t}" for s, t in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()
            if f"{s}.{t}" not in BOOKKEEPING]
        out = {}
        for table in tables:
            schema, name = table.split(".")
            columns = [f'"{c}"' for (c,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND "
                "table_name = ? ORDER BY column_index", [schema, name]).fetchall()
                if c not in WRITTEN_AT]
            row = f"({', '.join(columns)})"
            out[table] = str(con.execute(
                f"SELECT count(*), coalesce(sum(hash{row})::HUGEINT, 0) FROM {table}").fetchone())
        return out
    finally:
        con.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--limit", type=float, default=600, help="seconds a rebuild may take")
    parser.add_argument("--work", type=Path,
                        default=Path(os.environ.get("TMPDIR", "/tmp")) / "crm-kill-trials")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    clean_dir = args.work / "clean"
    started = time.perf_counter()
    subprocess.run(BUILD, env=environment(clean_dir), check=True, capture_output=True)
    clean_seconds = time.perf_counter() - started
    clean = fingerprint(clean_dir / "warehouse" / "crm.duckdb")
    print(f"clean build: {clean_seconds:.1f} s, {len(clean)} tables", flush=True)
    rng = random.Random(args.seed)
    trials = []
    for i in range(args.trials):
        folder = args.work / f"trial-{i}"
        env = environment(folder)
        at = rng.uniform(0.5, clean_seconds)
        build = subprocess.Popen(BUILD, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        time.sleep(at)
        build.send_signal(signal.SIGKILL)
        build.wait()
        trial = {"killed_after_s": round(at, 2)}
        started = time.perf_counter()
        try:
            again = subprocess.run(BUILD, env=env, capture_output=True, text=True,
                                   timeout=args.limit)
            trial["rebuild_s"] = round(time.perf_counter() - started, 1)
            trial["result"] = "ok" if again.returncode == 0 else "failed"
            if again.returncode == 0:
                got = fingerprint(folder / "warehouse" / "crm.duckdb")
                differing = sorted(t for t in clean.keys() | got.keys()
                                   if clean.get(t) != got.get(t))
                if differing:
                    trial["result"], trial["tables"] = "different", differing
            else:
                trial["error"] = (again.stdout + again.stderr)[-1000:]
        except subprocess.TimeoutExpired:
            trial["result"] = "hung"
        print(f"trial {i}: killed after {at:.1f} s -> {trial['result']}", flush=True)
        trials.append(trial)
        shutil.rmtree(folder, ignore_errors=True)
    counts = {k: sum(t["result"] == k for t in trials)
              for k in ("ok", "hung", "failed", "different")}
    result = {"clean_build_s": round(clean_seconds, 1), "trials": trials, "counts": counts}
    out = ROOT / "benchmarks" / "results" / "kill_trials.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{counts} -> {out}")
    return 0 if counts["ok"] == len(trials) else 1


if __name__ == "__main__":
    raise SystemExit(main())
