"""Identity resolution at scale: ``python benchmarks/bench_identity.py [--customers N]``.

Generates N persons (default 1,000,000) with the demo generator, lands ``stores`` and
``customers`` in a temporary warehouse, stages them (the cleaning functions run here), then times
``resolve_identity`` alone and reports the pairwise precision and recall against the generator's
truth, the process's peak resident memory and DuckDB's own peak. The identity target is under
60 s here; the bars are precision >= 0.99 and recall >= 0.95.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402

from crm_assets.catalog import load_catalog  # noqa: E402
from crm_assets.demo import generate  # noqa: E402
from crm_assets.identity import dedupe_report, resolve_identity  # noqa: E402
from crm_assets.ingest.loader import load_source  # noqa: E402
from crm_assets.project import external_tables  # noqa: E402
from crm_assets.warehouse import ensure_framework_tables, prepare_connection  # noqa: E402
from crm_assets.warehouse.contacts import check_contacts  # noqa: E402
from crm_assets.warehouse.models import materialize_model  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _say(message: str) -> None:
    print(message, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        t0 = time.perf_counter()
        generate(tmp_path / "input", customers=args.customers, seed=args.seed)
        t_gen = time.perf_counter() - t0
        _say(f"generated in {t_gen:.1f} s")

        con = duckdb.connect(str(tmp_path / "crm.duckdb"))
        prepare_connection(con)
        ensure_framework_tables(con)
        t0 = time.perf_counter()
        for table in ("stores", "customers"):
            load_source(con, table, tmp_path / "input")
        t_load = time.perf_counter() - t0
        _say(f"raw load {t_load:.1f} s")

        by_table = load_catalog(PROJECT / "sql", external_tables()).by_table()
        t0 = time.perf_counter()
        check_contacts(con, "bench")
        for table in ("staging.stores", "staging.customers"):
            materialize_model(con, by_table[table], run_id="bench")
        t_stage = time.perf_counter() - t0
        _say(f"staging {t_stage:.1f} s")

        t0 = time.perf_counter()
        stats = resolve_identity(con)
        t_identity = time.perf_counter() - t0
        _say(f"identity {t_identity:.1f} s")
        rerun0 = time.perf_counter()
        resolve_identity(con)
        t_rerun = time.perf_counter() - rerun0

        report = dedupe_report(con, tmp_path / "input" / "_truth" / "customers.csv")
        duck_peak = con.execute(
            "SELECT max(memory_usage_bytes) FROM duckdb_memory()").fetchone()[0] or 0
        con.close()

    overall = report[0]
    print(f"customers (persons)     {args.customers:>12,}")
    print(f"source records          {stats['records']:>12,}")
    print(f"persons found           {stats['persons']:>12,}")
    print(f"generate                {t_gen:>11.1f} s")
    print(f"raw load                {t_load:>11.1f} s")
    print(f"staging (cleaning)      {t_stage:>11.1f} s")
    print(f"identity, first run     {t_identity:>11.1f} s")
    print(f"identity, re-run        {t_rerun:>11.1f} s")
    print(f"precision               {overall['precision']:>12.4f}")
    print(f"recall                  {overall['recall']:>12.4f}")
    print(f"peak RSS of the process {_peak_rss_mb():>10.0f} MB")
    print(f"duckdb memory now       {duck_peak / 2**20:>10.0f} MB")
    for row in report[1:]:
        if row["precision"] is not None and row["precision"] < 1 or (
                row["recall"] is not None and row["recall"] < 1):
            print(f"  {row['label']:<24} precision {row['precision']} recall {row['recall']} "
                  f"(true {row['true_pairs']}, predicted {row['predicted_pairs']}, "
                  f"correct {row['correct_pairs']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
