"""Benchmark of the customer-base models at 1M persons: scoring every night, fitting every week.

Run: ``python benchmarks/bench_clv.py [--customers N] [--work DIR] [--keep] [--repeat K]``.

1. ``crm generate`` writes the demo chain's CRM export (18 months to 2026-06-30) and ``crm build``
   builds it, as of 2026-06-30 (event days: the last one only; events are not this benchmark's
   subject). The build's step times give what Dagster took to materialise
   ``core/customer_purchase_summary``, ``core/customer_predictions`` and the fit
   (``meta/clv_models``).
2. ``crm clv fit --as-of 2026-06-30`` runs the weekly fit as its own process (wall, CPU, peak RSS).
3. The floor, in the same run, in one plain DuckDB connection on the same warehouse, ``--repeat``
   times, interleaved: each query bare (``CREATE TEMP TABLE ... AS <the definition's SQL>``):
   the summary as of the day; the predictions (summary and scoring UDFs); the scoring alone as
   NumPy over the summary's arrays (what the UDFs cost over plain vector math); the fit's SQL
   (the summary as of the calibration end and as of the day) and its SciPy fits on the same
   sample.

Results go to ``benchmarks/results/clv.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_nightly import step_times, timed  # noqa: E402

from crm_assets.clv import models  # noqa: E402
from crm_assets.functions.registry import set_as_of_date  # noqa: E402
from crm_assets.project import load_project_catalog  # noqa: E402
from crm_assets.settings import load_settings  # noqa: E402
from crm_assets.warehouse.connection import prepare_connection, use_functions_of  # noqa: E402

AS_OF = date(2026, 6, 30)
STEPS = ("core__customer_purchase_summary", "core__customer_predictions", "meta__clv_models")


def _say(message: str) -> None:
    print(message, flush=True)


def _seconds(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def floors(warehouse: Path, zone: str, holdout_days: int, sample: int, repeat: int) -> dict:
    """Each query bare in one connection, and the fit's maths alone, ``repeat`` times."""
    catalog = load_project_catalog(load_settings())
    by_table = catalog.by_table()
    summary = by_table["core.customer_purchase_summary"]
    predictions = by_table["core.customer_predictions"]
    con = duckdb.connect(str(warehouse), read_only=True)
    prepare_connection(con, zone)
    use_functions_of(con, predictions)
    cal = AS_OF - timedelta(days=holdout_days)
    params = con.execute("SELECT r, alpha, a, b, p, q, gamma FROM meta.clv_models "
                         "ORDER BY fitted_at DESC LIMIT 1").fetchone()
    bg, gg = models.BgNbd(*params[:4]), models.GammaGamma(*params[4:])

    def summary_sql():
        set_as_of_date(con, AS_OF)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _s AS {summary.body}")

    def predictions_sql():
        set_as_of_date(con, AS_OF)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _p AS "
                    f"{predictions.body.replace('core.customer_purchase_summary', '_s')}")

    def scoring_numpy():
        s = con.execute("SELECT frequency::DOUBLE AS x, recency_weeks AS t_x, age_weeks AS t, "
                        "mean_repeat_spend AS m FROM _s").fetchnumpy()
        models.p_alive(bg, s["x"], s["t_x"], s["t"])
        models.expected_purchases(bg, 30 / 7, s["x"], s["t_x"], s["t"])
        models.expected_purchases(bg, 90 / 7, s["x"], s["t_x"], s["t"])
        models.expected_spend(gg, s["x"], s["m"].filled(float("nan"))
                              if hasattr(s["m"], "filled") else s["m"])
        models.discounted_purchases(bg, 12, 0.01, s["x"], s["t_x"], s["t"])

    def fit_sql():
        for day in (cal, AS_OF):
            set_as_of_date(con, day)
            con.execute(f"CREATE OR REPLACE TEMP TABLE _f AS {summary.body}")

    def fit_maths():
        set_as_of_date(con, cal)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _c AS {summary.body}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE _sample AS SELECT * FROM _c ORDER BY "
                    f"hash(customer_id::VARCHAR || ':crm'), customer_id LIMIT {sample}")
        g = con.execute("SELECT frequency::DOUBLE AS x, recency_weeks AS t_x, age_weeks AS t, "
                        "count(*)::DOUBLE AS n FROM _sample GROUP BY ALL").fetchnumpy()
        started = time.perf_counter()
        models.fit_bgnbd(g["x"], g["t_x"], g["t"], g["n"])
        r = con.execute("SELECT frequency::DOUBLE AS x, mean_repeat_spend AS m FROM _sample "
                        "WHERE frequency > 0 AND mean_repeat_spend > 0").fetchnumpy()
        models.fit_gamma_gamma(r["x"], r["m"])
        timings.setdefault("scipy_fits_only", []).append(time.perf_counter() - started)

    timings: dict[str, list] = {}
    summary_sql()  # warm: the first read of the files
    for _ in range(repeat):
        for name, fn in (("summary_sql", summary_sql), ("predictions_sql", predictions_sql),
                         ("scoring_numpy", scoring_numpy), ("fit_sql", fit_sql),
                         ("fit_sql_and_scipy", fit_maths)):
            timings.setdefault(name, []).append(_seconds(fn))
    people = con.execute("SELECT count(*) FROM _s").fetchone()[0]
    con.close()
    out = {"people_scored": people}
    for name, values in timings.items():
        if name == "scipy_fits_only":
            out[name] = {"wall_s": round(statistics.median(values), 3)}
        else:
            out[name] = {"wall_s": round(statistics.median(v[0] for v in values), 3),
                         "cpu_s": round(statistics.median(v[1] for v in values), 3)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the working folder's generated data and warehouse")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = args.work or Path(os.environ.get("TMPDIR", "/tmp")) / "crm-bench-clv"
    if not args.reuse:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    crm = str(Path(sys.executable).with_name("crm"))
    env = {**os.environ, "CRM_PROJECT_DIR": str(ROOT), "CRM_INPUT_DIR": str(work / "input"),
           "CRM_WAREHOUSE": str(work / "warehouse" / "crm.duckdb"),
           "CRM_CATALOG_CACHE": str(work / "catalog_cache.json"),
           "CRM_PARTITION_START": "2025-01-01", "DAGSTER_HOME": str(work / "dagster_home")}
    settings = load_settings()
    result: dict = {"persons": args.customers}
    try:
        if not (args.reuse and (work / "warehouse" / "crm.duckdb").exists()):
            started = time.perf_counter()
            subprocess.run([crm, "generate", "--customers", str(args.customers), "--out",
                            str(work / "input"), "--seed", "42"], env=env, check=True,
                           capture_output=True)
            _say(f"generated {args.customers:,} persons in {time.perf_counter() - started:.0f} s")
            build = timed([crm, "build", "--as-of", AS_OF.isoformat(), "--first-day",
                           AS_OF.isoformat(), "--last-day", AS_OF.isoformat(), "-q"], env)
            steps = step_times(env)
            build["clv_steps_s"] = {k: steps.get(k) for k in STEPS}
            result["build"] = build
            _say(f"build: {build['wall_s']} s wall; steps {build['clv_steps_s']}")
        fit = timed([crm, "clv", "fit", "--as-of", AS_OF.isoformat(), "-q"], env)
        fit["step_s"] = step_times(env).get("meta__clv_models")
        result["crm_clv_fit"] = fit
        _say(f"crm clv fit: {fit}")
        floor = floors(work / "warehouse" / "crm.duckdb", settings.business_timezone,
                       settings.clv_holdout_days, settings.clv_fit_sample_size, args.repeat)
        result["floor"] = floor
        _say(f"floor: {json.dumps(floor)}")
        con = duckdb.connect(str(work / "warehouse" / "crm.duckdb"), read_only=True)
        result["model"] = dict(zip(
            ["population", "sample_size", "r", "alpha", "a", "b", "p", "q", "gamma",
             "holdout_error", "fit_seconds"],
            con.execute("SELECT population, sample_size, r, alpha, a, b, p, q, gamma, "
                        "holdout_error, fit_seconds FROM meta.clv_models "
                        "ORDER BY fitted_at DESC LIMIT 1").fetchone(), strict=True))
        con.close()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    steps = result.get("build", {}).get("clv_steps_s", {})
    for step, bare in (("core__customer_purchase_summary", "summary_sql"),
                       ("core__customer_predictions", "predictions_sql")):
        if steps.get(step):
            result[f"{step}_over_floor"] = round(steps[step] / floor[bare]["wall_s"], 2)
    if fit.get("step_s"):
        # the fit's floor: its two summaries bare, and the SciPy fits on the same sample
        result["fit_step_over_floor"] = round(fit["step_s"] / (
            floor["fit_sql"]["wall_s"] + floor["scipy_fits_only"]["wall_s"]), 2)
    result["machine"] = {"cores": os.cpu_count(), "load_after": os.getloadavg()}
    out = ROOT / "benchmarks" / "results" / "clv.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    _say(f"-> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
