"""``crm members`` and ``crm events``: who was in a segment, who met an event, from the BI snapshot.

Both call the history macros of the published BI snapshot
(:data:`~crm_assets.serving.snapshot.HISTORY_MACROS`), opened read-only, so the command line and
a BI tool give the same answers, and neither waits for a run nor makes one wait. Output is CSV
(the default, for other tools) or an aligned table (``--format table``), on stdout; days are the
business time zone's, instants are shown in it.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import date

import duckdb
import pandas as pd

from crm_assets.quoting import literal
from crm_assets.serving.snapshot import VIEWS_FILE, history_call
from crm_assets.settings import Settings, load_settings

FORMATS = ("csv", "table")


class HistoryError(ValueError):
    """A question the snapshot cannot answer (no snapshot, an unknown name): exit 1."""


class UsageError(ValueError):
    """Arguments that do not make a question (a bad day, options that do not go together):
    exit 2, as argparse does."""


def add_history_commands(sub) -> None:
    """``crm members`` and ``crm events``."""
    p = sub.add_parser("members", help="a segment's members on a day (default: now), from the "
                                       "BI snapshot's membership history")
    p.add_argument("segment", help="the segment, e.g. croissant_buyers")
    p.add_argument("--on", dest="day", help="the day, YYYY-MM-DD (default: the members now, as "
                                            "of the last day computed)")
    _output_options(p)
    p.set_defaults(func=cmd_members)

    p = sub.add_parser("events", help="who met an event on a day or between two days, or at "
                                      "least N times within K days, from the BI snapshot")
    p.add_argument("event", help="the event, e.g. croissant_purchase")
    p.add_argument("--on", dest="day", help="one business day, YYYY-MM-DD")
    p.add_argument("--from", dest="first_day", help="first business day (with --to), YYYY-MM-DD")
    p.add_argument("--to", dest="last_day", help="last business day, inclusive")
    p.add_argument("--at-least", dest="times", type=int,
                   help="only people who met it at least N times (in the days given, or, with "
                        "--within, within K consecutive days of them)")
    p.add_argument("--within", dest="within_days", type=int,
                   help="with --at-least: K consecutive days")
    _output_options(p)
    p.set_defaults(func=cmd_events)


def _output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS, default="csv",
                   help="csv (default) or an aligned table")


def cmd_members(args: argparse.Namespace) -> int:
    return _answer("members", args, lambda: history_call(
        "segment_members", args.segment, _day(args.day, "--on")))


def cmd_events(args: argparse.Namespace) -> int:
    return _answer("events", args, lambda: events_query(args))


def events_query(args: argparse.Namespace) -> str:
    """The query ``crm events`` runs for ``args``: one of the event macros."""
    if args.day and (args.first_day or args.last_day):
        raise UsageError("give --on D, or --from D1 --to D2, not both")
    if not args.day and not (args.first_day and args.last_day):
        raise UsageError("give the days: --on D, or --from D1 --to D2")
    first = _day(args.day or args.first_day, "--on" if args.day else "--from")
    last = _day(args.day or args.last_day, "--on" if args.day else "--to")
    if first > last:
        raise UsageError(f"--from {first} is after --to {last}")
    if args.within_days is not None and args.times is None:
        raise UsageError("--within K goes with --at-least N")
    if (args.times is not None and args.times < 1) or (args.within_days or 1) < 1:
        raise UsageError("--at-least and --within take 1 or more")
    if args.within_days is not None:
        return history_call("event_at_least", args.event, args.times, args.within_days,
                            first, last)
    query = history_call("event_between", args.event, first, last)
    return query if args.times is None else (
        f"SELECT * FROM ({query}) AS e WHERE e.occurrences >= {literal(args.times)}")


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} {value!r} is not a day (YYYY-MM-DD)") from None


def _answer(command: str, args: argparse.Namespace, query) -> int:
    """Run the macro call ``query()`` builds on the BI snapshot and print its rows; a one-line
    error on stderr instead (exit 2: the arguments, 1: the snapshot)."""
    settings = load_settings()
    try:
        frame = read_snapshot(settings, query())
    except UsageError as err:
        print(f"crm {command}: {err}", file=sys.stderr)
        return 2
    except HistoryError as err:
        print(f"crm {command}: {err}", file=sys.stderr)
        return 1
    if args.format == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif frame.empty:
        print(" ".join(frame.columns))
    else:
        print(frame.fillna("").to_string(index=False))
    return 0


_KIND = re.compile(r"^[A-Za-z ]+ Error: ")


def read_snapshot(settings: Settings, query: str) -> pd.DataFrame:
    """The rows of ``query`` (a history macro call, ordered by ``customer_id``) on the BI
    snapshot, every value as DuckDB writes it (dates ``YYYY-MM-DD``, instants in the business
    time zone, NULL empty)."""
    path = settings.serving_path / VIEWS_FILE
    if not path.exists():
        raise HistoryError(f"no BI snapshot at {path}: any build publishes one "
                           "(the serving/snapshot asset)")
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET python_enable_replacements = false")
        con.execute(f"SET TimeZone = {literal(settings.business_timezone)}")
        return con.execute(f"SELECT CAST(COLUMNS(*) AS VARCHAR) FROM ({query}) AS r "
                           "ORDER BY r.customer_id").df()
    except duckdb.InvalidInputException as err:  # the macros' own: an unknown name, bad numbers
        raise HistoryError(_KIND.sub("", str(err)).splitlines()[0]) from None
    except duckdb.CatalogException as err:
        raise HistoryError(f"the BI snapshot at {path} has no history macros (published by an "
                           f"older release: the next build publishes them): "
                           f"{_KIND.sub('', str(err)).splitlines()[0]}") from None
    finally:
        con.close()
