"""The customer records: each person's original record plus its duplicates, rendered as CRM text.

A duplicate varies its original the way real CRM duplicates do (e-mail case, gmail dots, phone
format, swapped or misspelt names, ё/е, a missing contact) but always keeps at least one contact
that matches once normalised; every record carries the labels of what was done to it
(``_truth/customers.csv``). Record ids follow registration time, so a person's original (its
earliest record) has the lowest id.

Tables: ``persons_r`` (persons with their rendered names and contacts), ``records`` (dropped once
numbered), ``record_ids`` (``pid, rn -> rec_no``, read by :mod:`~crm_assets.demo.activity`) and
``customers_out`` (the records in id order, read by the customers file and its truth).
"""

from __future__ import annotations

from pathlib import Path

from crm_assets.demo.keyed_random import KeyedRandom, weighted
from crm_assets.demo.reference import (
    CITIES,
    COMPANY_MAILBOXES,
    COMPANY_NAMES,
    EMAIL_DOMAINS,
    FEMALE_FIRST_NAMES,
    LANDLINE_CODES,
    MALE_FIRST_NAMES,
    MOBILE_CODES,
    PLACEHOLDER_EMAILS,
    PLACEHOLDER_PHONES,
    SURNAMES,
    TRAP_KINDS,
    feminine,
    translit,
)
from crm_assets.demo.run import Run
from crm_assets.demo.sql_literals import lst, nested_lst, path_literal

#: Birth dates no person has (``impossible_birth_date``), in the formats CRM exports use.
_BAD_BIRTHS = ("1899-01-01", "2031-05-05", "31.02.1990", "30.02.1985", "1990-13-01", "2099-12-31")


def customer_id(rec_no: str) -> str:
    """``C`` + the record number in 7 digits (``right`` of a shifted number beats ``lpad``)."""
    return f"('C' || right((10000000 + {rec_no})::VARCHAR, 7))"


def phone_digit_lists() -> dict[str, list[object]]:
    """The lookup lists phone numbers are cut with (see ``generator.build_lut``)."""
    return {
        "digits2": [f"{i:02d}" for i in range(100)],
        "digits3": [f"{i:03d}" for i in range(1000)],
    }


def build_records(run: Run) -> None:
    """Customer records: the original of each person plus its duplicates, rendered as text."""
    _build_rendered_persons(run)
    # duplicates: a scan per record rank (a person has at most 4 records) is much cheaper
    # than unnest, which copies every column row by row
    run.con.execute(f"""
        CREATE TABLE records AS
        WITH {_ranked_records_ctes(run.r)},
            {_variation_ctes(run.r)},
            {_phone_parts_cte(run.r)},
            {_rendered_cte(run)},
            {_final_cte(run.r)}
        SELECT {_record_columns(run)}
        FROM final
        """)
    _number_records(run)


def _build_rendered_persons(run: Run) -> None:
    """``persons_r``: per person its names, original e-mail and phone parts, as the original
    record shows them (the variations of duplicates come on top)."""
    run.con.execute(f"""
        CREATE TABLE persons_r AS
        WITH p AS (
            SELECT *, {_name_and_number_columns(run)}
            FROM persons
        ), p2 AS (
            SELECT *, {_email_part_columns()}
            FROM p
        ), p3 AS (
            SELECT *, {_email_column()} AS email0
            FROM p2
        )
        SELECT pid, trap, n_extra, fn0, ln0, has_email, has_phone, has_yo, is_gmail, email0,
            ph_code, ph_num, phone_fmt0, placeholder_email, placeholder_kind, reg_day, reg_sec,
            birth_date, female, city, home_store, email_opt, sms_opt, push_opt, invalid_kind,
            namesakes_share_phone
        FROM p3
        """)


