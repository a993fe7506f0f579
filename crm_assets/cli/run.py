"""Commands that launch runs on the Dagster instance: ``demo``, ``build``, ``segment-history``,
``plan``, and ``generate`` (demo data)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from crm_assets.catalog import CatalogError
from crm_assets.cli.inspect import print_summary, reading
from crm_assets.cli.instance import ensure_dagster_home
from crm_assets.cli.progress import Progress
from crm_assets.defs.definitions import build_definitions
from crm_assets.defs.runs import (
    BuildResult,
    build_all,
    erase,
    nightly,
    rebuild_history,
    unmerge,
    watching,
)
from crm_assets.settings import Settings, load_settings
from crm_assets.tools.plan import apply_plan, make_plan
from crm_assets.tools.status import collect_status, format_status
from crm_assets.warehouse.connection import WarehouseBusy, connect


def showing_progress(args: argparse.Namespace) -> AbstractContextManager:
    """Each run's steps printed as they happen (stderr), unless ``--quiet``."""
    return nullcontext() if getattr(args, "quiet", False) else watching(Progress())


def warn_failed_checks(result: BuildResult) -> None:
    """A successful run's failed checks (a refused file, a warning), on stderr: never silent."""
    for line in result.failed_checks:
        print(f"warning: check failed: {line}", file=sys.stderr)


def as_of(args: argparse.Namespace, settings: Settings) -> date:
    """``--as-of``, else yesterday in the business time zone."""
    return date.fromisoformat(args.as_of) if args.as_of else settings.yesterday()


def cmd_build(args: argparse.Namespace, demo: bool = False) -> int:
    """Everything in one run; the demo adds 26 weeks of weekly segment history."""
    settings = load_settings()
    ensure_dagster_home(settings)
    day = date.fromisoformat(args.as_of) if args.as_of else (
        settings.demo_as_of if demo else settings.yesterday())
    first = date.fromisoformat(args.first_day) if args.first_day else settings.partition_start
    last = date.fromisoformat(args.last_day) if args.last_day else day
    with showing_progress(args):
        result = build_all(settings, as_of=day, first_day=first, last_day=last,
                           full_refresh=getattr(args, "full_refresh", False))
        if result.success and demo:  # and half a year of weekly segment history
            result = rebuild_history(settings, None, first=day - timedelta(weeks=26), last=day,
                                     every_days=7)
    if not result.success:
        print(result.error, file=sys.stderr)
        return 1
    warn_failed_checks(result)
    return print_summary(settings, days=args.days)


def cmd_nightly(args: argparse.Namespace) -> int:
    """The nightly run for ``--day`` (default yesterday, business time), as the schedule runs it."""
    settings = load_settings()
    ensure_dagster_home(settings)
    day = date.fromisoformat(args.day) if args.day else settings.yesterday()
    started = time.perf_counter()
    with showing_progress(args):
        result = nightly(settings, day)
    if not result.success:
        print(result.error, file=sys.stderr)
        return 1
    warn_failed_checks(result)
    print(f"nightly run for {day} done in {time.perf_counter() - started:.1f} s "
          f"(run {result.run_id})")
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    """One erasure request; prints what was erased (counts and ids, never the contact)."""
    settings = load_settings()
    ensure_dagster_home(settings)
    selector, value = next((s, v) for s, v in (
        ("customer", args.customer), ("source_id", args.source_id), ("email", args.email),
        ("phone", args.phone)) if v is not None)
    with showing_progress(args):
        result = erase(settings, selector, value, args.reason)
    if not result.success:
        print(result.error, file=sys.stderr)
        return 1

    def show(con) -> int:
        erasure_id, ids, sources, deleted = con.execute(
            "SELECT erasure_id, customer_ids, source_records, rows_deleted FROM meta.erasures "
            "WHERE run_id = ?", [result.run_id]).fetchone()
        rows = sum(json.loads(deleted).values())
        print(f"erasure {erasure_id}: " + (
            f"person {', '.join(map(str, ids))}: {sources} source record(s), {rows} row(s) "
            "deleted; snapshots republished, exports rewritten" if ids or sources else
            "nobody found; what was given is suppressed for later files"))
        return 0

    return reading(settings, show)


