"""``crm``: the project's command line.

Every command that writes the warehouse runs through Dagster (a real run on the instance under
``DAGSTER_HOME``), so runs from the CLI show up in the UI with their metadata and checks.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from crm_assets.cli.campaigns import cmd_audience
from crm_assets.cli.clv import add_clv_commands
from crm_assets.cli.engines import cmd_compile, cmd_spark
from crm_assets.cli.history import add_history_commands
from crm_assets.cli.inspect import (
    cmd_customer,
    cmd_dedupe_report,
    cmd_lineage,
    cmd_summary,
    cmd_validate,
    cmd_versions,
)
from crm_assets.cli.instance import cmd_dev
from crm_assets.cli.run import (
    cmd_build,
    cmd_erase,
    cmd_generate,
    cmd_nightly,
    cmd_plan,
    cmd_segment_history,
    cmd_status,
    cmd_unmerge,
)
from crm_assets.cli.segments import add_segment_commands
from crm_assets.secrets import mask_url, scrub
from crm_assets.tools.dialects import TARGETS


def _quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress lines (each step's start and end, on stderr)")


def _add_run_commands(sub) -> None:
    p = sub.add_parser("generate", help="write realistic dirty CRM source files and ground truth")
    p.add_argument("--customers", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--start", help="first day of activity (YYYY-MM-DD)")
    p.add_argument("--end", help="last day of activity (YYYY-MM-DD)")
    p.set_defaults(func=cmd_generate)

    for name, demo, help_ in (
        ("demo", True, "materialise everything on the input data as of the pinned demo date"),
        ("build", False, "materialise everything (segments as of --as-of, default yesterday)"),
    ):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--as-of", help="as-of date of segments (YYYY-MM-DD)")
        p.add_argument("--first-day", help="first event partition (default: partition_start)")
        p.add_argument("--last-day", help="last event partition (default: the as-of date)")
        p.add_argument("--days", type=int, default=7, help="days of event counts to print")
        _quiet(p)
        if not demo:
            p.add_argument("--full-refresh", action="store_true",
                           help="compute every incremental table from raw again")
        p.set_defaults(func=lambda a, demo=demo: cmd_build(a, demo=demo))

    p = sub.add_parser("nightly", help="the nightly run for one day, as the schedule launches it")
    p.add_argument("--day", help="the business day (YYYY-MM-DD, default yesterday)")
    _quiet(p)
    p.set_defaults(func=cmd_nightly)

    p = sub.add_parser("segment-history",
                       help="rebuild segments' membership history from a past day (backfill)")
    p.add_argument("names", nargs="+", help="segment names, e.g. croissant_buyers")
    p.add_argument("--from", dest="first_day", required=True, help="first day, YYYY-MM-DD")
    p.add_argument("--to", dest="last_day", help="last day (default: the last one recorded)")
    p.add_argument("--every", type=int, default=1, help="days between two as-of dates (7: weekly)")
    _quiet(p)
    p.set_defaults(func=cmd_segment_history)

    p = sub.add_parser("plan", help="what to rebuild because definitions on disk changed")
    p.add_argument("--as-of", help="as-of date of segments (YYYY-MM-DD, default yesterday)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--apply", action="store_true", help="launch the runs that rebuild it")
    _quiet(p)
    p.set_defaults(func=cmd_plan)


def _add_inspect_commands(sub) -> None:
    p = sub.add_parser("status", help="last runs, dead runs, stale assets, missing event days, "
                                      "refused files, reject rates, freshness (exit 1: look)")
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("validate", help="check SQL definitions without a warehouse")
    p.add_argument("paths", nargs="*", help="files or folders to report on (default: all of sql/)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("summary", help="print segment sizes and recent event counts")
    p.add_argument("--days", type=int, default=7)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("customer", help="look a person up by any id they ever had: the "
                                        "warehouse's customer_id, or with --source a source "
                                        "record's id")
    p.add_argument("id", help="a customer_id, the warehouse's person id (merged-away ids "
                              "resolve), or with --source a source system's customer id")
    p.add_argument("--source", action="store_true", help="ID is a source customer id")
    p.set_defaults(func=cmd_customer)

    p = sub.add_parser("dedupe-report", help="precision/recall of identity against a truth file")
    p.add_argument("--truth", help="truth CSV (default: <input>/_truth/customers.csv)")
    p.set_defaults(func=cmd_dedupe_report)

    p = sub.add_parser("versions", help="a definition's materialised versions, with SQL diffs")
    p.add_argument("name", help="layer.name, or a name unique across layers")
    p.set_defaults(func=cmd_versions)

    p = sub.add_parser("lineage", help="upstream columns of a column, down to raw")
    p.add_argument("column", help="NAME.COLUMN, e.g. segments.croissant_buyers.customer_id")
    p.set_defaults(func=cmd_lineage)


def _add_other_commands(sub) -> None:
    p = sub.add_parser("audience", help="a campaign's audience from a segment or an event (CSV), "
                                        "with a stable target/holdout split")
    p.add_argument("name", help="a segment, or an event (then --day)")
    p.add_argument("--channel", choices=["email", "sms", "push"], default="email")
    p.add_argument("--holdout", type=float, default=0, help="percent kept out, to measure lift")
    p.add_argument("--sample", type=float, help="percent contacted (default: all not held out)")
    p.add_argument("--seed", help="the split's seed, e.g. the campaign id (default: the name)")
    p.add_argument("--day", help="for an event: the day of the occurrences, YYYY-MM-DD")
    p.add_argument("--out", help="CSV file (default: <name>_<channel>.csv)")
    p.set_defaults(func=cmd_audience)

    p = sub.add_parser("compile", help="a definition transpiled to another SQL dialect")
    p.add_argument("name", help="layer.name, or a name unique across layers")
    p.add_argument("--dialect", choices=TARGETS, required=True)
    p.add_argument("--as-of", help="date bound to as_of_date() (YYYY-MM-DD, default yesterday)")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("spark", help="run definitions on Spark over the BI snapshot's Parquet "
                                     "(the scale-out path; pip install '.[spark]', Java 17+)")
    p.add_argument("names", nargs="+", help="definitions, e.g. croissant_buyers")
    p.add_argument("--as-of", help="the as-of date (default: yesterday, business time)")
    p.add_argument("--out", default="spark_out", help="folder of the Parquet results")
    p.add_argument("--master", default=os.environ.get("SPARK_MASTER", "local[*]"),
                   help="Spark master (default: $SPARK_MASTER or local[*])")
    p.set_defaults(func=cmd_spark)

    add_clv_commands(sub)

    p = sub.add_parser("erase", help="erase one person from every layer, snapshot and export, "
                                     "and keep later files from bringing them back")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer", help="the warehouse's customer_id (merged-away ids resolve)")
    who.add_argument("--source-id", help="a source system's customer id")
    who.add_argument("--email", help="an e-mail address, as any record had it")
    who.add_argument("--phone", help="a phone number, in any format")
    p.add_argument("--reason", help="why (recorded in meta.erasures), e.g. a request number")
    _quiet(p)
    p.set_defaults(func=cmd_erase)

    p = sub.add_parser("unmerge", help="split source records off a person into a new one (a "
                                       "wrong merge), and keep identity from joining them again")
    p.add_argument("--customer", type=int, required=True, help="the person's customer_id")
    p.add_argument("--records", required=True, help="source record ids to split off: SRC1,SRC2")
    p.add_argument("--reason", help="why (recorded in meta.customer_unmerges)")
    p.add_argument("--day", help="the nightly run that follows, for this day (default: the last "
                                 "as-of day computed)")
    _quiet(p)
    p.set_defaults(func=cmd_unmerge)

    p = sub.add_parser("dev", help="the Dagster UI (dagster dev) on this project and instance")
    p.add_argument("dagster_args", nargs="*", help="passed to dagster dev as given, e.g. -p 3001")
    p.set_defaults(func=cmd_dev)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run_commands(sub)
    _add_inspect_commands(sub)
    add_history_commands(sub)
    add_segment_commands(sub)
    _add_other_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    warnings.filterwarnings("ignore", message=".*is currently in preview.*")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["dev"]:  # everything after `crm dev` is for dagster dev, as given
        return cmd_dev(argparse.Namespace(dagster_args=argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Exception as err:  # the run storage unreachable: say so, never its password
        if not os.environ.get("DAGSTER_PG_URL") or "postgres" not in (
                type(err).__module__ + repr(err)).lower():
            raise
        print(f"cannot use the run storage in PostgreSQL at "
              f"{mask_url(os.environ['DAGSTER_PG_URL'])}: {scrub(str(err))} "
              f"({scrub(str(err.__cause__ or ''))})".replace(" ()", ""), file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