def _name_and_number_columns(run: Run) -> str:
    """Names in Cyrillic and Latin letters, the e-mail domain, and numbers unique per person.

    Unique numbers come from affine permutations: the e-mail suffix ``pid * 7919 + a`` modulo
    10^d, the phone subscriber ``key * 3021377 + b`` modulo 10^7 (both factors are prime to the
    modulus), with a and b fixed by the seed. Keys run to 3n (households and namesakes sharing a
    phone have keys of their own above n); from 3.3M persons on, keys 10^7 apart share a
    subscriber number, so the mobile code then follows the key: the same subscriber number, a
    different code.
    """
    nf, ns = len(MALE_FIRST_NAMES), len(SURNAMES)
    all_first = MALE_FIRST_NAMES + FEMALE_FIRST_NAMES
    all_last = SURNAMES + tuple(feminine(x) for x in SURNAMES)
    first_names, last_names = lst(all_first), lst(all_last)
    first_lat = lst([translit(x) for x in all_first])
    last_lat = lst([translit(x) for x in all_last])
    dom_pick = lst(weighted([w for _, w in EMAIL_DOMAINS], 100))
    mobile_codes = lst(MOBILE_CODES)
    landline = nested_lst(LANDLINE_CODES)
    fmt_pick = lst(weighted([7, 3, 2, 2, 1, 3, 1, 1], 20))  # format of the original phone
    email_mod = 10 ** max(3, len(str(run.n)))
    email_add = run.r.salt("email_number") % email_mod
    phone_add = run.r.salt("phone_number") % 10**7
    # whose number it is: the person's, the household's, the namesakes' (below 3n)
    phone_key = (f"(CASE WHEN trap = 1 THEN {run.n} + grp WHEN namesakes_share_phone "
                 f"THEN 2 * {run.n} + grp ELSE pid END)")
    if 3 * run.n < 10**7:  # every key has a subscriber number of its own: codes drawn at random
        mobile = (f"WHEN trap = 1 OR namesakes_share_phone THEN {mobile_codes}[hh_mobile_code + 1] "
                  f"ELSE {mobile_codes}[mobile_code + 1]")
    else:  # keys 10^7 apart share a subscriber number: each block of 10^7 shifts the code by one
        mobile = (f"ELSE {mobile_codes}[({phone_key} % 10000000 + {phone_key} // 10000000) "
                  f"% {len(MOBILE_CODES)} + 1]")
    return f"""{first_names}[fn_idx + 1 + female::INT * {nf}] AS fn0,
                {last_names}[ln_idx + 1 + female::INT * {ns}] AS ln0,
                {first_lat}[fn_idx + 1 + female::INT * {nf}] AS fn_lat,
                {last_lat}[ln_idx + 1 + female::INT * {ns}] AS ln_lat,
                {dom_pick}[email_dom_pick + 1] AS dom_idx,
                ((pid * 7919 + {email_add}) % {email_mod})::VARCHAR AS email_num,
                -- a phone: a 3-digit code and a 7-digit subscriber number, unique per person
                -- (a household's number is unique per household, so is that of namesakes
                -- living together)
                CASE WHEN trap = 1 AND hh_landline
                     THEN {landline}[city + 1][landline_pick % len({landline}[city + 1]) + 1]
                     {mobile} END AS ph_code,
                ({phone_key} * 3021377 + {phone_add}) % 10000000 AS ph_num,
                {fmt_pick}[phone_fmt_pick + 1] AS phone_fmt0"""


def _email_part_columns() -> str:
    """The e-mail's local part (one of seven styles + the unique number) and domain, and whether
    the person's record gets a broken e-mail (``invalid_kind`` 1..5: only ordinary persons with
    a single record)."""
    domains = lst([d for d, _ in EMAIL_DOMAINS])
    gmail_idx = [d for d, _ in EMAIL_DOMAINS].index("gmail.com")
    return f"""CASE email_style
                    WHEN 0 THEN fn_lat || '.' || ln_lat
                    WHEN 1 THEN ln_lat
                    WHEN 2 THEN fn_lat[1] || ln_lat
                    WHEN 3 THEN fn_lat || '_' || ln_lat
                    WHEN 4 THEN ln_lat || '.' || fn_lat
                    WHEN 5 THEN fn_lat
                    ELSE fn_lat || ln_lat END || email_num AS email_local,
                {domains}[dom_idx + 1] AS domain,
                dom_idx = {gmail_idx} AS is_gmail,
                contains(fn0 || ln0, 'ё') AS has_yo,
                CASE WHEN trap = 0 AND n_extra = 0 AND has_email AND u_invalid < 0.012
                     THEN 1 + invalid_kind0 ELSE 0 END AS invalid_kind"""


