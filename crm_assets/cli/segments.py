"""``crm sample`` and ``crm diff``: look at a segment before a campaign, or before publishing a
changed definition (:mod:`crm_assets.serving.preview`). Both only read the warehouse."""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import date

from crm_assets.catalog import CatalogError
from crm_assets.catalog.definition import UnknownName, resolve_table
from crm_assets.cli.inspect import reading
from crm_assets.project import load_project_catalog
from crm_assets.serving.preview import Rows, diff_segment, drop_previews, sample_members
from crm_assets.settings import load_settings


def add_segment_commands(sub) -> None:
    p = sub.add_parser("sample", help="a reproducible sample of a segment's members, with the "
                                      "columns that put them there")
    p.add_argument("segment", help="segment name, e.g. rfm_at_risk")
    p.add_argument("-n", type=int, default=10, help="how many (default 10)")
    p.add_argument("--seed", type=int, default=0, help="another seed, another sample")
    p.add_argument("--csv", action="store_true", help="CSV on stdout instead of a table")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("diff", help="run a segment's definition on disk without writing: who "
                                    "would enter and leave against the published members")
    p.add_argument("segment", help="segment name, e.g. rfm_at_risk")
    p.add_argument("--as-of", help="as of this day (default: the day the published members are "
                                   "as of)")
    p.add_argument("-n", type=int, default=5, help="sample size of each side (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_diff)


def _segment(settings, name: str):
    catalog = load_project_catalog(settings)
    catalog.raise_for_problems()
    segments = {d.table: d for d in catalog.definitions if d.kind == "segment"}
    table = resolve_table(name if "." in name else f"segments.{name}", segments)
    return catalog, segments[table]


def cmd_sample(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        _, d = _segment(settings, args.segment)
    except (UnknownName, CatalogError) as err:
        print(err, file=sys.stderr)
        return 2

    def show(con) -> int:
        try:
            total, as_of, rows = sample_members(con, d, args.n, args.seed)
        except LookupError as err:
            print(err, file=sys.stderr)
            return 1
        if args.csv:
            _write_csv(rows)
        else:
            print(f"{d.name}: {total} members as of {as_of}; {len(rows.rows)} of them "
                  f"(seed {args.seed}):")
            print_rows(rows)
        return 0

    return reading(settings, show)


def cmd_diff(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        catalog, d = _segment(settings, args.segment)
        as_of = date.fromisoformat(args.as_of) if args.as_of else None
    except (UnknownName, CatalogError, ValueError) as err:
        print(err, file=sys.stderr)
        return 2

    def show(con) -> int:
        try:
            diff = diff_segment(con, catalog, d, as_of, args.n, args.seed)
        except LookupError as err:
            print(err, file=sys.stderr)
            return 1
        finally:
            drop_previews(con)
        same = "same definition" if diff.version == diff.published_version else (
            f"definition {diff.published_version or '-'} published, {diff.version} on disk")
        print(f"{d.name} as of {diff.as_of} ({same}; published members as of "
              f"{diff.published_as_of or 'never'}):")
        print(f"  published {diff.published}, would be {diff.would_be}: "
              f"+{diff.entering} entering, -{diff.leaving} leaving")
        for label, rows, count in (("entering", diff.entering_sample, diff.entering),
                                   ("leaving", diff.leaving_sample, diff.leaving)):
            if count:
                print(f"{label} ({len(rows.rows)} of {count}):")
                print_rows(rows, indent="  ")
        return 0

    return reading(settings, show)


def print_rows(rows: Rows, indent: str = "") -> None:
    """``rows`` as an aligned text table."""
    text = [[str(c) for c in rows.columns],
            *[["" if v is None else str(v) for v in row] for row in rows.rows]]
    widths = [max(len(r[i]) for r in text) for i in range(len(rows.columns))]
    for r in text:
        print(indent + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _write_csv(rows: Rows) -> None:
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(rows.columns)
    out.writerows(rows.rows)
