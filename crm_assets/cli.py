"""``crm``: the project's command line.

Every command that writes the warehouse runs through Dagster (a real run on the instance under
``DAGSTER_HOME``), so runs from the CLI show up in the UI with their metadata and checks.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from datetime import date, timedelta
from pathlib import Path

from crm_assets.settings import Settings, load_settings


def psycopg2_url(url: str) -> str:
    """``url`` with the psycopg2 driver named: SQLAlchemy 2.1 reads a plain ``postgresql://`` as
    psycopg 3, on which dagster-postgres' ``NOTIFY run_events, %(id)s`` is a syntax error."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg2://" + url[len(plain):]
    return url


def ensure_dagster_home(settings: Settings) -> Path:
    """Point ``DAGSTER_HOME`` at ``<project>/.dagster_home`` (unless set) holding dagster.yaml.

    With ``DAGSTER_PG_URL`` set, the instance stores runs and events in that PostgreSQL
    database (``dagster.postgres.yaml``) instead of SQLite files under ``DAGSTER_HOME``.
    """
    home = Path(os.environ.get("DAGSTER_HOME") or settings.project_dir / ".dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    url = os.environ.get("DAGSTER_PG_URL")
    if url:
        os.environ["DAGSTER_PG_URL"] = psycopg2_url(url)
    config = "dagster.postgres.yaml" if url else "dagster.yaml"
    source = settings.project_dir / config
    target = home / "dagster.yaml"
    if source.exists() and (not target.exists() or target.read_bytes() != source.read_bytes()):
        shutil.copyfile(source, target)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _cmd_validate(args: argparse.Namespace) -> int:
    from crm_assets.definitions import load_project_catalog

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


def _cmd_generate(args: argparse.Namespace) -> int:
    from crm_assets.generator import generate

    counts = generate(Path(args.out), customers=args.customers, seed=args.seed,
                      **({"start": date.fromisoformat(args.start)} if args.start else {}),
                      **({"end": date.fromisoformat(args.end)} if args.end else {}))
    for name, rows in counts.items():
        print(f"{name}: {rows} rows")
    return 0


def _cmd_build(args: argparse.Namespace, demo: bool = False) -> int:
    from crm_assets.runner import build_all, print_summary

    settings = load_settings()
    ensure_dagster_home(settings)
    as_of = date.fromisoformat(args.as_of) if args.as_of else (
        settings.demo_as_of if demo else settings.yesterday())
    first = date.fromisoformat(args.first_day) if args.first_day else settings.partition_start
    last = date.fromisoformat(args.last_day) if args.last_day else as_of
    result = build_all(settings, as_of=as_of, first_day=first, last_day=last)
    if result.success and demo:  # and half a year of weekly segment history, for sizes over time
        from crm_assets.runner import rebuild_history

        result = rebuild_history(settings, None, first=as_of - timedelta(weeks=26), last=as_of,
                                 every_days=7)
    if not result.success:
        print(result.error, file=sys.stderr)
        return 1
    print_summary(settings, days=args.days)
    return 0


def _cmd_segment_history(args: argparse.Namespace) -> int:
    from crm_assets.runner import print_history, rebuild_history

    settings = load_settings()
    ensure_dagster_home(settings)
    first = date.fromisoformat(args.first_day)
    result = rebuild_history(settings, args.names, first=first,
                             last=date.fromisoformat(args.last_day) if args.last_day else None,
                             every_days=args.every)
    if not result.success:
        print(result.error, file=sys.stderr)
        return 1
    print_history(settings, args.names, first)
    return 0


def _cmd_audience(args: argparse.Namespace) -> int:
    from crm_assets.audiences import AudienceError, build_audience
    from crm_assets.serving import VIEWS_FILE

    settings = load_settings()
    out = Path(args.out or f"{args.name}_{args.channel}.csv")
    try:
        result = build_audience(
            settings.serving_path / VIEWS_FILE, args.name, out, channel=args.channel,
            seed=args.seed or args.name, holdout_pct=args.holdout, sample_pct=args.sample,
            day=date.fromisoformat(args.day) if args.day else None)
    except AudienceError as err:
        print(err, file=sys.stderr)
        return 1
    print(f"{args.name}: {result.members} people, {result.reachable} reachable by {args.channel}; "
          f"{result.target} target, {result.holdout} holdout -> {out}")
    return 0


def _cmd_spark(args: argparse.Namespace) -> int:
    from crm_assets.definitions import load_project_catalog
    from crm_assets.spark import SparkRunError, run_definition, spark_session
    from crm_assets.versions import UnknownName, resolve_table

    settings = load_settings()
    catalog = load_project_catalog(settings)
    by_table = catalog.by_table()
    try:
        tables = [resolve_table(name, by_table) for name in args.names]
    except UnknownName as err:
        print(err, file=sys.stderr)
        return 1
    as_of = date.fromisoformat(args.as_of) if args.as_of else settings.yesterday()
    spark = spark_session(args.master)
    failed = 0
    try:
        for table in tables:
            try:
                run = run_definition(spark, by_table[table], settings.serving_path, Path(args.out),
                                     as_of=as_of, business_timezone=settings.business_timezone)
            except SparkRunError as err:
                print(err, file=sys.stderr)
                failed += 1
                continue
            print(f"{table}: {run.rows} rows as of {as_of} -> {run.path}")
    finally:
        spark.stop()
    return 1 if failed else 0


def _cmd_dev(args: argparse.Namespace) -> int:
    """``dagster dev`` on this project, with the same instance set-up as every other command."""
    settings = load_settings()
    ensure_dagster_home(settings)
    dagster = Path(sys.executable).with_name("dagster")
    os.chdir(settings.project_dir)
    os.execv(dagster, [str(dagster), "dev", "-w", "workspace.yaml", *args.dagster_args])
    return 0  # not reached: the process is now dagster dev


def _cmd_summary(args: argparse.Namespace) -> int:
    from crm_assets.runner import print_summary

    print_summary(load_settings(), days=args.days)
    return 0


def _cmd_dedupe_report(args: argparse.Namespace) -> int:
    from crm_assets.identity import dedupe_report
    from crm_assets.warehouse import connect

    settings = load_settings()
    truth = Path(args.truth) if args.truth else settings.input_dir / "_truth" / "customers.csv"
    with connect(settings.warehouse_path, read_only=True) as con:
        rows = dedupe_report(con, truth)
    print(f"{'label':<24}{'records':>9}{'true_pairs':>12}{'pred_pairs':>12}{'correct':>9}"
          f"{'precision':>11}{'recall':>9}")
    for row in rows:
        def fmt(v):
            return "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))
        print(f"{row['label']:<24}{fmt(row.get('records')):>9}{fmt(row.get('true_pairs')):>12}"
              f"{fmt(row.get('predicted_pairs')):>12}{fmt(row.get('correct_pairs')):>9}"
              f"{fmt(row.get('precision')):>11}{fmt(row.get('recall')):>9}")
    return 0


def _as_of(args: argparse.Namespace, settings: Settings) -> date:
    return date.fromisoformat(args.as_of) if args.as_of else settings.yesterday()


def _cmd_versions(args: argparse.Namespace) -> int:
    from crm_assets.versions import versions_command

    return versions_command(load_settings(), args.name)


def _cmd_plan(args: argparse.Namespace) -> int:
    import dagster as dg

    from crm_assets.versions import plan_command

    settings = load_settings()
    ensure_dagster_home(settings)
    return plan_command(settings, as_of=_as_of(args, settings), as_json=args.json,
                        apply=args.apply, instance=dg.DagsterInstance.get())


def _cmd_lineage(args: argparse.Namespace) -> int:
    from crm_assets.lineage import lineage_command

    return lineage_command(load_settings(), args.column)


def _cmd_compile(args: argparse.Namespace) -> int:
    from crm_assets.dialects import compile_command

    settings = load_settings()
    return compile_command(settings, args.name, args.dialect, _as_of(args, settings))


def _cmd_customer(args: argparse.Namespace) -> int:
    from crm_assets.warehouse import connect

    settings = load_settings()
    with connect(settings.warehouse_path, read_only=True) as con:
        if args.source:
            row = con.execute("SELECT customer_id FROM core.customer_identity "
                              "WHERE source_customer_id = ?", [args.id]).fetchone()
            if row is None:
                print(f"no source record {args.id!r}", file=sys.stderr)
                return 1
            given = row[0]
        else:
            try:
                given = int(args.id)
            except ValueError:
                print(f"customer_id must be a number (or use --source for {args.id!r})",
                      file=sys.stderr)
                return 2
        row = con.execute("SELECT customer_id, is_merged FROM core.customer_ids "
                          "WHERE any_customer_id = ?", [given]).fetchone()
        if row is None:
            print(f"unknown customer_id {given}", file=sys.stderr)
            return 1
        customer_id, merged = row
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check SQL definitions without a warehouse")
    p.add_argument("paths", nargs="*", help="files or folders to report on (default: all of sql/)")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("generate", help="write realistic dirty CRM source files and ground truth")
    p.add_argument("--customers", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--start", help="first day of activity (YYYY-MM-DD)")
    p.add_argument("--end", help="last day of activity (YYYY-MM-DD)")
    p.set_defaults(func=_cmd_generate)

    for name, demo, help_ in (
        ("demo", True, "materialise everything on the input data as of the pinned demo date"),
        ("build", False, "materialise everything (segments as of --as-of, default yesterday)"),
    ):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--as-of", help="as-of date of segments (YYYY-MM-DD)")
        p.add_argument("--first-day", help="first event partition (default: partition_start)")
        p.add_argument("--last-day", help="last event partition (default: the as-of date)")
        p.add_argument("--days", type=int, default=7, help="days of event counts to print")
        p.set_defaults(func=lambda a, demo=demo: _cmd_build(a, demo=demo))

    p = sub.add_parser("segment-history",
                       help="rebuild segments' membership history from a past day (backfill)")
    p.add_argument("names", nargs="+", help="segment names, e.g. croissant_buyers")
    p.add_argument("--from", dest="first_day", required=True, help="first day, YYYY-MM-DD")
    p.add_argument("--to", dest="last_day", help="last day (default: the last one recorded)")
    p.add_argument("--every", type=int, default=1, help="days between two as-of dates (7: weekly)")
    p.set_defaults(func=_cmd_segment_history)

    p = sub.add_parser("audience", help="a campaign's audience from a segment or an event (CSV), "
                                        "with a stable target/holdout split")
    p.add_argument("name", help="a segment, or an event (then --day)")
    p.add_argument("--channel", choices=["email", "sms", "push"], default="email")
    p.add_argument("--holdout", type=float, default=0, help="percent kept out, to measure lift")
    p.add_argument("--sample", type=float, help="percent contacted (default: all not held out)")
    p.add_argument("--seed", help="the split's seed, e.g. the campaign id (default: the name)")
    p.add_argument("--day", help="for an event: the day of the occurrences, YYYY-MM-DD")
    p.add_argument("--out", help="CSV file (default: <name>_<channel>.csv)")
    p.set_defaults(func=_cmd_audience)

    p = sub.add_parser("spark", help="run definitions on Spark over the BI snapshot's Parquet "
                                     "(the scale-out path; pip install '.[spark]', Java 17+)")
    p.add_argument("names", nargs="+", help="definitions, e.g. croissant_buyers")
    p.add_argument("--as-of", help="the as-of date (default: yesterday, business time)")
    p.add_argument("--out", default="spark_out", help="folder of the Parquet results")
    p.add_argument("--master", default=os.environ.get("SPARK_MASTER", "local[*]"),
                   help="Spark master (default: $SPARK_MASTER or local[*])")
    p.set_defaults(func=_cmd_spark)

    p = sub.add_parser("dev", help="the Dagster UI (dagster dev) on this project and instance")
    p.add_argument("dagster_args", nargs="*", help="passed to dagster dev as given, e.g. -p 3001")
    p.set_defaults(func=_cmd_dev)

    p = sub.add_parser("summary", help="print segment sizes and recent event counts")
    p.add_argument("--days", type=int, default=7)
    p.set_defaults(func=_cmd_summary)

    p = sub.add_parser("customer", help="look a person up by any id they ever had")
    p.add_argument("id", help="a customer_id (merged-away ids resolve) or, with --source, a "
                              "source system's customer id")
    p.add_argument("--source", action="store_true", help="ID is a source customer id")
    p.set_defaults(func=_cmd_customer)

    p = sub.add_parser("dedupe-report", help="precision/recall of identity against a truth file")
    p.add_argument("--truth", help="truth CSV (default: <input>/_truth/customers.csv)")
    p.set_defaults(func=_cmd_dedupe_report)

    p = sub.add_parser("versions", help="a definition's materialised versions, with SQL diffs")
    p.add_argument("name", help="layer.name, or a name unique across layers")
    p.set_defaults(func=_cmd_versions)

    p = sub.add_parser("plan", help="what to rebuild because definitions on disk changed")
    p.add_argument("--as-of", help="as-of date of segments (YYYY-MM-DD, default yesterday)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--apply", action="store_true", help="launch the runs that rebuild it")
    p.set_defaults(func=_cmd_plan)

    p = sub.add_parser("lineage", help="upstream columns of a column, down to raw")
    p.add_argument("column", help="NAME.COLUMN, e.g. segments.croissant_buyers.customer_id")
    p.set_defaults(func=_cmd_lineage)

    from crm_assets.dialects import TARGETS

    p = sub.add_parser("compile", help="a definition transpiled to another SQL dialect")
    p.add_argument("name", help="layer.name, or a name unique across layers")
    p.add_argument("--dialect", choices=TARGETS, required=True)
    p.add_argument("--as-of", help="date bound to as_of_date() (YYYY-MM-DD, default yesterday)")
    p.set_defaults(func=_cmd_compile)
    return parser


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    warnings.filterwarnings("ignore", message=".*is currently in preview.*")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["dev"]:  # everything after `crm dev` is for dagster dev, as given
        return _cmd_dev(argparse.Namespace(dagster_args=argv[1:]))
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
