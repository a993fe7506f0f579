"""Benchmark of publishing the BI snapshot: first publish, nothing changed, one night's events.

Run: ``python benchmarks/bench_serving.py [--orders N] [--events N]``.

Builds a warehouse directly in DuckDB (no pipeline: only the sizes matter here) with the shapes
of the served tables at roughly a million customers: ``core.customers`` (1M), ``core.orders``
(``--orders``, default 8M), ``segments.<x>`` (3 of 300k), ``events.<x>`` (2 of ``--events``,
default 5M, over 18 months) and a mart, then times :func:`crm_assets.serving.publish`:

* **first**: every Parquet file written;
* **unchanged**: nothing to write, only the fingerprint scan;
* **one night**: one day of one event table replaced, as a nightly partition run does; one monthly
  file written.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crm_assets.serving.snapshot import publish  # noqa: E402
from crm_assets.warehouse import connect  # noqa: E402


def build(con, orders: int, events: int) -> None:
    con.execute("""CREATE TABLE core.customers AS SELECT range AS customer_id,
        'name ' || range AS first_name, 'surname ' || (range % 5000) AS last_name,
        'user' || range || '@mail.ru' AS email, '+7903' || lpad((range % 10000000)::VARCHAR, 7, '0')
        AS phone, DATE '1960-01-01' + (range % 15000)::INT AS birth_date,
        ['Москва', 'Казань', 'Новосибирск'][1 + range % 3] AS city FROM range(1000000)""")
    con.execute(f"""CREATE TABLE core.orders AS SELECT 'O' || range AS order_id,
        range % 1000000 AS customer_id, 'S' || (range % 40) AS store_id,
        TIMESTAMPTZ '2025-01-01 00:00:00+00' + to_seconds(range * 47000000 // {orders}) AS
        ordered_at, ['in_store', 'app', 'web'][1 + range % 3] AS channel, 'completed' AS status,
        (range % 5000)::DECIMAL(12, 2) AS total_amount FROM range({orders})""")
    for name in ("croissant_buyers", "rfm_champions", "churn_risk"):
        con.execute(f"CREATE TABLE segments.{name} AS SELECT range * 3 AS customer_id, "
                    "DATE '2026-06-30' AS as_of_date, 'v1' AS definition_version "
                    "FROM range(300000)")
    for name in ("croissant_purchase", "first_purchase"):
        con.execute(f"""CREATE TABLE events.{name} AS SELECT range % 1000000 AS customer_id,
            TIMESTAMPTZ '2025-01-01 00:00:00+00' + to_seconds(range * 47000000 // {events}) AS
            occurred_at, 'O' || range AS order_id, 'S' || (range % 40) AS store_id,
            (range % 700)::DECIMAL(12, 2) AS amount FROM range({events})""")
        con.execute(f"ALTER TABLE events.{name} ADD COLUMN event_date DATE")
        con.execute(f"UPDATE events.{name} SET event_date = CAST(timezone('Europe/Moscow', "
                    "occurred_at) AS DATE)")
    con.execute("""CREATE TABLE marts.segment_sizes_daily AS SELECT 'croissant_buyers' AS segment,
        DATE '2025-01-01' + range::INT AS day, range * 10 AS members FROM range(540)""")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=8_000_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        warehouse, serving = Path(tmp) / "crm.duckdb", Path(tmp) / "serving"
        with connect(warehouse) as con:
            t = time.perf_counter()
            build(con, args.orders, args.events)
            print(f"warehouse built in {time.perf_counter() - t:.1f} s")
            timings = {}
            for label in ("first", "unchanged", "one night"):
                if label == "one night":
                    con.execute("DELETE FROM events.croissant_purchase WHERE event_date = "
                                "(SELECT max(event_date) FROM events.croissant_purchase)")
                t = time.perf_counter()
                result = publish(con, serving)
                timings[label] = time.perf_counter() - t
                print(f"{label:<10} {timings[label]:6.2f} s: {result.tables} tables, "
                      f"{result.rows:,} rows, {result.files_written} files written, "
                      f"{result.files_reused} unchanged")
        size = sum(p.stat().st_size for p in serving.rglob("*") if p.is_file())
        print(f"snapshot on disk: {size / 1e6:.0f} MB; one night / first = "
              f"{timings['one night'] / timings['first']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
