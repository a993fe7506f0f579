"""Commands that read: the catalogue, the warehouse (read-only), never the pipeline's runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb

from crm_assets.catalog import CatalogError
from crm_assets.catalog.definition import UnknownName, resolve_table
from crm_assets.identity.report import cell, dedupe_report
from crm_assets.project import load_project_catalog
from crm_assets.serving.snapshot import VIEWS_FILE
from crm_assets.settings import Settings, load_settings
from crm_assets.tools.lineage import LineageTracer, format_tree
from crm_assets.tools.versions import format_history, history
from crm_assets.warehouse.connection import WarehouseBusy, connect, table_exists
from crm_assets.warehouse.tables import DEFINITION_VERSIONS


def reading(settings: Settings, fn: Callable[[duckdb.DuckDBPyConnection], int]) -> int:
    """``fn`` on the warehouse opened read-only; 1, saying why, when it cannot be opened."""
    try:
        with connect(settings.warehouse_path, read_only=True) as con:
            return fn(con)
    except WarehouseBusy as err:
        print(err, file=sys.stderr)
        return 1


def cmd_validate(args: argparse.Namespace) -> int:
    settings = load_settings()
    paths = [Path(p).resolve() for p in args.paths]
    only = set(paths)
    files = [p for p in paths if p.is_file()]
    for p in paths:
        if p.is_dir():
            files.extend(sorted(p.rglob("*.sql")))
    catalog = load_project_catalog(settings, paths=files, root=Path.cwd())
    problems = catalog.problems
    if only:
        wanted = {str(f.resolve()) for f in files}
        problems = [p for p in problems
                    if str((Path.cwd() / p.path).resolve()) in wanted
                    or str((settings.project_dir / p.path).resolve()) in wanted]
    for problem in problems:
        print(problem)
    checked = len(files) if only else len(catalog.definitions)
    if problems:
        files_bad = len({p.path for p in problems})
        print(f"{files_bad} invalid file(s), {len(problems)} problem(s)", file=sys.stderr)
        return 1
    cached = "" if catalog.parsed == len(catalog.definitions) else (
        f" ({catalog.parsed} parsed, {catalog.bound} bound; the rest unchanged, from the cache)")
    print(f"{checked} definition(s) valid{cached}")
    return 0


def print_summary(settings: Settings, days: int = 7) -> int:
    """Each segment with its size, and event rows per day for the last ``days`` days."""
    code = reading(settings, lambda con: _print_sizes(con, days))
    views = settings.serving_path / VIEWS_FILE
    if code == 0 and views.exists():
        print(f"BI snapshot (open read-only; DuckDB 1.x readable): {views}")
    return code


def _print_sizes(con: duckdb.DuckDBPyConnection, days: int) -> int:
    segs = con.execute(
            """SELECT r.segment, r.as_of_date, r.members, r.entered, r.exited
               FROM meta.segment_runs r
               QUALIFY row_number() OVER (PARTITION BY segment ORDER BY as_of_date DESC,
                                          computed_at DESC) = 1
               ORDER BY segment""").fetchall()
    print("Segments (as of, members, entered, left on the last run):")
    for name, as_of, members, entered, exited in segs:
        print(f"  {name:<32} {as_of}  {members:>8}  +{entered} -{exited}")
    if table_exists(con, "marts.event_daily_counts"):
        rows = con.execute(
            """SELECT event, event_date, occurrences, customers FROM marts.event_daily_counts
               QUALIFY row_number() OVER (PARTITION BY event ORDER BY event_date DESC) <= ?
               ORDER BY event, event_date""", [days]).fetchall()
        print(f"Events (rows and customers per day, last {days} days with data):")
        for event, day, occurrences, customers in rows:
            print(f"  {event:<32} {day}  {occurrences:>8} rows  {customers:>8} customers")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    return print_summary(load_settings(), days=args.days)


def cmd_dedupe_report(args: argparse.Namespace) -> int:
    settings = load_settings()
    truth = Path(args.truth) if args.truth else settings.input_dir / "_truth" / "customers.csv"

    def show(con: duckdb.DuckDBPyConnection) -> int:
        print(f"{'label':<24}{'records':>9}{'true_pairs':>12}{'pred_pairs':>12}{'correct':>9}"
              f"{'precision':>11}{'recall':>9}")
        for row in dedupe_report(con, truth):
            print(f"{row['label']:<24}{cell(row['records']):>9}{cell(row['true_pairs']):>12}"
                  f"{cell(row['predicted_pairs']):>12}{cell(row['correct_pairs']):>9}"
                  f"{cell(row['precision']):>11}{cell(row['recall']):>9}")
        return 0

    return reading(settings, show)


def cmd_customer(args: argparse.Namespace) -> int:
    """A person's golden record, source records and current segments, by any id they had."""
    return reading(load_settings(), lambda con: _print_customer(con, args.id, source=args.source))


