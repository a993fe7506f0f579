"""Benchmark of a full build at scale against its floor: what does the project cost over its SQL?

Run: ``python benchmarks/bench_scale.py [--scales 1000000,10000000 | --customers N] [--work DIR]
[--keep] [--results FILE]``. The default is W1, one scale of 1,000,000 persons; W2 (10M) is run
on its own later and merged into the same results file.

Per scale, in ``<work>/<persons>/``:

1. ``crm generate --customers N --seed 42 --start 2024-07-01 --end 2026-06-30``: two years of the
   demo chain's CRM export (the generator's default is 18 months), read in place as the input
   folder.
2. ``crm build --as-of 2026-06-30 --first-day 2024-07-01 --last-day 2026-06-30`` as a process
   (events for every day of the two years, in one run, segments as of the last day). Its wall
   time, CPU (user + system, children included) and peak RSS come from ``os.wait4``; meanwhile
   the process and its descendants (``contact_checks``' worker processes) are sampled from
   ``/proc`` every 0.2 s: VmRSS summed (pages a worker shares with its parent count twice),
   utime + stime + cutime + cstime summed, with a monotonic and a wall timestamp.
3. Each step's start and end are read from the Dagster instance (``get_run_step_stats``). A step's
   wall is end minus start, moved onto the monotonic clock the build is timed with (a shift of
   the wall clock is reported as ``wall_clock_shift_s``), its CPU the sampled CPU between the two
   instants (interpolated between samples), its peak RSS the largest sample of the window, the
   samples just before and after it included (a step shorter than 0.2 s has none of its own).
   Orchestration is what the steps do not account for: the whole build's wall (and CPU) minus
   the sum of the steps' (start-up, loading the definitions and the catalogue, run bookkeeping,
   the summary).
4. The **floor** of each step: its SQL run bare, after the build, on the build's warehouse file,
   by a fresh process (this script with ``--floor-of``) holding one ``duckdb.connect(path)`` with
   the project's DuckDB limits (memory limit, spill folder, threads) and session functions
   (``prepare_connection``, ``as_of_date()``, the ``crm_*`` cleaning and model-scoring functions
   a query calls, registered before the clock starts, their caches cleared). Each statement is
   timed for wall and for CPU (``getrusage(RUSAGE_SELF)`` deltas: DuckDB's threads included), and
   its table dropped, untimed. The raw floors run first, in a process of their own; then, unless
   ``--keep``, the generated files and the snapshots are deleted (the model floors read only the
   warehouse: at 10M persons files, warehouse and spill fill a 100 GB disk otherwise), and the
   model floors run in another:

   * ``raw__<table>``: ``CREATE TABLE ... AS SELECT * FROM read_csv('<file>', all_varchar =
     true)`` for each file feeding the table (``crm_assets.ingest.files.source_files``), summed;
   * staging, core and marts models and segments: ``CREATE TABLE ... AS <the definition's
     compiled query>`` (``Definition.body``, variants and parameters applied). A staging floor is
     its query over all of raw, without the latest-version ranking and the split into rejects;
     an incremental core model's is its query over everything (what a first build computes);
     the variants of one segment file are one step, and its floor the sum of theirs;
   * events (day partitions, one run over the range): the query once over the whole range, as
     the step runs it: ``SELECT * FROM (<query>) WHERE occurred_at`` in ``[first day, day after
     the last)`` at business midnights (without the ``event_date`` column and the sort the
     project adds, and without the step's per-day bookkeeping);
   * ``marts__event_daily_counts``: the query the project generates over every event table
     (``crm_assets.warehouse.marts.event_daily_counts_sql``).

   Steps with no SQL query of their own have no floor (``floor_s`` null) and count in full as
   the project's cost: ``contact_checks`` (the e-mail and phone libraries over each distinct
   contact, in worker processes), identity resolution (``core__customer_identity``: matching and
   clustering in Python and SQL), the reference map (``core__rfm_segment_map``, a CSV), the CLV
   fit (``meta__clv_models``, a model fitted in Python), the freshness checks (``raw_freshness``),
   the trigger exports (``exports__<event>``: a CSV per day) and the serving and contacts
   snapshots (``serving__snapshot``, ``serving__contacts``: copies of what is built).

Per scale it prints each step (wall, CPU, floor wall and CPU, ratios, peak RSS), longest first,
and the whole build against its floor: the sum of the floors that exist, over which the whole
build (every step, orchestration included) is divided, in wall seconds and in CPU seconds.
Results are merged by scale into ``benchmarks/results/scale.json`` (``--results`` elsewhere);
with ``--keep`` the working folder stays, with the samples in ``<persons>/samples.csv``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import numpy as np

from crm_assets.catalog import Definition
from crm_assets.functions.contacts import clear_cleaning_caches
from crm_assets.functions.registry import set_as_of_date
from crm_assets.ingest.contracts import SOURCES
from crm_assets.ingest.files import source_files
from crm_assets.project import load_project_catalog
from crm_assets.quoting import literal
from crm_assets.settings import Settings, load_settings
from crm_assets.warehouse.connection import prepare_connection, use_functions_of
from crm_assets.warehouse.marts import event_daily_counts_sql

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "scale.json"
FIRST_DAY = date(2024, 7, 1)
LAST_DAY = date(2026, 6, 30)
SAMPLE_SECONDS = 0.2
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
GB = 1024**3
FLOOR_SCHEMA = "bench_floor"


def _say(message: str) -> None:
    print(message, flush=True)


# ------------------------------------------------------------------------------------------------
# The build, sampled from /proc
# ------------------------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (``/proc/<pid>/task/<tid>/children``)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(child) for child in children.read_text().split())
            except OSError:  # the thread or the process ended meanwhile
                continue
    return tree


def process_usage(pid: int) -> tuple[int, int]:
    """CPU clock ticks (its own and its reaped children's, user and system) and resident bytes
    of one process; zeros when it is gone (a zombie has no VmRSS)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, 0
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    rss = next((int(line.split()[1]) * 1024 for line in status.splitlines()
                if line.startswith("VmRSS:")), 0)
    return ticks, rss


class TreeSampler(threading.Thread):
    """Samples a process tree every :data:`SAMPLE_SECONDS` until :meth:`stop`: rows of (monotonic
    s, wall s, CPU ticks summed over the tree, RSS bytes summed over the tree)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.rows: list[tuple[float, float, int, int]] = []
        self._stopped = threading.Event()

    def sample(self) -> None:
        usage = [process_usage(p) for p in process_tree(self.pid)]
        self.rows.append((time.monotonic(), time.time(), sum(u[0] for u in usage),
                          sum(u[1] for u in usage)))

    def run(self) -> None:
        self.sample()
        while not self._stopped.wait(SAMPLE_SECONDS):
            self.sample()

    def stop(self) -> np.ndarray:
        """Stop sampling; the samples as an array of shape (n, 4)."""
        self._stopped.set()
        self.join()
        return np.array(self.rows, dtype=float)


def sampled_run(argv: list[str], env: dict[str, str]) -> tuple[dict, np.ndarray]:
    """Run ``argv`` as a process, sampled: its wall, CPU and peak RSS, and the samples."""
    start = time.perf_counter()
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process:
        sampler = TreeSampler(process.pid)
        sampler.start()
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    samples = sampler.stop()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{output[-4000:]}")
    offsets = samples[:, 1] - samples[:, 0]  # wall minus monotonic clock
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "wall_clock_shift_s": float(offsets.max() - offsets.min()),
            "peak_rss_wait4_gb": usage.ru_maxrss * 1024 / GB,
            "peak_rss_sampled_gb": float(samples[:, 3].max()) / GB}, samples


def step_windows(env: dict[str, str]) -> dict[str, tuple[float, float]]:
    """(start, end) wall instants of each step of the latest run on the instance under
    ``DAGSTER_HOME``."""
    code = ("import json, dagster as dg; i = dg.DagsterInstance.get(); r = i.get_runs(limit=1)[0];"
            "print(json.dumps({s.step_key: [s.start_time, s.end_time] "
            "for s in i.get_run_step_stats(r.run_id) if s.start_time and s.end_time}))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True)
    return {k: (start, end) for k, (start, end)
            in json.loads(done.stdout.strip().splitlines()[-1]).items()}


def step_usage(samples: np.ndarray, start: float, end: float) -> dict:
    """Wall, CPU and peak RSS of the window ``[start, end]`` (wall-clock instants, as Dagster
    records them) of the samples.

    The window is moved onto the monotonic clock first, by the samples' offset between the two
    clocks, so that a step of the build and the build itself are timed on the same clock: a
    wall-clock step (the virtual machine paused, the clock set) is left out of the step.
    """
    monotonic, instants = samples[:, 0], samples[:, 1]
    start, end = np.array([start, end]) + np.interp([start, end], instants, monotonic - instants)
    cpu_s = samples[:, 2] / CLOCK_TICKS
    before = max(int(np.searchsorted(monotonic, start, side="right")) - 1, 0)
    after = int(np.searchsorted(monotonic, end, side="left")) + 1
    cpu = np.interp(end, monotonic, cpu_s) - np.interp(start, monotonic, cpu_s)
    return {"wall_s": float(end - start), "cpu_s": float(cpu),
            "peak_rss_gb": float(samples[before:after, 3].max()) / GB}


# ------------------------------------------------------------------------------------------------
# The floor: each step's SQL run bare (in its own process, ``--floor-of``)
# ------------------------------------------------------------------------------------------------


def step_key(d: Definition) -> str:
    """The Dagster step that materialises ``d``: the variants of a segment file share one."""
    if d.kind == "segment" and d.variant is not None:
        return f"{d.layer}__{d.path.stem}"
    return f"{d.layer}__{d.name}"


def event_range_query(d: Definition, settings: Settings, first_day: date, last_day: date) -> str:
    """The event's query over every day from ``first_day`` to ``last_day`` (business days)."""
    zone = ZoneInfo(settings.business_timezone)
    start = datetime.combine(first_day, datetime.min.time(), zone)
    end = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), zone)
    return (f"SELECT * FROM (\n{d.body}\n) AS src "
            f"WHERE src.occurred_at >= TIMESTAMPTZ {literal(start.isoformat())} "
            f"AND src.occurred_at < TIMESTAMPTZ {literal(end.isoformat())}")


