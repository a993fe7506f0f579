"""Kill a real ``crm build`` or ``crm nightly`` at random instants; does the next run finish, and
give the same?

Run: ``python benchmarks/kill_trials.py [--trials N] [--seed S] [--work DIR] [--night]`` (not
part of ``make bench``: it measures recovery, not speed).

Builds (the default): on the demo data (``seeds/``, event days of June 2026), one clean build,
then for each trial a new warehouse and Dagster instance, a build killed with SIGKILL after a
random share of the clean build's time, and the same build again with nothing in between, with a
time limit. Results go to ``benchmarks/results/kill_trials.json``.

Nights (``--night``): the incremental path. ``crm generate`` writes a small chain's files (2,000
persons, 2025-10-01 to 2026-06-30), split as ``bench_nightly.py`` splits them: the last day's
rows, late orders of a day two months earlier and new versions of some customer records make the
night. The days before are built once (event days from 2026-04-01) and that state is saved; a
clean night runs on a copy of it. Each trial restores the saved state, kills ``crm nightly`` for
the last day after a random share of the clean night's time, and runs the night again. What is
compared with the clean night: every warehouse table, and also what readers get, every view of
the BI and contacts snapshots (row for row) and every trigger export file (byte for byte).
Results go to ``benchmarks/results/kill_trials_night.json``.

A trial is *hung* if the second run does not finish in time, *failed* if it fails, *different* if
anything differs from the clean run's (the columns saying when or by which run a row was written
left out).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
CRM = str(Path(sys.executable).with_name("crm"))
BUILD = [CRM, "build", "--as-of", "2026-06-30", "--first-day", "2026-06-01",
         "--last-day", "2026-06-30"]
WRITTEN_AT = {"_loaded_at", "loaded_at", "file_mtime_ns", "first_seen_at", "merged_at",
              "raw_row", "_batch", "rejected_at", "computed_at", "run_id", "staged_at",
              "built_at", "batch", "first_materialized_at", "seen_at", "fit_seconds", "fitted_at"}
BOOKKEEPING = {"meta.built_versions", "meta.watermarks", "meta.staged_files", "meta.event_days",
               "meta.changed_parts"}
NIGHT_PERSONS = 2000
NIGHT_START = date(2025, 10, 1)
NIGHT_EVENTS_FROM = date(2026, 4, 1)
"""Event days of the nights' warehouse: from before the late rows' day (two months back)."""


def environment(folder: Path, input_dir: Path = ROOT / "seeds", **extra: str) -> dict[str, str]:
    return {**os.environ, "CRM_PROJECT_DIR": str(ROOT), "CRM_INPUT_DIR": str(input_dir),
            "CRM_WAREHOUSE": str(folder / "warehouse" / "crm.duckdb"),
            "CRM_CATALOG_CACHE": str(folder / "catalog_cache.json"),
            "CRM_LANDING_DIR": str(folder / "landing"), "DAGSTER_HOME": str(folder / "dagster"),
            **extra}


def night_environment(folder: Path) -> dict[str, str]:
    return environment(folder, folder / "input",
                       CRM_PARTITION_START=NIGHT_EVENTS_FROM.isoformat())


def _rows_hash(con: duckdb.DuckDBPyConnection, schema: str, name: str, where=None) -> str:
    """Count and hash of the rows (``where(columns)``: a filter on them, or ``None``)."""
    names = [c for (c,) in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
        "ORDER BY column_index", [schema, name]).fetchall()]
    quoted = [f'"{c}"' for c in names if c not in WRITTEN_AT]
    row = f"({', '.join(quoted)})"
    condition = where(f"{schema}.{name}", names) if where else None
    return str(con.execute(f'SELECT count(*), coalesce(sum(hash{row})::HUGEINT, 0) '
                           f'FROM "{schema}"."{name}"'
                           + (f" WHERE {condition}" if condition else "")).fetchone())


def fingerprint(warehouse: Path, where=None) -> dict[str, str]:
    """Each data table's rows (the run columns left out), as a hash computed by DuckDB; only
    those ``where(table, columns)`` keeps, when given (a filter, or ``None`` for all)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {f"{s}.{t}": _rows_hash(con, s, t, where) for s, t in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()
            if f"{s}.{t}" not in BOOKKEEPING}
    finally:
        con.close()