def _email_column() -> str:
    """The original e-mail: the company mailbox (numbered once the company names run out), a
    placeholder, one of five broken forms, or the person's own."""
    ncomp = len(COMPANY_NAMES)
    return f"""CASE WHEN trap = 2
                     THEN {lst(COMPANY_MAILBOXES)}[company_box + 1] || '@'
                          || {lst(COMPANY_NAMES)}[grp % {ncomp} + 1]
                          || CASE WHEN grp >= {ncomp} THEN (grp // {ncomp} + 1)::VARCHAR ELSE '' END
                          || '.ru'
                     WHEN trap = 3 AND placeholder_email
                     THEN {lst(PLACEHOLDER_EMAILS)}[placeholder_kind + 1]
                     WHEN invalid_kind = 1 THEN email_local || '@'
                     WHEN invalid_kind = 2 THEN email_local || '.' || domain
                     WHEN invalid_kind = 3 THEN fn_lat[1] || '@' || domain[1]
                     WHEN invalid_kind = 4 THEN email_local || '@@' || domain
                     WHEN invalid_kind = 5 THEN email_local || '@' || split_part(domain, '.', 1)
                     ELSE email_local || '@' || domain END"""


def _ranked_records_ctes(r: KeyedRandom) -> str:
    """``rec``: a person's records, ``rn`` 0 (the original) to ``n_extra``; ``hashed``: their
    random streams ``hr1..hr6``."""
    return f"""rec AS (
            SELECT *, 0 AS rn FROM persons_r
            UNION ALL SELECT *, 1 AS rn FROM persons_r WHERE n_extra >= 1
            UNION ALL SELECT *, 2 AS rn FROM persons_r WHERE n_extra >= 2
            UNION ALL SELECT *, 3 AS rn FROM persons_r WHERE n_extra >= 3
        ), hashed AS (
            SELECT *,
                {r.stream("pid * 4 + rn", "r1")} AS hr1, {r.stream("pid * 4 + rn", "r2")} AS hr2,
                {r.stream("pid * 4 + rn", "r3")} AS hr3, {r.stream("pid * 4 + rn", "r4")} AS hr4,
                {r.stream("pid * 4 + rn", "r5")} AS hr5, {r.stream("pid * 4 + rn", "r6")} AS hr6,
                {r.stream("pid * 4 + rn", "r7")} AS hr7
            FROM rec
        )"""


def _variation_ctes(r: KeyedRandom) -> str:
    """``kinds``..``kinds3``: which variations a duplicate gets (``k_*``, one per dirt label).

    A duplicate never loses both contacts (``k_me`` and ``k_mp`` exclude each other) and never
    changes the e-mail it lost or the phone it lost; one drawn without any variation gets at
    least a reformatted phone or, without a phone, a changed e-mail case.
    """
    u = r.u
    no_variation = "NOT (k_me OR k_mp OR k_no OR k_ns OR k_yo OR k_ec0 OR k_ed OR k_pf0)"
    return f"""kinds AS (
            -- the variations of a duplicate; it keeps >= 1 contact that matches once normalised
            SELECT *,
                rn > 0 AND has_email AND has_phone AND {u("hr1", 0)} < 0.18 AS k_me,
                rn > 0 AND has_email AND has_phone AND {u("hr1", 0)} >= 0.18
                    AND {u("hr1", 1)} < 0.20 AS k_mp,
                rn > 0 AND {u("hr1", 2)} < 0.12 AS k_no,
                rn > 0 AND length(ln0) >= 4 AND {u("hr1", 3)} < 0.20 AS k_ns,
                rn > 0 AND has_yo AND {u("hr2", 0)} < 0.70 AS k_yo
            FROM hashed
        ), kinds2 AS (
            SELECT *,
                rn > 0 AND has_email AND NOT k_me AND {u("hr2", 1)} < 0.30 AS k_ec0,
                rn > 0 AND has_email AND NOT k_me AND is_gmail AND {u("hr2", 2)} < 0.50 AS k_ed,
                rn > 0 AND has_phone AND NOT k_mp AND {u("hr2", 3)} < 0.45 AS k_pf0
            FROM kinds
        ), kinds3 AS (
            -- a duplicate with no variation at all gets at least a reformatted contact
            SELECT *,
                k_pf0 OR (rn > 0 AND has_phone AND NOT k_mp AND {no_variation}) AS k_pf,
                k_ec0 OR (rn > 0 AND NOT has_phone AND {no_variation}) AS k_ec,
                -- a mistyped e-mail (trailing dot, "at" for "@"); the phone still matches
                rn > 0 AND has_email AND has_phone AND NOT k_me AND NOT k_mp AND NOT k_ec0
                    AND NOT k_ed AND {u("hr7", 0)} < 0.12 AS k_et
            FROM kinds2
        )"""