def _print_customer(con, given_id: str, *, source: bool) -> int:
    if source:
        row = con.execute("SELECT customer_id FROM core.customer_identity "
                          "WHERE source_customer_id = ?", [given_id]).fetchone()
        if row is None:
            print(f"no source record {given_id!r}", file=sys.stderr)
            return 1
        given = row[0]
    else:
        try:
            given = int(given_id)
        except ValueError:
            print(f"customer_id must be a number (or use --source for {given_id!r})",
                  file=sys.stderr)
            return 2
    row = con.execute("SELECT customer_id, is_merged FROM core.customer_ids "
                      "WHERE any_customer_id = ?", [given]).fetchone()
    also_source = None if source else con.execute(
        "SELECT customer_id FROM core.customer_identity WHERE source_customer_id = ?",
        [given_id]).fetchone()
    if row is None:
        print(f"unknown customer_id {given} (the warehouse's person id)"
              + (f"; {given_id!r} is a source record id, of person {also_source[0]}: "
                 f"crm customer {given_id} --source" if also_source else ""), file=sys.stderr)
        return 1
    customer_id, merged = row
    how = f"source record {given_id!r}" if source else f"customer_id {given}"
    print(f"person {customer_id} (customer_id: the warehouse's person id), found by {how}")
    if also_source and not source:
        print(f"note: {given_id!r} is also a source record id, of person {also_source[0]} "
              f"(crm customer {given_id} --source)")
    if merged:
        print(f"customer_id {given} was merged into {customer_id}")
    golden = con.execute("SELECT * FROM core.customers WHERE customer_id = ?", [customer_id])
    names = [d[0] for d in golden.description]
    for name, value in zip(names, golden.fetchone(), strict=True):
        print(f"  {name:<22} {value}")
    sources = con.execute("SELECT source_customer_id, match_rule FROM core.customer_identity "
                          "WHERE customer_id = ? ORDER BY 1", [customer_id]).fetchall()
    print("source records: " + ", ".join(f"{s} ({r})" for s, r in sources))
    segments = con.execute("SELECT segment, valid_from FROM marts.segment_membership_history "
                           "WHERE customer_id = ? AND valid_to IS NULL ORDER BY 1",
                           [customer_id]).fetchall()
    print("segments now: " + (", ".join(f"{s} (since {d})" for s, d in segments) or "none"))
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    """The history of one definition; works without a warehouse (then only the file is known)."""
    settings = load_settings()
    try:
        by_table = load_project_catalog(settings).by_table()
    except CatalogError as err:
        print(err, file=sys.stderr)
        return 1

    def show(con: duckdb.DuckDBPyConnection | None) -> int:
        recorded: set[str] = set()
        if con is not None and table_exists(con, DEFINITION_VERSIONS.name):
            recorded = {r[0] for r in con.execute(
                f"SELECT DISTINCT layer || '.' || name FROM {DEFINITION_VERSIONS.name}"
            ).fetchall()}
        try:
            table = resolve_table(args.name, set(by_table) | recorded)
        except UnknownName as err:
            print(err, file=sys.stderr)
            return 1
        d = by_table.get(table)
        print(format_history(table, history(con, table) if con is not None else [],
                             d.version if d is not None and d.version else None,
                             d.body if d is not None else None))
        return 0

    return reading(settings, show) if settings.warehouse_path.exists() else show(None)


def cmd_lineage(args: argparse.Namespace) -> int:
    """The upstream tree of ``NAME.COLUMN``; needs no warehouse."""
    name, _, column = args.column.rpartition(".")
    if not name or not column:
        print("expected NAME.COLUMN (e.g. segments.croissant_buyers.customer_id), got "
              f"{args.column!r}", file=sys.stderr)
        return 1
    catalog = load_project_catalog(load_settings())
    try:
        table = resolve_table(name, catalog.by_table())
    except UnknownName as err:
        print(err, file=sys.stderr)
        return 1
    if catalog.by_table()[table].ast is None:
        print(f"{table} does not parse; run `crm validate`", file=sys.stderr)
        return 1
    try:
        tree = LineageTracer(catalog).tree(table, column)
    except KeyError as err:
        print(err.args[0], file=sys.stderr)
        return 1
    print(format_tree(tree))
    return 0
