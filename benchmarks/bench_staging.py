"""Benchmark of ingest and staging at 1M generated customers: raw load and staging, timed apart.

Run: ``python benchmarks/bench_staging.py [--customers N] [--seed S] [--out DIR] [--threads N]``.

The CRM export is made by :func:`crm_assets.demo.generate` (1M persons, ~1.2M customer
records with their orders, lines, interactions and sessions; reused when ``--out`` already holds
it). Then, into a fresh warehouse file:

1. **raw load** per table (:func:`crm_assets.ingest.load_source`: encoding check, Arrow CSV read,
   one ``INSERT`` per file), and once more for ``customers.csv`` re-encoded as Windows-1251 with
   ``;`` separators, the path Russian CRM exports take;
2. **staging** per table (:func:`crm_assets.warehouse.models.materialize_model`: the SQL file,
   split into the table and ``staging.rejects``), the customers' cleaning UDFs with cold caches;
3. the **accounting check** per table (every raw row staged or rejected exactly once).

It prints seconds and rows per second for each step and the totals.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crm_assets.defs.resources import Warehouse
from crm_assets.functions.contacts import clear_cleaning_caches  # noqa: E402
from crm_assets.ingest.contracts import SOURCES  # noqa: E402
from crm_assets.ingest.loader import load_source, load_source_file  # noqa: E402
from crm_assets.project import load_project_catalog  # noqa: E402
from crm_assets.settings import load_settings  # noqa: E402
from crm_assets.warehouse.accounting import account_rows  # noqa: E402
from crm_assets.warehouse.models import materialize_model  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def generated(out: Path, customers: int, seed: int) -> Path:
    """The generator's files for (customers, seed) under ``out``, generated once."""
    folder = out / f"export-{customers}-{seed}"
    done = folder / ".complete"
    if not done.exists():
        from crm_assets.demo import generate

        started = time.perf_counter()
        counts = generate(folder, customers=customers, seed=seed)
        print(f"generated {counts} in {time.perf_counter() - started:.1f} s")
        done.touch()
    return folder


def cp1251_twin(src: Path, dst: Path) -> None:
    """``src`` (UTF-8, ``,``) as Windows-1251 with ``;``: DuckDB rewrites it, quoting as needed."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(f"""COPY (SELECT * FROM read_csv('{src}', all_varchar = true))
                        TO '{dst}.utf8' (HEADER, DELIMITER ';')""")
    finally:
        con.close()
    dst.write_bytes(Path(f"{dst}.utf8").read_text(encoding="utf-8").encode("cp1251"))
    Path(f"{dst}.utf8").unlink()


def line(label: str, rows: int, seconds: float) -> None:
    print(f"  {label:<34} {rows:>11,} rows  {seconds:8.2f} s  {rows / max(seconds, 1e-9):>12,.0f} "
          "rows/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all)")
    args = parser.parse_args()

    folder = generated(args.out, args.customers, args.seed)
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:
        warehouse_path = Path(tmp) / "bench.duckdb"
        settings = load_settings(input_dir=folder, warehouse_path=warehouse_path,
                                 landing_dir=None)
        catalog = load_project_catalog(settings)
        warehouse = Warehouse(database=str(warehouse_path))
        with warehouse.connect() as con:
            if args.threads:
                con.execute(f"SET threads = {int(args.threads)}")
            print(f"raw load ({folder})")
            load_total, load_rows = 0.0, 0
            for table in SOURCES:
                started = time.perf_counter()
                load = load_source(con, table, folder)
                seconds = time.perf_counter() - started
                rows = sum(r.rows for r in load.loaded)
                load_total += seconds
                load_rows += rows
                line(table, rows, seconds)
            line("total", load_rows, load_total)

            twin = Path(tmp) / "customers.csv"
            cp1251_twin(folder / "customers.csv", twin)
            with Warehouse(database=str(Path(tmp) / "twin.duckdb")).connect() as twin_con:
                started = time.perf_counter()
                twin_rows = load_source_file(twin_con, SOURCES["customers"], twin).rows
                line("customers as cp1251 ';' (aside)", twin_rows, time.perf_counter() - started)

            print("staging")
            clear_cleaning_caches()
            stage_total, stage_rows = 0.0, 0
            for d in catalog.definitions:
                if d.layer != "staging":
                    continue
                started = time.perf_counter()
                staged = materialize_model(con, d, run_id="bench")
                seconds = time.perf_counter() - started
                rejected = con.execute("SELECT count(*) FROM staging.rejects "
                                       "WHERE table_name = ?", [d.name]).fetchone()[0]
                stage_total += seconds
                stage_rows += staged + rejected
                line(f"{d.name} ({rejected:,} rejected)", staged + rejected, seconds)
            line("total", stage_rows, stage_total)

            print("accounting check")
            check_total = 0.0
            for table in SOURCES:
                started = time.perf_counter()
                result = account_rows(con, table)
                seconds = time.perf_counter() - started
                check_total += seconds
                assert result.ok, result
                line(table, result.raw_rows, seconds)
            line("total", stage_rows, check_total)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