def _phone_parts_cte(r: KeyedRandom) -> str:
    """``parts``: the phone number cut into its groups of digits, the record's phone format (a
    reformatted duplicate's is another than its original's) and the draws of the rendering."""
    u, pick = r.u, r.pick
    return f"""parts AS (
            SELECT kinds3.*,
                lut.digits3[ph_num // 10000 + 1] AS ph_a,
                lut.digits2[(ph_num // 100) % 100 + 1] AS ph_b,
                lut.digits2[ph_num % 100 + 1] AS ph_c,
                CASE WHEN k_pf THEN (phone_fmt0 + 1 + {pick("hr3", 0, 7)}) % 8
                     ELSE phone_fmt0 END AS ph_fmt,
                {pick("hr4", 0, 20)} AS gender_fmt,
                {u("hr3", 3)} AS u_birth_fmt,
                {u("hr4", 1)} AS u_city,
                {pick("hr4", 2, 6)} AS city_alias,
                {u("hr6", 0)} AS u_typo,
                {u("hr6", 3)} AS u_case
            FROM kinds3 CROSS JOIN lut
        )"""


def _format_phone(fmt: str) -> str:
    """The phone in format ``fmt`` (0..7, an SQL column) from its parts ``ph_*``."""
    # a simple CASE repeats its operand in every WHEN: keep operand and parts columns
    # (one concat() is cheaper than a chain of ||)
    c, a, b, d = "ph_code", "ph_a", "ph_b", "ph_c"
    return f"""CASE {fmt}
                WHEN 0 THEN concat('+7 ', {c}, ' ', {a}, '-', {b}, '-', {d})
                WHEN 1 THEN concat('8 (', {c}, ') ', {a}, '-', {b}, '-', {d})
                WHEN 2 THEN concat('+7 ', {c}, ' ', {a}, {b}, {d})
                WHEN 3 THEN concat('7', {c}, {a}, {b}, {d})
                WHEN 4 THEN concat('8-', {c}, '-', {a}, '-', {b}, '-', {d})
                WHEN 5 THEN concat('+7', {c}, {a}, {b}, {d})
                WHEN 6 THEN concat('8', {c}, {a}, {b}, {d})
                ELSE concat('+7 (', {c}, ') ', {a}, '-', {b}, '-', {d}) END"""


def _rendered_cte(run: Run) -> str:
    """``rendered``: names without ё, the contacts a record keeps, a rare impossible birth date,
    and the registration: the original's drawn instant, a duplicate's any second from a minute
    later to the end of the period."""
    u, pick, pick32 = run.r.u, run.r.pick, run.r.pick32
    t0, t_end = run.t0, run.t_end
    return f"""rendered AS (
            SELECT *,
                CASE WHEN k_yo THEN replace(fn0, 'ё', 'е') ELSE fn0 END AS fn1,
                CASE WHEN k_yo THEN replace(ln0, 'ё', 'е') ELSE ln0 END AS ln1,
                CASE WHEN NOT has_email OR k_me THEN NULL ELSE email0 END AS email1,
                CASE WHEN NOT has_phone OR k_mp THEN NULL
                     WHEN trap = 3 AND NOT placeholder_email
                        THEN {lst(PLACEHOLDER_PHONES)}[placeholder_kind + 1]
                     ELSE {_format_phone("ph_fmt")} END AS phone,
                CASE WHEN {u("hr3", 1)} < 0.006
                     THEN {lst(_BAD_BIRTHS)}[{pick("hr3", 2, len(_BAD_BIRTHS))} + 1]
                     END AS bad_birth,
                CASE WHEN rn = 0 THEN {t0} + reg_day * 86400 + reg_sec
                     ELSE {t0} + reg_day * 86400 + reg_sec + 60
                          + {pick32("hr5", 0, f"{t_end} - ({t0} + reg_day * 86400 + reg_sec) - 60")}
                     END AS reg_ts
            FROM parts
        )"""


