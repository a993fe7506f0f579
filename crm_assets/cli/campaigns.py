"""``crm audience``: a campaign's audience as CSV from the snapshots (never the warehouse)."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from crm_assets.serving.audiences import AudienceError, build_audience
from crm_assets.serving.snapshot import VIEWS_FILE
from crm_assets.settings import load_settings


def cmd_audience(args: argparse.Namespace) -> int:
    settings = load_settings()
    out = Path(args.out or f"{args.name}_{args.channel}.csv")
    try:
        result = build_audience(
            settings.serving_path / VIEWS_FILE, settings.contacts_path / VIEWS_FILE, args.name,
            out, channel=args.channel,
            seed=args.seed or args.name, holdout_pct=args.holdout, sample_pct=args.sample,
            day=date.fromisoformat(args.day) if args.day else None)
    except AudienceError as err:
        print(err, file=sys.stderr)
        return 1
    print(f"{args.name}: {result.members} people, {result.reachable} reachable by {args.channel}; "
          f"{result.target} target, {result.holdout} holdout -> {out}")
    return 0