def floor_statements(settings: Settings, first_day: date, last_day: date, part: str
                     ) -> list[tuple[str, Definition | None, str]]:
    """(step key, its definition if it has one, SELECT) of every floor statement of ``part``:
    ``raw`` (the input files read bare) or ``models`` (every SQL model on the warehouse)."""
    if part == "raw":
        return [(f"raw__{table}", None, f"SELECT * FROM read_csv({literal(str(f.path))}, "
                                        "all_varchar = true)")
                for table in SOURCES
                for f in source_files(settings.input_dir, table, settings.landing_dir)]
    catalog = load_project_catalog(settings)
    catalog.raise_for_problems()
    models = [(step_key(d), d, event_range_query(d, settings, first_day, last_day)
               if d.kind == "event" else d.body) for d in catalog.definitions]
    counts = ("marts__event_daily_counts", None, event_daily_counts_sql(
        [d.table for d in catalog.definitions if d.kind == "event"]))
    return [*models, counts]


def measure_floors(warehouse: Path, as_of: date, first_day: date, last_day: date, part: str
                   ) -> dict[str, dict]:
    """Wall and CPU seconds of each step's floor statements on ``warehouse`` (summed per step),
    in one connection opened as the project opens the warehouse, without its framework."""
    settings = load_settings()
    statements = floor_statements(settings, first_day, last_day, part)
    con = duckdb.connect(str(warehouse), config=settings.duckdb_config)
    try:
        prepare_connection(con, settings.business_timezone, settings.earliest_plausible_date,
                           settings.plausible_days_after_load,
                           (settings.currency_code, settings.currency_symbol), settings.lifecycle)
        set_as_of_date(con, as_of)
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {FLOOR_SCHEMA}")
        floors: dict[str, dict] = {}
        for i, (key, d, select) in enumerate(statements):
            if d is not None:
                use_functions_of(con, d)
            clear_cleaning_caches()
            table = f"{FLOOR_SCHEMA}.t{i}"
            started, usage = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
            con.execute(f"CREATE TABLE {table} AS {select}\n")
            wall = time.perf_counter() - started
            done = resource.getrusage(resource.RUSAGE_SELF)
            cpu = done.ru_utime + done.ru_stime - usage.ru_utime - usage.ru_stime
            rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            con.execute(f"DROP TABLE {table}")
            floor = floors.setdefault(key, {"floor_s": 0.0, "floor_cpu_s": 0.0, "rows": 0})
            floor["floor_s"] += wall
            floor["floor_cpu_s"] += cpu
            floor["rows"] += rows
        con.execute(f"DROP SCHEMA {FLOOR_SCHEMA}")
    finally:
        con.close()
    return floors