def _typo(r: KeyedRandom, s: str) -> str:
    """Drop or double one inner letter: the name always changes."""
    pos = f"(2 + {r.pick('hr6', 2, f'length({s}) - 2')})"
    drop = f"left({s}, {pos} - 1) || substr({s}, {pos} + 1)"
    double = f"left({s}, {pos}) || substr({s}, {pos})"
    return f"CASE WHEN {r.u('hr6', 1)} < 0.6 THEN {drop} ELSE {double} END"


def _final_cte(r: KeyedRandom) -> str:
    """``final``: a misspelt first name (30%) or surname, a gmail address with its dots moved
    (removed, or one added after the third character), and a mistyped address (a trailing dot,
    or ``at`` / ``(at)`` typed for ``@``)."""
    u = r.u
    return f"""final AS (
            SELECT *,
                CASE WHEN k_ns AND u_typo < 0.3 THEN {_typo(r, "fn1")} ELSE fn1 END AS fn2,
                CASE WHEN k_ns AND u_typo >= 0.3 THEN {_typo(r, "ln1")} ELSE ln1 END AS ln2,
                CASE WHEN k_et AND {u("hr7", 1)} < 0.5 THEN email1 || '.'
                     WHEN k_et AND {u("hr7", 1)} < 0.75 THEN replace(email1, '@', 'at')
                     WHEN k_et THEN replace(email1, '@', '(at)')
                     WHEN k_ed THEN
                        CASE WHEN contains(split_part(email1, '@', 1), '.')
                             THEN replace(split_part(email1, '@', 1), '.', '')
                             ELSE email1[1:3] || '.' || split_part(email1, '@', 1)[4:] END
                        || '@' || split_part(email1, '@', 2)
                     ELSE email1 END AS email2
            FROM rendered
        )"""


def _gender_words() -> str:
    """The spellings of the gender indexed by ``female * 20 + draw``."""
    # spelling of the gender by a draw in [0, 20): 18 spellings by weight, 2 empty
    spelling = weighted([6, 3, 3, 2, 2, 1], 18)
    return lst(
        [["М", "m", "male", "муж", "M", "м"][i] for i in spelling]
        + [None, None]
        + [["Ж", "f", "female", "жен", "F", "ж"][i] for i in spelling]
        + [None, None]
    )


def _record_columns(run: Run) -> str:
    """The columns of ``records``: the record as the CRM shows it, before numbering.

    The update instant is any second from registration to the end; a name swap and an e-mail
    case change come last; a birth date is written in one of three formats or left out; the city
    is its name, an alias or empty. ``optin_fmt`` is the draw of the consent flags' spelling.
    """
    pick, pick32 = run.r.pick, run.r.pick32
    city_names = lst([x[0] for x in CITIES])
    city_aliases = nested_lst([x[4] for x in CITIES])
    city_nalias = lst([len(x[4]) for x in CITIES])
    return f"""pid, rn, reg_ts,
            reg_ts + {pick32("hr5", 1, f"{run.t_end} - reg_ts + 1")} AS upd_ts,
            CASE WHEN k_no THEN ln2 ELSE fn2 END AS first_name,
            CASE WHEN k_no THEN fn2 ELSE ln2 END AS last_name,
            CASE WHEN NOT k_ec THEN email2
                 WHEN u_case < 0.5 THEN upper(email2)
                 WHEN u_case < 0.75 THEN upper(email2[1]) || email2[2:]
                 ELSE split_part(email2, '@', 1) || '@' || upper(split_part(email2, '@', 2)) END
                AS email,
            phone,
            {_gender_words()}[female::INT * 20 + gender_fmt + 1] AS gender,
            CASE WHEN bad_birth IS NOT NULL THEN bad_birth
                 WHEN u_birth_fmt < 0.55 THEN strftime(birth_date, '%Y-%m-%d')
                 WHEN u_birth_fmt < 0.85 THEN strftime(birth_date, '%d.%m.%Y')
                 WHEN u_birth_fmt < 0.95 THEN strftime(birth_date, '%d/%m/%y')
                 END AS birth_date,
            CASE WHEN u_city < 0.6 THEN {city_names}[city + 1]
                 WHEN u_city < 0.97
                    THEN {city_aliases}[city + 1][city_alias % {city_nalias}[city + 1] + 1]
                 END AS city,
            {run.store_ids}[home_store + 1] AS home_store_id,
            {pick("hr4", 3, 25)} AS optin_fmt, email_opt, sms_opt, push_opt,
            {_dirt_labels()} AS dirt"""