def served_fingerprint(folder: Path) -> dict[str, str]:
    """What readers get after a run: the warehouse's tables, each view of the BI and contacts
    snapshots (its rows, as for the tables) and each trigger export file (its bytes)."""
    warehouse = folder / "warehouse"
    out = fingerprint(warehouse / "crm.duckdb")
    for snapshot in ("serving", "contacts"):
        con = duckdb.connect(str(warehouse / snapshot / "crm.duckdb"), read_only=True)
        try:
            for schema, view in con.execute(
                    "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal "
                    "AND NOT temporary").fetchall():
                out[f"{snapshot}:{schema}.{view}"] = _rows_hash(con, schema, view)
        finally:
            con.close()
    for path in sorted((warehouse / "contacts" / "exports").rglob("*.csv")):
        out[f"export:{path.relative_to(warehouse)}"] = hashlib.sha256(
            path.read_bytes()).hexdigest()
    return out


def _restore(saved: Path, folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(saved, folder)


def prepare_nights(work: Path) -> tuple[Path, list[str]]:
    """Generate and split the nights' data, build the days before the last; the saved state
    (input files with the night's among them, warehouse, Dagster instance) and the night's
    command."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_nightly import LAST, split  # noqa: PLC0415 (a sibling script)

    generated, saved = work / "generated", work / "saved"
    subprocess.run([CRM, "generate", "--customers", str(NIGHT_PERSONS), "--out", str(generated),
                    "--seed", "42", "--start", NIGHT_START.isoformat(), "--end",
                    LAST.isoformat()], check=True, capture_output=True)
    rows = split(generated, saved / "input", work / "night", changed_share=0.01)
    print(f"night files: {rows}", flush=True)
    before = (LAST - timedelta(days=1)).isoformat()
    subprocess.run([CRM, "build", "--as-of", before, "--first-day",
                    NIGHT_EVENTS_FROM.isoformat(), "--last-day", before],
                   env=night_environment(saved), check=True, capture_output=True)
    for path in (work / "night").glob("*.csv"):
        shutil.copyfile(path, saved / "input" / path.name)
    return saved, [CRM, "nightly", "--day", LAST.isoformat()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--limit", type=float, default=600, help="seconds a rerun may take")
    parser.add_argument("--night", action="store_true",
                        help="kill nights (crm nightly) instead of builds")
    parser.add_argument("--work", type=Path,
                        default=Path(os.environ.get("TMPDIR", "/tmp")) / "crm-kill-trials")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    if args.night:
        saved, command = prepare_nights(args.work)

        def setup(folder: Path) -> dict[str, str]:
            _restore(saved, folder)
            return night_environment(folder)

        measure = served_fingerprint
    else:
        command = BUILD

        def setup(folder: Path) -> dict[str, str]:
            return environment(folder)

        def measure(folder: Path) -> dict[str, str]:
            return fingerprint(folder / "warehouse" / "crm.duckdb")

    clean_dir = args.work / "clean"
    env = setup(clean_dir)
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    clean_seconds = time.perf_counter() - started
    clean = measure(clean_dir)
    print(f"clean run: {clean_seconds:.1f} s, {len(clean)} tables, views and files", flush=True)
    rng = random.Random(args.seed)
    trials = []
    for i in range(args.trials):
        folder = args.work / f"trial-{i}"
        env = setup(folder)
        at = rng.uniform(0.5, clean_seconds)
        run = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        time.sleep(at)
        run.send_signal(signal.SIGKILL)
        run.wait()
        trial = {"killed_after_s": round(at, 2)}
        started = time.perf_counter()
        try:
            again = subprocess.run(command, env=env, capture_output=True, text=True,
                                   timeout=args.limit)
            trial["rerun_s"] = round(time.perf_counter() - started, 1)
            trial["result"] = "ok" if again.returncode == 0 else "failed"
            if again.returncode == 0:
                got = measure(folder)
                differing = sorted(t for t in clean.keys() | got.keys()
                                   if clean.get(t) != got.get(t))
                if differing:
                    trial["result"], trial["tables"] = "different", differing
            else:
                trial["error"] = (again.stdout + again.stderr)[-1000:]
        except subprocess.TimeoutExpired:
            trial["result"] = "hung"
        print(f"trial {i}: killed after {at:.1f} s -> {trial['result']}"
              + (f" {trial['tables']}" if "tables" in trial else ""), flush=True)
        trials.append(trial)
        if trial["result"] == "ok":
            shutil.rmtree(folder, ignore_errors=True)
    counts = {k: sum(t["result"] == k for t in trials)
              for k in ("ok", "hung", "failed", "different")}
    result = {"clean_run_s": round(clean_seconds, 1), "compared": len(clean), "trials": trials,
              "counts": counts}
    name = "kill_trials_night.json" if args.night else "kill_trials.json"
    out = ROOT / "benchmarks" / "results" / name
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{counts} -> {out}")
    return 0 if counts["ok"] == len(trials) else 1


if __name__ == "__main__":
    raise SystemExit(main())