def floors_of(warehouse: Path, env: dict[str, str], part: str) -> dict[str, dict]:
    """:func:`measure_floors` of ``part`` in a fresh process (this script, ``--floor-of``)."""
    done = subprocess.run(
        [sys.executable, __file__, "--floor-of", str(warehouse), "--as-of", LAST_DAY.isoformat(),
         "--first-day", FIRST_DAY.isoformat(), "--last-day", LAST_DAY.isoformat(),
         "--floor-part", part], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the floor failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------
# One scale, the table, the results file
# ------------------------------------------------------------------------------------------------


def ratio(numerator: float, denominator: float | None) -> float | None:
    return round(numerator / denominator, 2) if denominator else None


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def bench_scale(persons: int, work: Path, keep: bool = False) -> dict:
    """Generate, build and measure the floor at one scale; its results.

    Unless ``keep``, what the model floors do not read is deleted before them: the BI snapshots,
    and the generated files once the raw floors have read them. At 10M persons the files (20 GB),
    the warehouse (16 GB) and DuckDB's spill of a staging floor (up to 29 GB) fill a 100 GB disk
    otherwise."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    crm = str(Path(sys.executable).with_name("crm"))
    generated = work / "generated"
    warehouse = work / "warehouse" / "crm.duckdb"
    env = {**os.environ, "CRM_PROJECT_DIR": str(ROOT), "CRM_INPUT_DIR": str(generated),
           "CRM_WAREHOUSE": str(warehouse), "CRM_CATALOG_CACHE": str(work / "catalog_cache.json"),
           "CRM_PARTITION_START": FIRST_DAY.isoformat(), "CRM_LANDING_DIR": str(work / "landing"),
           "CRM_ALERT_LOG": str(work / "alerts.log"), "DAGSTER_HOME": str(work / "dagster_home")}
    load_before = os.getloadavg()

    started = time.perf_counter()
    done = subprocess.run([crm, "generate", "--customers", str(persons), "--out", str(generated),
                           "--seed", "42", "--start", FIRST_DAY.isoformat(), "--end",
                           LAST_DAY.isoformat()], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"crm generate failed:\n{done.stderr[-4000:]}")
    generate_s = time.perf_counter() - started
    rows = {name: int(count.split()[0]) for name, count
            in (line.split(": ") for line in done.stdout.splitlines() if ": " in line)}
    _say(f"generated {persons:,} persons in {generate_s:.0f} s: {rows}")

    build, samples = sampled_run(
        [crm, "build", "--quiet", "--as-of", LAST_DAY.isoformat(), "--first-day",
         FIRST_DAY.isoformat(), "--last-day", LAST_DAY.isoformat()], env)
    steps = {key: step_usage(samples, start, end)
             for key, (start, end) in step_windows(env).items()}
    _say(f"full build: {build['wall_s']:.1f} s wall, {build['cpu_s']:.1f} s CPU, "
         f"{len(steps)} steps; measuring the floor")
    if build["wall_clock_shift_s"] > 0.5:
        _say(f"warning: the wall clock moved {build['wall_clock_shift_s']:.1f} s against the "
             "monotonic clock during the build (steps are timed on the monotonic clock)")
    np.savetxt(work / "samples.csv", samples, delimiter=",", fmt=["%.3f", "%.3f", "%d", "%d"],
               header="monotonic_s,wall_s,cpu_ticks,rss_bytes", comments="")

    floors = floors_of(warehouse, env, "raw")
    if not keep:
        shutil.rmtree(warehouse.parent / "serving", ignore_errors=True)
        shutil.rmtree(warehouse.parent / "contacts", ignore_errors=True)
        shutil.rmtree(generated, ignore_errors=True)
    floors.update(floors_of(warehouse, env, "models"))
    for key, step in steps.items():
        floor = floors.get(key, {})
        step.update({"floor_s": floor.get("floor_s"), "floor_cpu_s": floor.get("floor_cpu_s"),
                     "floor_rows": floor.get("rows")})
    unmatched = sorted(set(floors) - set(steps))
    if unmatched:
        _say(f"warning: floors of no step of the run: {unmatched}")
    floor_s = sum(s["floor_s"] for s in steps.values() if s["floor_s"] is not None)
    floor_cpu_s = sum(s["floor_cpu_s"] for s in steps.values() if s["floor_cpu_s"] is not None)
    no_floor = sorted(k for k, s in steps.items() if s["floor_s"] is None)
    steps_s = sum(s["wall_s"] for s in steps.values())
    steps_cpu_s = sum(s["cpu_s"] for s in steps.values())
    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "persons": persons,
        "period": {"first_day": FIRST_DAY.isoformat(), "last_day": LAST_DAY.isoformat(),
                   "as_of": LAST_DAY.isoformat()},
        "generated_rows": rows,
        "generate_s": round(generate_s, 1),
        "full_build_s": round(build["wall_s"], 2),
        "cpu_s": round(build["cpu_s"], 2),
        "full_build_cpu_s": round(build["cpu_s"], 2),
        "floor_s": round(floor_s, 2),
        "floor_cpu_s": round(floor_cpu_s, 2),
        "ratio_to_floor": ratio(build["wall_s"], floor_s),
        "ratio_to_floor_cpu": ratio(build["cpu_s"], floor_cpu_s),
        "peak_rss_gb": round(max(build["peak_rss_wait4_gb"], build["peak_rss_sampled_gb"]), 2),
        "peak_rss_wait4_gb": round(build["peak_rss_wait4_gb"], 2),
        "peak_rss_sampled_gb": round(build["peak_rss_sampled_gb"], 2),
        "wall_clock_shift_s": round(build["wall_clock_shift_s"], 3),
        "steps_s": round(steps_s, 2),
        "steps_cpu_s": round(steps_cpu_s, 2),
        "orchestration_s": round(build["wall_s"] - steps_s, 2),
        "orchestration_cpu_s": round(build["cpu_s"] - steps_cpu_s, 2),
        "no_floor_steps": no_floor,
        "no_floor_s": round(sum(steps[k]["wall_s"] for k in no_floor), 2),
        "no_floor_cpu_s": round(sum(steps[k]["cpu_s"] for k in no_floor), 2),
        "floor_method": ("raw: read_csv(all_varchar) per file; models, segments: CREATE TABLE AS "
                         "the compiled query (staging without ranking and rejects); events: the "
                         "query once over the whole range (occurred_at filter); "
                         "event_daily_counts: its generated query; one DuckDB connection with "
                         "the project's limits and functions"),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "steps": {key: {"wall_s": round(s["wall_s"], 3), "cpu_s": round(s["cpu_s"], 3),
                        "peak_rss_gb": round(s["peak_rss_gb"], 3),
                        "floor_s": rounded(s["floor_s"], 3),
                        "floor_cpu_s": rounded(s["floor_cpu_s"], 3),
                        "ratio_to_floor": ratio(s["wall_s"], s["floor_s"]),
                        "ratio_to_floor_cpu": ratio(s["cpu_s"], s["floor_cpu_s"]),
                        "floor_rows": s["floor_rows"]}
                  for key, s in sorted(steps.items(), key=lambda kv: -kv[1]["wall_s"])},
    }


def print_table(result: dict) -> None:
    """The steps of one scale, longest first, and the whole build against its floor."""
    def cell(value: float | None, width: int, digits: int = 2) -> str:
        return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"

    _say(f"\n{result['persons']:,} persons ({result['period']['first_day']} to "
         f"{result['period']['last_day']})")
    _say(f"{'step':<42} {'wall s':>8} {'CPU s':>8} {'floor s':>8} {'floor CPU':>9} "
         f"{'wall rt':>7} {'CPU rt':>6} {'RSS GB':>6}")
    for key, s in result["steps"].items():
        _say(f"{key:<42} {cell(s['wall_s'], 8)} {cell(s['cpu_s'], 8)} {cell(s['floor_s'], 8)} "
             f"{cell(s['floor_cpu_s'], 9)} {cell(s['ratio_to_floor'], 7, 1)} "
             f"{cell(s['ratio_to_floor_cpu'], 6, 1)} {cell(s['peak_rss_gb'], 6)}")
    _say(f"{'steps (sum)':<42} {cell(result['steps_s'], 8)} {cell(result['steps_cpu_s'], 8)}")
    _say(f"{'steps without a floor (sum)':<42} {cell(result['no_floor_s'], 8)} "
         f"{cell(result['no_floor_cpu_s'], 8)}")
    _say(f"{'orchestration (build - steps)':<42} {cell(result['orchestration_s'], 8)} "
         f"{cell(result['orchestration_cpu_s'], 8)}")
    _say(f"{'full build':<42} {cell(result['full_build_s'], 8)} "
         f"{cell(result['full_build_cpu_s'], 8)} {cell(result['floor_s'], 8)} "
         f"{cell(result['floor_cpu_s'], 9)} {cell(result['ratio_to_floor'], 7, 1)} "
         f"{cell(result['ratio_to_floor_cpu'], 6, 1)} {cell(result['peak_rss_gb'], 6)}")


def merge_results(path: Path, results: dict[str, dict]) -> None:
    """Write ``results`` (by persons) into ``path``, keeping the other scales it holds; a scale
    measured again keeps its earlier runs, newest first, under ``earlier_runs``."""
    existing = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB
    scales = dict(existing.get("scales", {}))
    for persons, result in results.items():
        before = dict(scales.get(persons) or {})
        earlier = before.pop("earlier_runs", [])
        scales[persons] = {**result, "earlier_runs": [before, *earlier] if before else earlier}
    merged = {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "mem_gb": round(memory_gb, 1),
                    "load_before": next(iter(results.values()))["load_before"],
                    "load_after": [round(x, 2) for x in os.getloadavg()]},
        "scales": dict(sorted(scales.items(), key=lambda kv: int(kv[0]))),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--scales", default="1000000",
                       help="persons per scale, comma-separated (default: 1000000)")
    scale.add_argument("--customers", type=int, help="one scale of this many persons")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help=f"results file to merge into (default: {RESULTS.relative_to(ROOT)})")
    # the floor's own process (see floors_of)
    parser.add_argument("--floor-of", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--as-of", type=date.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument("--first-day", type=date.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument("--last-day", type=date.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument("--floor-part", choices=("raw", "models"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_of:
        print(json.dumps(measure_floors(args.floor_of, args.as_of, args.first_day,
                                        args.last_day, args.floor_part)))
        return 0

    scales = [args.customers] if args.customers else [int(s) for s in args.scales.split(",")]
    work = args.work or Path(os.environ.get("TMPDIR", "/tmp")) / "crm-bench-scale"
    try:
        for persons in scales:
            try:
                result = bench_scale(persons, work / str(persons), args.keep)
            finally:  # one scale's files at a time on disk
                if not args.keep:
                    shutil.rmtree(work / str(persons), ignore_errors=True)
            print_table(result)
            merge_results(args.results, {str(persons): result})  # each scale once
            _say(f"-> {args.results}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