def cmd_unmerge(args: argparse.Namespace) -> int:
    """Split records off a person, then the nightly run that re-keys what depends on them."""
    settings = load_settings()
    ensure_dagster_home(settings)
    records = [r for r in args.records.split(",") if r.strip()]
    with showing_progress(args):
        result = unmerge(settings, args.customer, records, args.reason,
                         day=date.fromisoformat(args.day) if args.day else None)
    if not result.success:
        print(result.error, file=sys.stderr)
        return 1

    def show(con) -> int:
        person, new_id, n = con.execute(
            "SELECT customer_id, new_customer_id, records FROM meta.customer_unmerges "
            "ORDER BY unmerged_at DESC LIMIT 1").fetchone()
        print(f"person {person}: {n} record(s) split off as person {new_id}; identity will not "
              "join them again")
        return 0

    return reading(settings, show)


def cmd_segment_history(args: argparse.Namespace) -> int:
    settings = load_settings()
    ensure_dagster_home(settings)
    first = date.fromisoformat(args.first_day)
    with showing_progress(args):
        result = rebuild_history(settings, args.names, first=first,
                                 last=date.fromisoformat(args.last_day) if args.last_day
                                 else None, every_days=args.every)
    if not result.success:
        print(result.error, file=sys.stderr)
        return 1

    def show(con) -> int:
        rows = con.execute(
            "SELECT segment, as_of_date, members, entered, exited FROM meta.segment_runs "
            "WHERE list_contains(?, segment) AND as_of_date >= ? ORDER BY ALL",
            [args.names, first]).fetchall()
        print("segment                          as of         members  entered   exited")
        for name, day, members, entered, exited in rows:
            print(f"{name:<32} {day}  {members:>8} {entered:>8} {exited:>8}")
        return 0

    return reading(settings, show)


def cmd_plan(args: argparse.Namespace) -> int:
    """What to rebuild because SQL on disk changed; with ``--apply``, rebuild it."""
    settings = load_settings()
    ensure_dagster_home(settings)
    instance = dg.DagsterInstance.get()
    if not settings.warehouse_path.exists():
        print(f"no warehouse at {settings.warehouse_path}: nothing was built yet (`crm build`)",
              file=sys.stderr)
        return 1
    try:
        defs = build_definitions(settings)
        with connect(settings.warehouse_path, read_only=True) as con:  # closed before any run
            plan = make_plan(defs, con, as_of=as_of(args, settings),
                             partition_start=settings.partition_start, instance=instance)
    except (CatalogError, WarehouseBusy) as err:
        print(err, file=sys.stderr)
        return 1
    print(plan.dumps() if args.json else plan.format())
    if not args.apply or plan.empty:
        return 0
    status = 0
    with showing_progress(args):
        applied_runs = list(apply_plan(plan, defs, instance, settings=settings))
    for i, applied in enumerate(applied_runs, 1):
        result = applied.result
        verdict = "ok" if result.success else "FAILED"
        stream = sys.stderr if args.json or not result.success else sys.stdout
        print(f"run {i}/{len(plan.runs)} {verdict} ({result.run_id})", file=stream)
        if not result.success:
            print(result.error, file=sys.stderr)
            status = 1
    return status


def cmd_status(args: argparse.Namespace) -> int:
    """Runs, stale assets, missing event days, refused files, reject rates, freshness; 1 when
    something needs a person."""
    settings = load_settings()
    ensure_dagster_home(settings)
    try:
        defs = build_definitions(settings)
    except CatalogError as err:
        print(err, file=sys.stderr)
        return 1
    status = collect_status(settings, defs, dg.DagsterInstance.get())
    print(status.to_json() if args.json else format_status(status))
    return 1 if status.attention else 0


def cmd_generate(args: argparse.Namespace) -> int:
    from crm_assets.demo import generate  # a tool beside the product, imported only here

    counts = generate(Path(args.out), customers=args.customers, seed=args.seed,
                      **({"start": date.fromisoformat(args.start)} if args.start else {}),
                      **({"end": date.fromisoformat(args.end)} if args.end else {}))
    for name, rows in counts.items():
        print(f"{name}: {rows} rows")
    return 0
