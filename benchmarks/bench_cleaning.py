"""Benchmark of the staging cleaning functions over 1M rows of realistic dirty customer data.

Run: ``python benchmarks/bench_cleaning.py [--rows N] [--threads N]``.

The data is generated inside DuckDB (no Python per row): emails and phones of a pool of people,
written the many ways a CRM receives them (case, spaces, ``+tags``, ``8 (9xx)`` vs ``+7``, typos,
placeholders, blanks), so about 70% of the values are distinct, as in a real customer export where
the same person is entered several times. It times the cleaning ``SELECT`` into a table with cold
caches, then the seven SQL macros alone, and prints seconds and rows per second for each.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crm_assets.functions.contacts import clear_cleaning_caches  # noqa: E402
from crm_assets.functions.registry import register_functions  # noqa: E402

DIRTY_SQL = """
CREATE OR REPLACE TABLE dirty AS
WITH base AS (
    SELECT
        i,
        -- A person drawn from a pool smaller than the row count: repeated people, repeated values.
        CAST(hash(i) % {people} AS BIGINT) AS p,
        CAST(hash(i * 31 + 7) % 100 AS BIGINT) AS r
    FROM range({rows}) t(i)
),
people AS (
    SELECT
        i, p, r,
        ['ivan', 'anna', 'petr', 'olga', 'sergey', 'maria', 'dmitry', 'elena'][p % 8 + 1] AS first,
        ['petrov', 'ivanova', 'smirnov', 'kuznetsova', 'popov', 'sokolova'][p % 6 + 1] AS last,
        ['gmail.com', 'mail.ru', 'yandex.ru', 'bk.ru', 'googlemail.com', 'inbox.ru'][p % 6 + 1]
            AS domain,
        lpad(CAST(9000000000 + (p * 7919) % 999999999 AS VARCHAR), 10, '0') AS national
    FROM base
)
SELECT
    CASE
        WHEN r < 4 THEN NULL
        WHEN r < 6 THEN '  '
        WHEN r < 8 THEN ['test@test.ru', 'noemail@mail.ru', 'no-reply@shop.ru'][p % 3 + 1]
        WHEN r < 11 THEN first || '.' || last || p || domain                     -- missing @
        WHEN r < 13 THEN first || '..' || last || p || '@' || domain             -- double dot
        WHEN r < 25 THEN upper(first) || '.' || last || p || '@' || upper(domain)
        WHEN r < 35 THEN ' ' || first || '.' || last || p || '+promo@' || domain || ' '
        WHEN r < 45 THEN first || last || p || '@' || domain
        ELSE first || '.' || last || p || '@' || domain
    END AS email,
    CASE
        WHEN r < 4 THEN NULL
        WHEN r < 6 THEN ''
        WHEN r < 8 THEN ['0000000000', '+7 999 999-99-99', '1234567890'][p % 3 + 1]
        WHEN r < 11 THEN substr(national, 1, 6)                                 -- too short
        WHEN r < 30 THEN '8 (' || substr(national, 1, 3) || ') ' || substr(national, 4, 3)
            || '-' || substr(national, 7, 2) || '-' || substr(national, 9, 2)
        WHEN r < 50 THEN '+7 ' || substr(national, 1, 3) || ' ' || substr(national, 4)
        WHEN r < 65 THEN '7' || national
        WHEN r < 80 THEN '8-' || substr(national, 1, 3) || '-' || substr(national, 4, 3)
            || '-' || substr(national, 7, 2) || '-' || substr(national, 9, 2)
        ELSE national
    END AS phone,
    ['Москва', 'мск', ' moscow ', 'СПб', 'Питер', 'г. Казань', 'Екб', 'Нск', 'тверь',
     'Санкт-Петербург', NULL, 'Novosibirsk'][(p + r) % 12 + 1] AS city,
    CASE r % 5
        WHEN 0 THEN strftime(DATE '1950-01-01' + CAST(p % 20000 AS INTEGER), '%Y-%m-%d')
        WHEN 1 THEN strftime(DATE '1950-01-01' + CAST(p % 20000 AS INTEGER), '%d.%m.%Y')
        WHEN 2 THEN strftime(DATE '1950-01-01' + CAST(p % 20000 AS INTEGER), '%d/%m/%y')
        WHEN 3 THEN ['31.02.1990', 'unknown', '', NULL][p % 4 + 1]
        ELSE strftime(DATE '1970-01-01' + CAST(p % 15000 AS INTEGER), '%d.%m.%Y')
    END AS birth_date,
    CASE r % 3
        WHEN 0 THEN upper(left(first, 1)) || substr(first, 2)
        WHEN 1 THEN upper(last) || ' ' || first
        ELSE ' ' || first || '-' || last || ' '
    END AS first_name,
    CASE WHEN r % 3 = 1 THEN NULL ELSE upper(left(last, 1)) || substr(last, 2) END AS last_name,
    ['М', 'Ж', 'm', 'f', 'male', 'жен', 'Муж.', '', NULL, '?'][(p + r) % 10 + 1] AS gender,
    ['true', 'false', '1', '0', 'да', 'нет', 'Y', 'n', '', NULL][(p + r) % 10 + 1] AS email_opt_in,
    CASE r % 4
        WHEN 0 THEN CAST((p % 100000) / 100.0 AS VARCHAR)
        WHEN 1 THEN replace(CAST((p % 100000) / 100.0 AS VARCHAR), '.', ',')
        WHEN 2 THEN ' 1 ' || lpad(CAST(p % 1000 AS VARCHAR), 3, '0') || ',50 '
        ELSE CAST(p % 5000 AS VARCHAR)
    END AS amount
