"""``crm clv fit`` and ``crm clv validate``: the customer-base models from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from crm_assets.catalog import CatalogError
from crm_assets.cli.inspect import reading
from crm_assets.cli.instance import ensure_dagster_home
from crm_assets.cli.run import as_of, showing_progress
from crm_assets.defs.runs import fit_clv
from crm_assets.project import load_project_catalog
from crm_assets.settings import load_settings
from crm_assets.tools.cdnow import validate_on_cdnow
from crm_assets.warehouse.clv import SUMMARY, model_card

CDNOW_SAMPLE = Path("tests") / "fixtures" / "cdnow" / "CDNOW_sample.txt"
"""Where the CDNOW sample lives in the project (its source: the README beside it)."""


def add_clv_commands(sub) -> None:
    p = sub.add_parser("clv", help="the customer-base models (BG/NBD, Gamma-Gamma): fit, validate")
    clv = p.add_subparsers(dest="clv_command", required=True)
    f = clv.add_parser("fit", help="fit on the warehouse and publish in meta.clv_models (the "
                                   "fit_clv job, as the weekly schedule runs it)")
    f.add_argument("--as-of", help="the fit's as-of day (YYYY-MM-DD, default yesterday)")
    f.add_argument("--calibration-end", help="fit on purchases up to this day (default: the "
                                             "as-of day minus [tool.crm.clv] holdout_days); the "
                                             "days after it, to the as-of day, are the holdout")
    f.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    f.set_defaults(func=cmd_clv_fit)
    v = clv.add_parser("validate", help="fit on the CDNOW sample and compare with the published "
                                        "estimates (JSON; exit 1 if any is off by more than 1 %%)")
    v.add_argument("--transactions", help=f"the CDNOW sample (default: <project>/{CDNOW_SAMPLE})")
    v.set_defaults(func=cmd_clv_validate)


def cmd_clv_fit(args: argparse.Namespace) -> int:
    settings = load_settings()
    ensure_dagster_home(settings)
    day = as_of(args, settings)
    cal = date.fromisoformat(args.calibration_end) if args.calibration_end else None
    with showing_progress(args):
        result = fit_clv(settings, day, cal)
    if not result.success:
        print(result.error, file=sys.stderr)
        return 1

    def show(con) -> int:
        row = con.execute("SELECT * FROM meta.clv_models WHERE run_id = ?",
                          [result.run_id]).fetchone()
        names = [c[0] for c in con.description]
        print(model_card(dict(zip(names, row, strict=True))))
        return 0

    return reading(settings, show)


def cmd_clv_validate(args: argparse.Namespace) -> int:
    settings = load_settings()
    path = Path(args.transactions) if args.transactions else settings.project_dir / CDNOW_SAMPLE
    if not path.exists():
        print(f"no CDNOW sample at {path} (--transactions PATH)", file=sys.stderr)
        return 1
    try:
        catalog = load_project_catalog(settings)
        catalog.raise_for_problems()
    except CatalogError as err:
        print(err, file=sys.stderr)
        return 1
    report = validate_on_cdnow(catalog.by_table()[SUMMARY], path)
    print(json.dumps(report, indent=2))
    return 0 if report["within_tolerance"] else 1
