"""The true persons behind the customer records: who they are, their contacts, how they behave.

``persons`` holds one row per person (``pid`` 0..n-1) of draws, not of text: indexes into the name
and code lists, uniforms that later decide duplicates, activity and consent. The records
(:mod:`~crm_assets.demo.records`) render them as CRM text; the activity
(:mod:`~crm_assets.demo.activity`) turns the behaviour draws into counts of facts.

The first persons are the traps of naive matching, in blocks of person numbers: households sharing
a phone, colleagues sharing a company mailbox, placeholder contacts, namesakes. Record ids are
shuffled (by registration time), so these blocks are invisible in the data.
"""

from __future__ import annotations

from crm_assets.demo.keyed_random import KeyedRandom, weighted
from crm_assets.demo.reference import (
    CITIES,
    COMPANY_MAILBOXES,
    FEMALE_FIRST_NAMES,
    MALE_FIRST_NAMES,
    MOBILE_CODES,
    PLACEHOLDER_EMAILS,
    SURNAMES,
)
from crm_assets.demo.run import Run
from crm_assets.demo.sql_literals import lst, nested_lst


def _blocks(n: int, fraction: float, size: int, minimum: int = 1) -> int:
    """Persons for a trap: ~``fraction`` of n in whole groups of ``size``, at least ``minimum``."""
    return max(minimum, round(n * fraction / size)) * size


def trap_blocks(n: int) -> tuple[int, int, int, int]:
    """Ends (h, c, p, s) of the trap blocks of person numbers: [0, h) household, [h, c) company
    e-mail, [c, p) placeholder, [p, s) namesakes; the rest (trap 0) are ordinary persons."""
    h_end = _blocks(n, 0.015, 5)
    c_end = h_end + _blocks(n, 0.012, 7)
    p_end = c_end + _blocks(n, 0.012, 1, minimum=4)
    s_end = p_end + _blocks(n, 0.01, 5)
    return h_end, c_end, p_end, s_end


def build_persons(run: Run) -> None:
    """One row per true person: who they are, their contacts, how they behave."""
    # range() is a single-threaded source: materialise it so the heavy query scans in parallel
    run.con.execute(f"CREATE TABLE person_ids AS SELECT range AS i FROM range({run.n})")
    run.con.execute(f"""
        CREATE TABLE persons AS
        WITH {_trap_group_ctes(run.n)}, hashed AS (
            SELECT *, {_hash_columns(run.r)}
            FROM grouped
        ), attrs AS (
            SELECT pid, trap, grp, member,
                {_identity_and_contact_columns(run)},
                {_life_columns(run)},
                {_shared_contact_columns(run.r)}
            FROM hashed
        )
        SELECT *, {_derived_columns(run)}
        FROM attrs
        """)


def _trap_group_ctes(n: int) -> str:
    """``base`` and ``grouped``: each person's trap (0 none, 1..4 as in ``TRAP_KINDS``) and trap
    group; ``member`` numbers the persons of a household (their first names differ by it)."""
    h, c, p, s = trap_blocks(n)
    return f"""base AS (
            SELECT i AS pid,
                CASE WHEN i < {h} THEN 1 WHEN i < {c} THEN 2 WHEN i < {p} THEN 3
                     WHEN i < {s} THEN 4 ELSE 0 END AS trap
            FROM person_ids
        ), grouped AS (
            -- trap groups: households of 2+3 persons, companies of 3+4, namesakes of 2+3
            SELECT *,
                CASE trap WHEN 1 THEN (pid // 5) * 2 + (pid % 5 >= 2)::INT
                          WHEN 2 THEN ((pid - {h}) // 7) * 2 + ((pid - {h}) % 7 >= 3)::INT
                          WHEN 4 THEN ((pid - {p}) // 5) * 2 + ((pid - {p}) % 5 >= 2)::INT
                          ELSE 0 END AS grp,
                CASE trap WHEN 1 THEN pid % 5 - CASE WHEN pid % 5 >= 2 THEN 2 ELSE 0 END
                          ELSE 0 END AS member
            FROM base
        )"""


def _hash_columns(r: KeyedRandom) -> str:
    """The person's random streams ``hp1..hp9`` and its trap group's ``hg1, hg2`` (the draws the
    members of a group share)."""
    return f"""{r.stream("pid", "p1")} AS hp1, {r.stream("pid", "p2")} AS hp2,
                {r.stream("pid", "p3")} AS hp3, {r.stream("pid", "p4")} AS hp4,
                {r.stream("pid", "p5")} AS hp5, {r.stream("pid", "p6")} AS hp6,
                {r.stream("pid", "p7")} AS hp7, {r.stream("pid", "p8")} AS hp8,
                {r.stream("pid", "p9")} AS hp9,
                {r.stream("trap * 100000000 + grp", "g1")} AS hg1,
                {r.stream("trap * 100000000 + grp", "g2")} AS hg2"""


def _grp_or_person(traps: str, grp_expr: str, person_expr: str) -> str:
    """The group's draw for members of the ``traps`` groups, else the person's own."""
    return f"CASE WHEN trap IN {traps} THEN {grp_expr} ELSE {person_expr} END"