FROM people
"""

CLEAN_SQL = """
CREATE OR REPLACE TABLE cleaned AS
SELECT
    crm_email(email) AS email,
    crm_email_key(email) AS email_key,
    crm_email_issue(email) AS email_issue,
    crm_phone(phone) AS phone,
    crm_phone_issue(phone) AS phone_issue,
    crm_city(city) AS city,
    crm_birth_date(birth_date) AS birth_date,
    crm_birth_date_issue(birth_date) AS birth_date_issue
FROM dirty
"""

MACROS_ONLY_SQL = """
CREATE OR REPLACE TABLE cleaned_macros AS
SELECT
    crm_name_key(first_name, last_name) AS name_key,
    crm_gender(gender) AS gender,
    crm_birth_date(birth_date) AS birth_date,
    crm_birth_date_issue(birth_date) AS birth_date_issue,
    crm_city(city) AS city,
    crm_bool(email_opt_in) AS email_opt_in,
    crm_decimal(amount) AS amount
FROM dirty
"""


def _timed(con: duckdb.DuckDBPyConnection, label: str, sql: str, rows: int) -> float:
    """Run ``sql`` and print wall seconds, rows/s and process CPU seconds (all threads).

    CPU time is printed because wall time on a shared machine says more about the neighbours.
    """
    cpu, start = time.process_time(), time.perf_counter()
    con.execute(sql)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"{label:<44} {seconds:8.2f} s {rows / seconds:10,.0f} rows/s  cpu {cpu:7.2f} s")
    return seconds


def main() -> None:
    """Generate the dirty table, run the cleaning queries and print their timings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    con = duckdb.connect()
    if args.threads:
        con.execute(f"SET threads = {args.threads}")
    register_functions(con)
    # ~0.82 people per row gives ~70% distinct emails and phones once the variants are added.
    con.execute(DIRTY_SQL.format(rows=args.rows, people=int(args.rows * 0.82)))
    ratios = con.execute(
        "SELECT count(DISTINCT email) / count(*), count(DISTINCT phone) / count(*) FROM dirty"
    ).fetchone()
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    print(
        f"{args.rows:,} rows, distinct emails {ratios[0]:.0%}, distinct phones {ratios[1]:.0%},"
        f" DuckDB {duckdb.__version__}, threads={threads}"
    )

    clear_cleaning_caches()
    _timed(con, "email x3 + phone x2 + city + birth date x2", CLEAN_SQL, args.rows)
    _timed(con, "all 7 SQL macros, no Python", MACROS_ONLY_SQL, args.rows)

    summary = con.execute(
        """
        SELECT count(email), count(email_issue), count(phone), count(phone_issue),
               count(birth_date), count(birth_date_issue)
        FROM cleaned
        """
    ).fetchone()
    print("clean/issue counts: email {}/{}, phone {}/{}, birth date {}/{}".format(*summary))
    con.close()


if __name__ == "__main__":
    main()
