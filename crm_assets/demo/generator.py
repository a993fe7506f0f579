"""Demo data for the CRM warehouse: a bakery-café chain's CRM export, with the dirt of a real one.

Everything is generated *inside DuckDB*: SQL over ``range()``, where every random choice is a
slice of a hash of the row key (a person, a record, an order...) salted with the seed and the
purpose (:mod:`~crm_assets.demo.keyed_random`). Files are written with ``COPY`` in key order, so
the same seed and arguments give byte-identical files.

Next to the source files the generator writes the ground truth a matcher and the cleaning rules can
be scored against:

- ``_truth/customers.csv`` (``customer_id, person_id, dirt``): which person each customer record
  belongs to and what was done to it (``clean`` or ``;``-separated labels such as
  ``duplicate;email_case;phone_format``, ``email_typo``, ``invalid_email``,
  ``household_phone``, ``namesake_household``...). The first
  record of a person (the earliest registered, so also the lowest ``customer_id``) is the original.
- ``_truth/dirt.csv`` (``table_name, record_key, dirt``): every deliberately dirty record of the
  other tables; ``record_key`` is the table's key, ``order_id:line_number`` for ``order_items``.

``customers`` in the arguments counts *persons*; the customer records are ~20% more (duplicates).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import duckdb

from crm_assets.demo.activity import MAX_SPAN_DAYS, build_activity
from crm_assets.demo.fixed_tables import write_products, write_stores
from crm_assets.demo.interactions import build_interactions, write_interactions
from crm_assets.demo.orders import (
    build_orders,
    order_lookup_lists,
    write_order_items,
    write_orders,
    write_truth_dirt,
)
from crm_assets.demo.persons import build_persons
from crm_assets.demo.records import (
    build_records,
    phone_digit_lists,
    write_customers,
    write_truth_customers,
)
from crm_assets.demo.run import Run
from crm_assets.demo.sessions import build_sessions, write_sessions
from crm_assets.demo.sql_literals import lst

#: The source files (one per ``contracts.SOURCES`` table), in the order of the returned counts.
OUTPUT_FILES = (
    "stores",
    "products",
    "customers",
    "orders",
    "order_items",
    "interactions",
    "sessions",
)
TRUTH_DIR = "_truth"
TRUTH_FILES = (f"{TRUTH_DIR}/customers", f"{TRUTH_DIR}/dirt")


def generate(
    out_dir: Path,
    customers: int,
    seed: int,
    start: date = date(2025, 1, 1),
    end: date = date(2026, 6, 30),
    *,
    threads: int | None = None,
) -> dict[str, int]:
    """Write the demo CRM export and its ground truth to ``out_dir``.

    Args:
        out_dir: Directory to write ``<table>.csv`` (one per ``contracts.SOURCES`` table) and
            ``_truth/customers.csv`` + ``_truth/dirt.csv`` into; created if missing, files
            overwritten.
        customers: Number of distinct *persons* (customer records are ~20% more: duplicates).
        seed: Any integer; the same seed and arguments give byte-identical files.
        start: First day of activity (registrations, orders, campaigns, sessions).
        end: Last day of activity, inclusive; at most four years after ``start``.
        threads: DuckDB worker threads (default: one per core). The files do not depend on it.

    Returns:
        Data rows written per file, keyed by file stem (``"customers"``, ...,
        ``"_truth/customers"``, ``"_truth/dirt"``).
    """
    if customers < 50:
        raise ValueError("customers must be at least 50 (every trap needs a few persons)")
    if customers > 50_000_000:
        raise ValueError("customers above 50,000,000 would run out of unique phone numbers")
    if end <= start:
        raise ValueError("end must be after start")
    if (end - start).days >= MAX_SPAN_DAYS:
        raise ValueError(f"the period may span at most {MAX_SPAN_DAYS} days")
    out_dir = Path(out_dir)
    (out_dir / TRUTH_DIR).mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        # the big files are written in the order their rows are generated (see Run.copy_to_csv)
        con.execute("SET preserve_insertion_order = true")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        return _write_all(Run(con, customers, seed, start, end), out_dir)
    finally:
        con.close()


def build_lut(run: Run) -> None:
    """One row of lookup lists. Queries cross join it: a list literal inline in a query is
    rebuilt for every vector of rows, which costs seconds for large lists and many rows."""
    tables = {**order_lookup_lists(), **phone_digit_lists()}
    run.con.execute(
        "CREATE TABLE lut AS SELECT " + ", ".join(f"{lst(v)} AS {k}" for k, v in tables.items())
    )


def _write_all(run: Run, out_dir: Path) -> dict[str, int]:
    """Build the shared tables, then write the files in two chains at once; returns the rows
    per file in the order of ``OUTPUT_FILES`` and ``TRUTH_FILES``."""
    counts: dict[str, int] = {}
    counts["stores"] = write_stores(run, out_dir / "stores.csv")
    counts["products"] = write_products(run, out_dir / "products.csv")
    build_lut(run)
    build_persons(run)
    build_records(run)
    build_activity(run)
    # Two independent chains on two connections to the same database: DuckDB interleaves
    # their tasks on its worker threads, which fills the cores while one chain is in a
    # single-threaded phase (a sort's merge, the end of a COPY). Every query's result is
    # the same whatever runs beside it, so the files stay byte-identical.
    other = run.on(run.con.cursor())
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            rest = pool.submit(_customers_and_marketing, other, out_dir)
            counts.update(_orders_chain(run, out_dir))
            counts.update(rest.result())
    finally:
        other.con.close()
    return {name: counts[name] for name in (*OUTPUT_FILES, *TRUTH_FILES)}


def _orders_chain(run: Run, out_dir: Path) -> dict[str, int]:
    """Orders, their lines and the truth of their dirt."""
    out: dict[str, int] = {}
    build_orders(run)
    out["orders"] = write_orders(run, out_dir / "orders.csv")
    out["order_items"] = write_order_items(run, out_dir / "order_items.csv")
    out[f"{TRUTH_DIR}/dirt"] = write_truth_dirt(run, out_dir / TRUTH_DIR / "dirt.csv")
    return out


def _customers_and_marketing(run: Run, out_dir: Path) -> dict[str, int]:
    """Customer records and their truth, campaign interactions, sessions."""
    out: dict[str, int] = {}
    out["customers"] = write_customers(run, out_dir / "customers.csv")
    out[f"{TRUTH_DIR}/customers"] = write_truth_customers(
        run, out_dir / TRUTH_DIR / "customers.csv"
    )
    build_interactions(run)
    out["interactions"] = write_interactions(run, out_dir / "interactions.csv")
    build_sessions(run)
    out["sessions"] = write_sessions(run, out_dir / "sessions.csv")
    return out
