"""Web and app sessions of the persons who use the app or the website.

A person's sessions are spread over the period from its registration, numbered from its
``session_base`` in ``activity``, so the ``sessions`` table is stored in key order without a sort.
"""

from __future__ import annotations

from pathlib import Path

from crm_assets.demo.activity import field, record_of
from crm_assets.demo.keyed_random import weighted
from crm_assets.demo.records import customer_id
from crm_assets.demo.reference import CITIES, UTM_SOURCES
from crm_assets.demo.run import Run
from crm_assets.demo.sql_literals import lst

#: Hour of a session's start by a uniform draw: mostly daytime, a few at night.
_HOURS = (
    [0] + [7] * 2 + [8] * 4 + [9] * 4 + [10] * 3 + [11] * 3 + [12] * 4 + [13] * 4
    + [14] * 3 + [15] * 3 + [16] * 3 + [17] * 3 + [18] * 4 + [19] * 4 + [20] * 4
    + [21] * 3 + [22] * 2 + [23] * 1
)  # fmt: skip


def build_sessions(run: Run) -> None:
    """Sessions of every app or web user: the k-th of a person's n sessions falls in the k-th
    n-th of the days from its registration to the end. 3% are anonymous (no record); an app user
    is on the app of its platform 80% of the time, else on the web."""
    r, f = run.r, field
    u, pick = r.u, r.pick
    utm_pick = lst(weighted([15, 20, 10, 25, 10, 20], 20))
    run.con.execute(f"""
        CREATE TABLE sessions AS
        WITH s AS (
            SELECT session_base + k + 1 AS session_no, k, pk, r01, r23, regm,
                {r.stream("session_base + k + 1", "x1")} AS hx1,
                {r.stream("session_base + k + 1", "x2")} AS hx2
            FROM (SELECT session_base, pk, r01, r23, regm, unnest(range(n_sessions)) AS k
                  FROM activity WHERE n_sessions > 0)
        ), t AS (
            SELECT *,
                {run.t0} + ({f("pk", "reg_day")} + floor((k + {u("hx1", 0)})
                    * ({run.span} - {f("pk", "reg_day")}) / {f("pk", "n_sessions")})::BIGINT)
                    * 86400
                    + {lst(_HOURS)}[{pick("hx1", 1, len(_HOURS))} + 1] * 3600
                    + {pick("hx1", 2, 3600)} AS started_ts,
                {pick("hx1", 3, f"{f('pk', 'n_rec1')} + 1")} AS rec
            FROM s
        )
        SELECT session_no, started_ts, {f("pk", "city")} AS city,
            CASE WHEN {u("hx2", 0)} >= 0.03
                 THEN {record_of(run, "rec", "started_ts")}
                 END AS rec_no,
            CASE WHEN {f("pk", "app_user")} = 0 OR {u("hx2", 1)} < 0.2 THEN 0
                 ELSE 1 + {f("pk", "ios")} END AS device,
            10 + floor(1800 * pow({u("hx2", 2)}, 2.5))::BIGINT AS duration_seconds,
            1 + floor(25 * pow({u("hx2", 3)}, 2))::BIGINT AS page_views,
            {utm_pick}[{pick(r.stream("session_no", "x3"), 0, 20)} + 1] AS utm
        FROM t
        """)


def write_sessions(run: Run, path: Path) -> int:
    """The sessions file: instants with the city's UTC offset, an empty customer id for an
    anonymous session."""
    offsets = lst([c[2] for c in CITIES])
    exprs = {
        "session_id": "'W' || (10000000 + session_no)::VARCHAR",
        "customer_id": customer_id("rec_no"),
        "device": "['web', 'android', 'ios'][device + 1]",
        "started_at": "strftime(make_timestamp(started_ts * 1000000), '%Y-%m-%dT%H:%M:%S') || "
        f"{offsets}[city + 1]",
        "duration_seconds": "duration_seconds",
        "page_views": "page_views",
        "utm_source": f"{lst(UTM_SOURCES)}[utm + 1]",
    }
    return run.copy_to_csv(
        "sessions", exprs, "sessions", run.key("session_no"), path, prerender=True
    )
