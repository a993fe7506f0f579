"""``crm``: the project's command line.

Every command that writes the warehouse runs through Dagster (a real run on the instance under
``DAGSTER_HOME``), so runs from the CLI show up in the UI with their metadata and checks.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from datetime import date
from pathlib import Path

from crm_assets.settings import Settings, load_settings


def ensure_dagster_home(settings: Settings) -> Path:
    """Point ``DAGSTER_HOME`` at ``<project>/.dagster_home`` (unless set) holding dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.project_dir / ".dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    source = settings.project_dir / "dagster.yaml"
    target = home / "dagster.yaml"
    if source.exists() and (not target.exists() or target.read_bytes() != source.read_bytes()):
        shutil.copyfile(source, target)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _cmd_validate(args: argparse.Namespace) -> int:
    from crm_assets.python_assets import external_tables
    from crm_assets.sql_catalog import load_catalog

    settings = load_settings()
    paths = [Path(p).resolve() for p in args.paths]
    only = set(paths)
    files = [p for p in paths if p.is_file()]
    for p in paths:
        if p.is_dir():
            files.extend(sorted(p.rglob("*.sql")))
    catalog = load_catalog(settings.sql_dir, external_tables(), paths=files,
                           root=Path.cwd() if Path.cwd() != settings.project_dir else None)
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
    print(f"{checked} definition(s) valid")
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
    if not result.success:
        print(result.error, file=sys.stderr)
        return 1
    print_summary(settings, days=args.days)
    return 0


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

    p = sub.add_parser("summary", help="print segment sizes and recent event counts")
    p.add_argument("--days", type=int, default=7)
    p.set_defaults(func=_cmd_summary)

    p = sub.add_parser("dedupe-report", help="precision/recall of identity against a truth file")
    p.add_argument("--truth", help="truth CSV (default: <input>/_truth/customers.csv)")
    p.set_defaults(func=_cmd_dedupe_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    warnings.filterwarnings("ignore", message=".*is currently in preview.*")
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