def _dirt_labels() -> str:
    """The record's dirt: its ``;``-separated labels in this fixed order ('' for a clean one)."""
    return f"""concat_ws(';',
                CASE WHEN rn > 0 THEN 'duplicate' END,
                CASE WHEN k_ec THEN 'email_case' END,
                CASE WHEN k_ed THEN 'email_dots' END,
                CASE WHEN k_et THEN 'email_typo' END,
                CASE WHEN k_pf THEN 'phone_format' END,
                CASE WHEN k_no THEN 'name_order' END,
                CASE WHEN k_ns THEN 'name_spelling' END,
                CASE WHEN k_yo THEN 'yo_e' END,
                CASE WHEN k_me THEN 'missing_email' END,
                CASE WHEN k_mp THEN 'missing_phone' END,
                CASE WHEN invalid_kind > 0 THEN 'invalid_email' END,
                CASE WHEN bad_birth IS NOT NULL THEN 'impossible_birth_date' END,
                {lst([None, *TRAP_KINDS])}[trap + 1],
                CASE WHEN namesakes_share_phone THEN 'namesake_household' END
            )"""


def _number_records(run: Run) -> None:
    """``record_ids`` and ``customers_out``: the records numbered and stored in id order."""
    # record ids follow registration time, so a person's original has the lowest id
    run.con.execute("""
        CREATE TABLE record_ids AS
        SELECT pid, rn, reg_ts, row_number() OVER (ORDER BY reg_ts, pid, rn) AS rec_no
        FROM records
        """)
    # sorted once here, then read in order by the customers file and the truth
    run.con.execute(f"""
        CREATE TABLE customers_out AS
        SELECT i.rec_no, {customer_id("i.rec_no")} AS customer_id, r.*
        FROM records r JOIN record_ids i USING (pid, rn)
        ORDER BY i.rec_no
        """)
    run.con.execute("DROP TABLE records")


def write_customers(run: Run, path: Path) -> int:
    """The customers file: every record in id order, consent flags spelt five ways."""
    trues = lst(["true", "yes", "1", "да", "True"])
    falses = lst(["false", "no", "0", "нет", "False"])
    spelling = f"{lst(weighted([80, 5, 7, 4, 4], 25))}[optin_fmt + 1] + 1"

    def flag(col: str) -> str:
        return f"CASE WHEN {col} THEN {trues}[{spelling}] ELSE {falses}[{spelling}] END"

    exprs = {
        "customer_id": "customer_id",
        "first_name": "first_name",
        "last_name": "last_name",
        "email": "email",
        "phone": "phone",
        "gender": "gender",
        "birth_date": "birth_date",
        "city": "city",
        "home_store_id": "home_store_id",
        "registered_at": "make_timestamp(reg_ts * 1000000)",
        "email_opt_in": flag("email_opt"),
        "sms_opt_in": flag("sms_opt"),
        "push_opt_in": flag("push_opt"),
        "updated_at": "make_timestamp(upd_ts * 1000000)",
    }
    return run.copy_to_csv("customers", exprs, "customers_out", "rec_no", path, prerender=True)


def write_truth_customers(run: Run, path: Path) -> int:
    """``_truth/customers.csv``: each record's person (``person-0000001``...) and its dirt
    labels, ``clean`` for none."""
    run.con.execute(f"""
        COPY (
            SELECT customer_id,
                   'person-' || lpad((pid + 1)::VARCHAR, 7, '0') AS person_id,
                   CASE WHEN dirt = '' THEN 'clean' ELSE dirt END AS dirt
            FROM customers_out ORDER BY rec_no
        ) TO {path_literal(path)} (HEADER, DELIMITER ',')
        """)
    return int(run.con.execute("SELECT count(*) FROM customers_out").fetchone()[0])
