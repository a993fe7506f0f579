"""Benchmark of what reads the segment membership history every night, as the history grows.

Run: ``python benchmarks/bench_history.py [--days 30 365 730] [--members N] [--churn R]
[--repeat K] [--out FILE]``.

A night computes whole every table that reads ``marts.segment_membership_history`` (it records no
batches). The history grows by a night's entries and exits, every night, for as long as the
warehouse lives; the nightly benchmark cannot see that (its full build records one day). So the
history is made up here, at the scale of 1M persons: 26 segments (the demo catalogue's segment
tables) of ``--members`` current members each, plus ``--churn`` of them leaving every day of
``--days`` (closed memberships of 1-90 days), in ``meta.segment_runs`` one run per segment and
day. For each length of history, in one plain DuckDB connection, ``--repeat`` times
(interleaved; the median kept):

* the floor: one scan of the history, grouped by segment (what any table reading it does at
  least);
* the SQL of each definition reading it (``CREATE TEMP TABLE ... AS`` its compiled query):
  ``marts.segment_sizes_daily``, ``marts.segment_overlap``, ``events.segment_entered``,
  ``events.segment_exited``.

A table whose time grows faster than the history's rows (a ratio to the floor that grows with the
days) costs a night more every night. Results go to ``benchmarks/results/history.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_nightly import save  # noqa: E402

from crm_assets.project import load_project_catalog  # noqa: E402
from crm_assets.settings import load_settings  # noqa: E402
from crm_assets.warehouse.connection import connect  # noqa: E402
from crm_assets.warehouse.tables import SEGMENT_MEMBERSHIP_HISTORY, SEGMENT_RUNS  # noqa: E402

READERS = ("marts.segment_sizes_daily", "marts.segment_overlap", "events.segment_entered",
           "events.segment_exited")
SEGMENTS = 26
LAST = date(2026, 6, 30)
FLOOR = (f"SELECT segment, count(*), count(valid_to), min(valid_from), max(valid_to) "
         f"FROM {SEGMENT_MEMBERSHIP_HISTORY.name} GROUP BY segment")


def _say(message: str) -> None:
    print(message, flush=True)


def make_history(con, days: int, members: int, churn: float) -> int:
    """The made-up history of ``days`` days ending at :data:`LAST`; its rows."""
    first = LAST - timedelta(days=days - 1)
    closed = round(members * churn) * days  # per segment
    con.execute(f"DELETE FROM {SEGMENT_MEMBERSHIP_HISTORY.name}")
    con.execute(f"DELETE FROM {SEGMENT_RUNS.name}")
    # current members: entered on a day of the history; closed ones: 1-90 days each, ended by
    # the last day, other people (ids past the current members')
    con.execute(f"""
        INSERT INTO {SEGMENT_MEMBERSHIP_HISTORY.name}
        SELECT 'segment_' || s, c, DATE '{first}' + CAST(hash(s, c) % {days} AS INTEGER), NULL, 'v1'
        FROM range({SEGMENTS}) a(s), range({members}) b(c)
        UNION ALL
        SELECT 'segment_' || s, {members} + c, valid_to - CAST(1 + hash(c, s, 1) % 90 AS INTEGER),
               valid_to, 'v1'
        FROM (SELECT s, c, DATE '{first}' + CAST(1 + hash(s, c, 2) % {days} AS INTEGER)
                  AS valid_to
              FROM range({SEGMENTS}) a(s), range({closed}) b(c))
        WHERE valid_to <= DATE '{LAST}'""")
    con.execute(f"""
        INSERT INTO {SEGMENT_RUNS.name}
        SELECT 'segment_' || s, DATE '{first}' + CAST(d AS INTEGER), 'v1', {members}, 0, 0,
               'bench', now()
        FROM range({SEGMENTS}) a(s), range({days}) b(d)""")
    con.execute("CHECKPOINT")
    return int(con.execute(
        f"SELECT count(*) FROM {SEGMENT_MEMBERSHIP_HISTORY.name}").fetchone()[0])


def _seconds(con, sql: str) -> float:
    started = time.perf_counter()
    con.execute(f"CREATE OR REPLACE TEMP TABLE _bench AS {sql}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, nargs="+", default=[30, 365, 730])
    parser.add_argument("--members", type=int, default=200_000,
                        help="current members of each of the 26 segments")
    parser.add_argument("--churn", type=float, default=0.005,
                        help="share of a segment's members leaving every day")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "history.json")
    args = parser.parse_args()
    settings = load_settings()
    by_table = load_project_catalog(settings).by_table()
    queries = {"floor": FLOOR, **{t: by_table[t].body for t in READERS}}
    scales = []
    with tempfile.TemporaryDirectory() as folder, connect(
            Path(folder) / "history.duckdb", business_timezone=settings.business_timezone) as con:
        for days in args.days:
            rows = make_history(con, days, args.members, args.churn)
            runs: dict[str, list[float]] = {name: [] for name in queries}
            for _ in range(args.repeat):
                for name, sql in queries.items():
                    runs[name].append(_seconds(con, sql))
            seconds = {name: round(statistics.median(v), 3) for name, v in runs.items()}
            floor = seconds["floor"]
            scale = {"days": days, "history_rows": rows, "seconds": seconds,
                     "ratio_to_floor": {t: round(seconds[t] / floor, 1) for t in READERS}}
            _say(f"{days} days, {rows:,} history rows: {seconds}")
            scales.append(scale)
    result = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
              "segments": SEGMENTS, "members_per_segment": args.members, "churn": args.churn,
              "repeat": args.repeat, "scales": scales,
              "machine": {"cores": os.cpu_count(), "load_after": os.getloadavg()}}
    save(args.out, result)
    _say(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