def _identity_and_contact_columns(run: Run) -> str:
    """Sex, city and name indexes, and the draws of the person's e-mail and phone.

    Namesakes share all four of sex, city, first name and surname; a household its city and
    surname (its members' first names are 17 apart in the list, so never the same); a company its
    city.
    """
    u, pick = run.r.u, run.r.pick
    nf, ns = len(MALE_FIRST_NAMES), len(SURNAMES)
    assert nf == len(FEMALE_FIRST_NAMES)
    city_pick = lst(weighted([c[3] for c in CITIES], 100))
    return f"""{_grp_or_person("(4)", u("hg1", 0), u("hp1", 0))} < 0.56 AS female,
                {city_pick}[
                    {_grp_or_person("(1, 2, 4)", pick("hg1", 1, 100), pick("hp1", 1, 100))} + 1
                ] AS city,
                CASE WHEN trap = 1 THEN ({pick("hg1", 2, nf)} + member * 17) % {nf}
                     WHEN trap = 4 THEN {pick("hg1", 2, nf)}
                     ELSE {pick("hp1", 2, nf)} END AS fn_idx,
                floor({ns} * pow({_grp_or_person("(1, 4)", u("hg1", 3), u("hp1", 3))}, 1.2))::BIGINT
                    AS ln_idx,
                {pick("hp2", 0, 7)} AS email_style,
                {pick("hp2", 1, 100)} AS email_dom_pick,
                {u("hp2", 2)} < 0.92 OR trap IN (1, 2, 3) AS has_email0,
                {u("hp2", 3)} < 0.96 OR trap IN (1, 2, 3) AS has_phone0,
                {u("hp3", 0)} < 0.5 AS placeholder_email,
                {pick("hp3", 1, len(PLACEHOLDER_EMAILS))} AS placeholder_kind,
                {pick("hp3", 2, len(MOBILE_CODES))} AS mobile_code,
                {pick("hp3", 3, 20)} AS phone_fmt_pick,
                {u("hp4", 0)} AS u_extra,
                {u("hp4", 1)} AS u_invalid"""


def _life_columns(run: Run) -> str:
    """Birth date (18 to 68 years old at ``start``), registration (35% in the first 45 days),
    the uniforms of activity and churn, the home store draw (a household's is shared), consents,
    the app's platform (iOS or Android) and the kind of a broken e-mail."""
    u, pick, pick32 = run.r.u, run.r.pick, run.r.pick32
    span = run.span
    return f"""(DATE '{run.start.isoformat()}'
                    - CAST(floor((18 + 50 * pow({u("hp4", 2)}, 1.5)) * 365.25) AS INTEGER))::DATE
                    AS birth_date,
                CASE WHEN {u("hp4", 3)} < 0.35 THEN {pick32("hp5", 0, min(45, span - 1))}
                     ELSE {pick32("hp5", 0, span - 1)} END AS reg_day,
                8 * 3600 + {pick32("hp5", 1, 14 * 3600)} AS reg_sec,
                {u("hp6", 0)} AS u_app,
                {u("hp6", 1)} AS u_act,
                {u("hp6", 2)} AS u_rate,
                {u("hp6", 3)} AS u_churn,
                {u("hp7", 0)} AS u_churn_at,
                {u("hp7", 1)} AS u_norders,
                {u("hp7", 2)} AS u_nsess,
                {_grp_or_person("(1)", pick("hg2", 3, 65536), pick("hp7", 3, 65536))} AS store_draw,
                {u("hp8", 0)} < 0.55 AS email_opt0,
                {u("hp8", 1)} < 0.40 AS sms_opt0,
                {u("hp8", 2)} < 0.75 AS push_opt0,
                {u("hp8", 3)} < 0.45 AS ios,
                {pick("hp9", 0, 5)} AS invalid_kind0"""


def _shared_contact_columns(r: KeyedRandom) -> str:
    """The contact a trap group shares: the household's phone (60% a landline), the company's
    mailbox; and 40% of namesake groups (the first always) live together: one mobile phone."""
    u, pick = r.u, r.pick
    return f"""{u("hg2", 0)} < 0.6 AS hh_landline,
                trap = 4 AND (grp = 0 OR {u("hg2", 0)} < 0.4) AS namesakes_share_phone,
                {pick("hg2", 1, 2)} AS landline_pick,
                {pick("hg2", 2, len(MOBILE_CODES))} AS hh_mobile_code,
                {pick("hg2", 3, len(COMPANY_MAILBOXES))} AS company_box"""


def _derived_columns(run: Run) -> str:
    """From the draws: the home store (one of the city's), which contacts the person has (at least
    one), how many duplicate records (only ordinary persons and namesakes: 0 to 3), app or web
    user, and consents (only for a channel the person can be reached on)."""
    per_city: list[list[int]] = [[] for _ in CITIES]
    for i, (city, _) in enumerate(run.stores):
        per_city[city].append(i)
    city_stores = nested_lst(per_city)
    city_nstores = lst([len(x) for x in per_city])
    return f"""{city_stores}[city + 1][store_draw % {city_nstores}[city + 1] + 1] AS home_store,
            has_email0 OR NOT has_phone0 AS has_email,
            has_phone0 AS has_phone,
            CASE WHEN trap IN (0, 4) THEN
                CASE WHEN u_extra < 0.075 THEN 1 WHEN u_extra < 0.115 THEN 2
                     WHEN u_extra < 0.135 THEN 3 ELSE 0 END
                 ELSE 0 END AS n_extra,
            u_app < 0.42 AS app_user,
            u_app >= 0.42 AND u_app < 0.52 AS web_user,
            email_opt0 AND (has_email0 OR NOT has_phone0) AS email_opt,
            sms_opt0 AND has_phone0 AS sms_opt,
            push_opt0 AND u_app < 0.42 AS push_opt"""
