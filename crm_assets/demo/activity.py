"""Per person: its records, how much it buys, until when, how often it visits online.

``activity`` (one row per person, in person order) is what the facts expand from: orders
(:mod:`~crm_assets.demo.orders`), campaign messages (:mod:`~crm_assets.demo.interactions`) and
sessions (:mod:`~crm_assets.demo.sessions`). It carries the person's fields packed into one BIGINT
(``pk``, read with :func:`field`) and its record numbers and registration minutes (``r01``,
``r23``, ``regm``, read with :func:`record_of`), so that expanding a person into its facts copies a
few columns instead of a dozen (unnest copies row by row). ``order_base`` and ``session_base`` are
running totals: a fact's number is its person's base plus its index, so facts are numbered in
person order without a sort.
"""

from __future__ import annotations

from crm_assets.demo.run import Run

#: Fields packed into one BIGINT per person (name, bits), lowest bits first.
PERSON_FIELDS: tuple[tuple[str, int], ...] = (
    ("n_orders", 9), ("reg_day", 11), ("active_end", 11), ("home_store", 5), ("app_user", 1),
    ("n_rec1", 2), ("city", 3), ("ios", 1), ("n_sessions", 7),
)  # fmt: skip
_NEVER = 2097151  # a "registered at" minute after any fact: 21 bits, all set
#: The longest period: the registration minutes of a person's records are packed in 21 bits.
MAX_SPAN_DAYS = 1456


def field(col: str, name: str) -> str:
    """The packed person field ``name`` of the BIGINT column ``col`` (see ``PERSON_FIELDS``)."""
    shift = 0
    for field_name, bits in PERSON_FIELDS:
        if field_name == name:
            return f"(({col} >> {shift}) & {(1 << bits) - 1})"
        shift += bits
    raise KeyError(name)


def _pack() -> str:
    """The BIGINT of ``PERSON_FIELDS`` from the columns of the same names."""
    parts, shift = [], 0
    for field_name, bits in PERSON_FIELDS:
        parts.append(f"(({field_name})::BIGINT << {shift})")
        shift += bits
    return " | ".join(parts)


def record_of(run: Run, pick_col: str, ts: str) -> str:
    """The rec_no of the record a fact at ``ts`` refers to: the picked record (``pick_col``, a
    column: a simple CASE repeats its operand per WHEN) if it was registered by then, else
    the original (packed in r01/r23/regm of activity)."""
    t0 = run.t0

    def reg_ok(i: int) -> str:
        return f"{t0} + ((regm >> {21 * i}) & 2097151) * 60 <= {ts}"

    return f"""CASE {pick_col}
            WHEN 1 THEN CASE WHEN {reg_ok(0)} THEN r01 >> 24 ELSE r01 & 16777215 END
            WHEN 2 THEN CASE WHEN {reg_ok(1)} THEN r23 & 16777215 ELSE r01 & 16777215 END
            WHEN 3 THEN CASE WHEN {reg_ok(2)} THEN r23 >> 24 ELSE r01 & 16777215 END
            ELSE r01 & 16777215 END"""


def build_activity(run: Run) -> None:
    """Per person: its records, how much it buys, until when, how often it visits online."""
    span = run.span
    start = f"DATE '{run.start.isoformat()}'"
    run.con.execute(f"""
        CREATE TABLE activity AS
        WITH {_records_per_person_cte(run)}, a AS (
            SELECT p.pid, p.city, p.home_store, p.app_user, p.web_user, p.ios,
                p.email_opt, p.sms_opt, p.push_opt, p.reg_day,
                date_diff('month', {start}, ({start} + p.reg_day::INTEGER)::DATE) AS reg_month,
                day(({start} + p.reg_day::INTEGER)::DATE) AS reg_dom,
                pr.n_rec1, pr.r01, pr.r23, pr.regm,
                -- orders per week: 15% never buy, 75% now and then, 10% loyal (weekly or more)
                CASE WHEN p.u_act < 0.15 THEN 0.0
                     WHEN p.u_act < 0.90 THEN 0.03 + 0.27 * pow(p.u_rate, 2)
                     ELSE 0.5 + 0.8 * p.u_rate END AS rate,
                -- a quarter of the buyers churn: they stop buying months before the end
                CASE WHEN p.u_churn < 0.25 AND {span - 1} - p.reg_day > 120
                     THEN p.reg_day + 30
                          + floor(p.u_churn_at * ({span - 1} - p.reg_day - 90))::BIGINT
                     ELSE {span - 1} END AS active_end,
                p.u_norders, p.u_nsess
            FROM persons p JOIN pr USING (pid)
        ), n AS (
            SELECT *,
                CASE WHEN active_end > reg_day
                     THEN floor(rate * (active_end - reg_day) / 7.0 + u_norders)::BIGINT
                     ELSE 0 END AS n_orders,
                CASE WHEN app_user OR web_user
                     THEN floor(4.5 * ({span} - reg_day) / {span} + u_nsess)::BIGINT
                     ELSE 0 END AS n_sessions
            FROM a
        )
        SELECT pid, email_opt, sms_opt, push_opt, reg_month, reg_dom, n_orders, n_sessions,
            r01, r23, regm, {_pack()} AS pk,
            sum(n_orders) OVER w - n_orders AS order_base,
            sum(n_sessions) OVER w - n_sessions AS session_base
        FROM n
        WINDOW w AS (ORDER BY pid ROWS UNBOUNDED PRECEDING)
        ORDER BY pid
        """)


def _records_per_person_cte(run: Run) -> str:
    """``pr``: per person the number of duplicates, the record numbers (24 bits each: rn 0 and 1
    in ``r01``, 2 and 3 in ``r23``) and the duplicates' registration minutes (21 bits each, from
    ``start``, rounded up; ``_NEVER`` for a missing one) in ``regm``."""

    def reg_minute(rn: int) -> str:
        return (
            f"coalesce(max(CASE WHEN rn = {rn} THEN (reg_ts - {run.t0} + 59) // 60 END), {_NEVER})"
        )

    return f"""pr AS (
            SELECT pid, count(*) - 1 AS n_rec1,
                -- (bit operators all bind alike in DuckDB: parenthesise every shift)
                max(CASE WHEN rn = 0 THEN rec_no END)
                    | (coalesce(max(CASE WHEN rn = 1 THEN rec_no END), 0) << 24) AS r01,
                coalesce(max(CASE WHEN rn = 2 THEN rec_no END), 0)
                    | (coalesce(max(CASE WHEN rn = 3 THEN rec_no END), 0) << 24) AS r23,
                {reg_minute(1)} | ({reg_minute(2)} << 21) | ({reg_minute(3)} << 42) AS regm
            FROM record_ids GROUP BY pid
        )"""
