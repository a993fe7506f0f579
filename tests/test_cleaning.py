"""The cleaning functions as staging SQL sees them: registered on a real DuckDB connection.

Each test selects a function over a small ``VALUES`` list and compares with hand-written answers,
so a change of rule shows up as a failing row, not as a drifted golden file.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import random
from collections.abc import Iterator
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest

from crm_assets.functions import contacts as cleaning
from crm_assets.functions.allow_list import CLEANING_FUNCTIONS
from crm_assets.functions.contacts import clean_email, clean_phone, clear_cleaning_caches
from crm_assets.functions.macros import CITY_ALIASES
from crm_assets.functions.registry import register_functions as register_cleaning_functions


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    register_cleaning_functions(connection)
    yield connection
    connection.close()


def select(con: duckdb.DuckDBPyConnection, expr: str, values: list) -> list:
    """``expr`` over column ``v`` (and ``v1`` when values are pairs) for each value, in order."""
    pairs = isinstance(values[0], tuple)
    columns = list(zip(*values, strict=True)) if pairs else [values]
    unnests = ", ".join(f"unnest(${n + 1}::VARCHAR[]) AS v{n or ''}" for n in range(len(columns)))
    sql = (
        f"SELECT {expr} FROM (SELECT {unnests}, unnest(range(len($1::VARCHAR[]))) AS i) ORDER BY i"
    )
    return [r[0] for r in con.execute(sql, [list(c) for c in columns]).fetchall()]


BLANKS = [None, "", "   ", "\t", "\u00a0"]


# --- registration ---------------------------------------------------------------------------


def test_registration_creates_every_function_and_is_idempotent() -> None:
    connection = duckdb.connect()
    register_cleaning_functions(connection)
    register_cleaning_functions(connection)  # a second call on one connection must not fail
    names = {
        r[0]
        for r in connection.execute(
            "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_name LIKE 'crm_%'"
        ).fetchall()
    }
    assert set(CLEANING_FUNCTIONS) <= names
    assert connection.execute("SELECT crm_email(' A@Mail.ru ')").fetchone() == ("a@mail.ru",)
    connection.close()


def test_registration_on_several_connections_to_one_file(tmp_path) -> None:
    """UDFs are instance-wide in DuckDB, macros per connection: both orders must work."""
    path = str(tmp_path / "shared.duckdb")
    first = duckdb.connect(path)
    second = duckdb.connect(path)  # same process, same file: the same database instance
    cursor = first.cursor()
    try:
        for connection in (first, second, cursor, first):
            register_cleaning_functions(connection)
            got = connection.execute("SELECT crm_email('A@Mail.ru'), crm_city('спб')").fetchone()
            assert got == ("a@mail.ru", "Санкт-Петербург")
    finally:
        cursor.close()
        second.close()
        first.close()


def test_macros_are_temporary_and_never_reach_the_warehouse_file(tmp_path) -> None:
    path = str(tmp_path / "warehouse.duckdb")
    connection = duckdb.connect(path)
    register_cleaning_functions(connection)
    connection.execute("CREATE TABLE t AS SELECT crm_city('мск') AS city")
    connection.close()

    reopened = duckdb.connect(path)
    try:
        assert reopened.execute("SELECT city FROM t").fetchone() == ("Москва",)
        leaked = reopened.execute(
            "SELECT function_name FROM duckdb_functions() WHERE function_name LIKE '%crm%'"
        ).fetchall()
        assert leaked == []
        with pytest.raises(duckdb.CatalogException):
            reopened.execute("SELECT crm_city('мск')")
    finally:
        reopened.close()


@pytest.mark.parametrize("function", CLEANING_FUNCTIONS)
def test_null_and_blank_give_null(con, function: str) -> None:
    args = {"crm_name_key": "v, v", "crm_instant": "v, 'Europe/Moscow'"}.get(function, "v")
    assert select(con, f"{function}({args})", BLANKS) == [None] * len(BLANKS)


# --- email ----------------------------------------------------------------------------------

EMAILS = [
    # raw, crm_email, crm_email_key
    (" Ivan.Petrov@Mail.RU ", "ivan.petrov@mail.ru", "ivan.petrov@mail.ru"),
    ("Ivan.Petrov+promo@GMAIL.com", "ivan.petrov+promo@gmail.com", "ivanpetrov@gmail.com"),
    ("i.v.a.n@googlemail.com", "i.v.a.n@googlemail.com", "ivan@gmail.com"),
    ("IvanPetrov@gmail.com", "ivanpetrov@gmail.com", "ivanpetrov@gmail.com"),
    ("anna.s+news@yandex.ru", "anna.s+news@yandex.ru", "anna.s@yandex.ru"),
    ("a.b@yandex.ru", "a.b@yandex.ru", "a.b@yandex.ru"),
    ("ivan@Яндекс.рф", "ivan@яндекс.рф", "ivan@яндекс.рф"),
]


def test_email_normalises_and_keys(con) -> None:
    raws = [raw for raw, _, _ in EMAILS]
    got = select(con, "(crm_email(v), crm_email_key(v), crm_email_issue(v))", raws)
    assert got == [(email, key, None) for _, email, key in EMAILS]


def test_gmail_variants_share_one_key(con) -> None:
    variants = [
        "ivan.petrov@gmail.com",
        "IVANPETROV@gmail.com",
        "i.van.petrov+shop@googlemail.com",
        " ivanpetrov+1@GoogleMail.com ",
    ]
    assert set(select(con, "crm_email_key(v)", variants)) == {"ivanpetrov@gmail.com"}


@pytest.mark.parametrize(
    "raw",
    ["bad@", "no-at-sign.ru", "a..b@mail.ru", "x@localhost", "ivan @mail.ru", "@mail.ru", "нет"],
)
def test_invalid_email(con, raw: str) -> None:
    email, key, issue = select(con, "(crm_email(v), crm_email_key(v), crm_email_issue(v))", [raw])[
        0
    ]
    assert (email, key) == (None, None)
    assert issue.startswith("invalid email: ") and len(issue) > len("invalid email: ")


def test_invalid_email_carries_the_validator_message(con) -> None:
    assert select(con, "crm_email_issue(v)", ["no-at-sign.ru"]) == [
        "invalid email: An email address must have an @-sign."
    ]


@pytest.mark.parametrize(
    "raw",
    [
        "test@test.ru",
        "TEST@test.com",
        "noemail@mail.ru",
        "no@email.com",
        "none@yandex.ru",
        "no-reply@shop.ru",
        "noreply@shop.ru",
        "noreply+crm@shop.ru",
        "example@example.com",
        "ivan.petrov@example.com",
    ],
)
def test_placeholder_email(con, raw: str) -> None:
    got = select(con, "(crm_email(v), crm_email_key(v), crm_email_issue(v))", [raw])
    assert got == [(None, None, "placeholder email")]


@pytest.fixture
def validated(monkeypatch) -> list[str]:
    """Every value handed to the e-mail library from here on (the real library still answers)."""
    calls: list[str] = []
    real = cleaning.validate_email

    def counting(value, **kwargs):
        calls.append(value)
        return real(value, **kwargs)

    monkeypatch.setattr(cleaning, "validate_email", counting)
    clear_cleaning_caches()
    return calls


def test_email_and_issue_share_one_parse_per_distinct_value(con, validated) -> None:
    distinct = [f"user{i}@mail.ru" for i in range(7)] + ["bad@"]
    rows = [distinct[i % len(distinct)] for i in range(5000)]  # spans several DuckDB vectors
    got = select(con, "(crm_email(v), crm_email_key(v), crm_email_issue(v))", rows)
    assert sorted(validated) == sorted(distinct)
    assert got == [tuple(clean_email(r)) for r in rows]  # answers land on their own rows


def test_a_batch_of_more_values_than_the_cache_holds_parses_each_once(validated, monkeypatch
                                                                      ) -> None:
    """``contact_checks`` hands millions of distinct values to ``clean_emails`` at once: each is
    still parsed once, for all three answers (here with a cache of 4 for 20 values)."""
    monkeypatch.setattr(cleaning, "_parse_email",
                        functools.lru_cache(maxsize=4)(cleaning._parse_email.__wrapped__))
    distinct = [f"user{i}@mail.ru" for i in range(19)] + ["bad@"]
    got = cleaning.clean_emails(pa.array(distinct * 3 + [None, "  "]))
    assert sorted(validated) == sorted(distinct)
    assert got.column("email").to_pylist() == (distinct[:19] + [None]) * 3 + [None, None]
    assert got.column("issue").to_pylist()[19] is not None  # "bad@", on its own row
    assert got.to_pylist()[:20] == [{"email": r.email, "email_key": r.key, "issue": r.issue}
                                    for r in map(clean_email, distinct)]


def test_a_batch_checks_each_domain_once_with_the_same_answers() -> None:
    """``contact_checks`` checks a batch's e-mails with each valid domain checked by the library
    once: the answers, messages included, are those of plain calls (an invalid domain, asked
    twice, fails twice with the same message); the library is itself again after the batch."""
    from crm_assets.warehouse.contacts import domains_checked_once

    library = importlib.import_module("email_validator.validate_email")

    values = pa.array([
        "anna@mail.ru", "boris@mail.ru", "Clara@Mail.RU", "dmitry@gmail.com", "egor@пример.рф",
        "fedor@xn--e1afmkfd.xn--p1ai", "gleb@-mail.ru", "ivan@-mail.ru", "kira@mail..ru",
        "lev@mail ru", "maria@[127.0.0.1]", "nina@localhost", "oleg@com", "pavel@mail.ru.",
        "roman atmail.ru", "no-reply@mail.ru", "sofia@bk.ru", None, "  ",
    ])
    plain = cleaning.clean_emails(values)
    remembered = []
    with domains_checked_once():
        got = cleaning.clean_emails(values)
        remembered.append(library.validate_email_domain_name.cache_info())
    assert got.equals(plain)
    assert plain.column("issue").to_pylist()[6] == plain.column("issue").to_pylist()[7]
    assert plain.column("issue").to_pylist()[6].startswith("invalid email:")
    assert remembered[0].hits > 0  # mail.ru, asked for by several addresses, checked once
    assert not hasattr(library.validate_email_domain_name, "cache_info")


# --- phone ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("8 (916) 123-45-67", "+79161234567"),
        ("+7 916 1234567", "+79161234567"),
        ("79161234567", "+79161234567"),
        ("8-916-123-45-67", "+79161234567"),
        ("9161234567", "+79161234567"),
        (" +7(916)123 45 67 ", "+79161234567"),
        ("тел. 8 916 123-45-67", "+79161234567"),
        ("+7 (495) 123-45-67", "+74951234567"),
        ("8 800 555-35-35", "+78005553535"),
        ("+7 901 234-56-78", "+79012345678"),  # a real number, not a keyboard run
        ("+44 20 7946 0958", "+442079460958"),
        ("8 10 44 20 7946 0958", "+442079460958"),  # 8 10 is the Russian international prefix
    ],
)
def test_phone_e164(con, raw: str, expected: str) -> None:
    assert select(con, "(crm_phone(v), crm_phone_issue(v))", [raw]) == [(expected, None)]


@pytest.mark.parametrize(
    "raw",
    [
        "0000000000",
        "9999999999",
        "+7 000 000-00-00",
        "8 (999) 999-99-99",
        "77777777777",
        "1234567890",
        "+7 123 456-78-90",
        "0123456789",
        "9876543210",
    ],
)
def test_placeholder_phone(con, raw: str) -> None:
    assert select(con, "(crm_phone(v), crm_phone_issue(v))", [raw]) == [(None, "placeholder phone")]


@pytest.mark.parametrize("raw", ["12345", "abc", "+7 916 123", "8 (016) 123-45-67", "-"])
def test_invalid_phone(con, raw: str) -> None:
    assert select(con, "(crm_phone(v), crm_phone_issue(v))", [raw]) == [(None, "invalid phone")]


def test_phone_folding_agrees_with_the_library(con) -> None:
    """The UDF folds +7/7/8/bare shapes to one key before parsing; the answer must not change."""
    rng = random.Random(20240)
    nationals = ["".join(rng.choice("0123456789") for _ in range(10)) for _ in range(500)]
    nationals += ["1044207946", "1012345678", "8005553535", "7012345678"]
    raws = [
        shape.format(n=n, a=n[:3], b=n[3:6], c=n[6:8], d=n[8:])
        for n in nationals
        for shape in ("+7{n}", "7{n}", "8{n}", "{n}", "8 ({a}) {b}-{c}-{d}", "+7 {a} {b}{c}{d}")
    ]
    clear_cleaning_caches()
    got = select(con, "(crm_phone(v), crm_phone_issue(v))", raws)
    clear_cleaning_caches()
    assert got == [tuple(clean_phone(r)) for r in raws]


# --- names, gender, booleans, decimals ------------------------------------------------------


def test_name_key(con) -> None:
    pairs = [
        ("Иван", "Петров"),
        ("Петров", "Иван"),
        ("  ИВАН ", "петров"),
        ("Ёлкина", "Анна-Мария"),
        ("O'Brien", "John"),
        ("Петров  Иван", ""),
        ("IVAN", None),
        (None, "  "),
        ("123", "!!"),
    ]
    assert select(con, "crm_name_key(v, v1)", pairs) == [
        "иван петров",
        "иван петров",
        "иван петров",
        "аннамария елкина",
        "john obrien",
        "иван петров",
        "ivan",
        None,
        None,
    ]


def test_gender(con) -> None:
    raws = ["М", "m", "Male", " МУЖ ", "мужской", "Муж.", "Ж", "f", "FEMALE", "жен", "Женский"]
    raws += ["x", "?", "мж"]
    assert select(con, "crm_gender(v)", raws) == ["male"] * 6 + ["female"] * 5 + [None] * 3


def test_bool(con) -> None:
    raws = ["true", "T", "1", "Yes", "y", " ДА ", "false", "F", "0", "no", "N", "Нет"]
    raws += ["maybe", "2", "tru"]
    assert select(con, "crm_bool(v)", raws) == [True] * 6 + [False] * 6 + [None] * 3


def test_decimal(con) -> None:
    cases = {
        "123.50": Decimal("123.50"),
        "123,50": Decimal("123.50"),
        " 1 234,50 ": Decimal("1234.50"),
        "1\u00a0234,5": Decimal("1234.50"),
        "1234": Decimal("1234.00"),
        "-15,5": Decimal("-15.50"),  # negatives kept: staging decides
        "1.234,50": Decimal("1234.50"),
        "1,234.50": Decimal("1234.50"),
        "1,234": Decimal("1.23"),  # a lone comma is the decimal point
        "abc": None,
        "12.345.678": None,
        "1,2,3": None,
    }
    assert select(con, "crm_decimal(v)", list(cases)) == list(cases.values())
    assert con.execute("SELECT typeof(crm_decimal('1'))").fetchone() == ("DECIMAL(12,2)",)


def test_instant(con) -> None:
    """Moscow is UTC+3 all year; Novosibirsk UTC+7 (no DST since 2014)."""
    utc = dt.UTC
    cases = {
        # a wall-clock time is read in the zone given: 00:30 in Moscow is 21:30 UTC the day before
        ("2025-03-10 00:30:00", "Europe/Moscow"): dt.datetime(2025, 3, 9, 21, 30, tzinfo=utc),
        ("2025-03-11 01:00:00", "Asia/Novosibirsk"): dt.datetime(2025, 3, 10, 18, 0, tzinfo=utc),
        ("10.03.2025 12:00", "Europe/Moscow"): dt.datetime(2025, 3, 10, 9, 0, tzinfo=utc),
        ("10/03/2025 12:00:30", "Europe/Moscow"): dt.datetime(2025, 3, 10, 9, 0, 30, tzinfo=utc),
        ("10.03.2025", "Europe/Moscow"): dt.datetime(2025, 3, 9, 21, 0, tzinfo=utc),  # midnight
        # an explicit offset wins over the zone
        ("2025-03-10T10:00:00+07:00", "Europe/Moscow"): dt.datetime(2025, 3, 10, 3, 0, tzinfo=utc),
        ("2025-03-10 10:00:00Z", "Asia/Novosibirsk"): dt.datetime(2025, 3, 10, 10, 0, tzinfo=utc),
        ("когда-то", "Europe/Moscow"): None,
        ("31.02.2025 10:00", "Europe/Moscow"): None,
    }
    con.execute("SET TimeZone = 'UTC'")
    assert select(con, "crm_instant(v, v1)", list(cases)) == list(cases.values())


# --- birth dates ----------------------------------------------------------------------------


def test_birth_date_formats(con) -> None:
    yy = dt.date.today().year % 100
    cases = {
        "1990-03-15": dt.date(1990, 3, 15),
        "15.03.1990": dt.date(1990, 3, 15),
        "15/03/90": dt.date(1990, 3, 15),
        "5.3.1990": dt.date(1990, 3, 5),
        "15-03-1990": dt.date(1990, 3, 15),
        " 1990-03-15 00:00:00 ": dt.date(1990, 3, 15),
        "1990-03-15T10:30:00+03:00": dt.date(1990, 3, 15),
        "03/04/1990": dt.date(1990, 4, 3),  # day first
        "01/01/00": dt.date(2000, 1, 1),
        f"01/01/{yy:02d}": dt.date(2000 + yy, 1, 1),  # this year's two digits: 20xx
        f"01/01/{yy + 1:02d}": dt.date(1900 + yy + 1, 1, 1),  # next year's two digits: 19xx
        "1900-01-01": dt.date(1900, 1, 1),
    }
    got = select(con, "(crm_birth_date(v), crm_birth_date_issue(v))", list(cases))
    assert got == [(d, None) for d in cases.values()]


def test_birth_date_issues(con) -> None:
    next_year = dt.date.today().year + 1
    cases = {
        # Decision: a value in a date shape whose parts make no calendar date is *impossible*,
        # not unparseable: it was read, and the source holds a wrong date for this person.
        "31.02.1990": "impossible birth date",
        "15.13.1990": "impossible birth date",
        "1899-12-31": "impossible birth date",
        f"01.01.{next_year}": "impossible birth date",  # in the future
        "abc": "unparseable birth date",
        "15 марта 1990": "unparseable birth date",
        "1990": "unparseable birth date",
        "15.03.990": "unparseable birth date",
        "1990/03/1990": "unparseable birth date",
    }
    got = select(con, "(crm_birth_date(v), crm_birth_date_issue(v))", list(cases))
    assert got == [(None, issue) for issue in cases.values()]


# --- city -----------------------------------------------------------------------------------


def test_every_city_alias_maps_to_its_city(con) -> None:
    raws, expected = [], []
    for canonical, aliases in CITY_ALIASES.items():
        for alias in (canonical, *aliases):
            for variant in (alias, f"  {alias.upper()} ", alias.lower()):
                raws.append(variant)
                expected.append(canonical)
    assert select(con, "crm_city(v)", raws) == expected


def test_city_prefix_and_unknown_cities(con) -> None:
    cases = {
        "г. Москва": "Москва",
        "город Казань": "Казань",
        "г Екатеринбург": "Екатеринбург",
        "г.Новосибирск": "Новосибирск",
        "Ленинград": "Санкт-Петербург",
        " тверь ": "Тверь",
        "нижний  новгород": "Нижний новгород",
        "г. Тверь": "Тверь",
        "Tver": "Tver",
        "Гатчина": "Гатчина",
    }
    assert select(con, "crm_city(v)", list(cases)) == list(cases.values())


@pytest.mark.parametrize(("raw", "key"), [
    ("name@mail.ru.", "name@mail.ru"),  # a trailing dot
    ("u507atgmail.com", "u507@gmail.com"),  # "at" typed for "@", before a known domain
    ("Kate.Ivanova(at)yandex.ru", "kate.ivanova@yandex.ru"),
    ("ivan [at] bk.ru", "ivan@bk.ru"),
    ("ivan собака mail.ru", "ivan@mail.ru"),
    ("kateatmail.ru", "kate@mail.ru"),
])
def test_an_evidently_meant_mailbox_keeps_its_matching_key_never_its_address(con, raw, key):
    email, got_key, issue = select(
        con, "(crm_email(v), crm_email_key(v), crm_email_issue(v))", [raw])[0]
    assert (email, got_key) == (None, key)  # never sent to: the address stays unusable
    assert issue.startswith("invalid email: ") and issue.endswith(f" (matched as {key})")


@pytest.mark.parametrize("raw", ["nameathome.com", "atmail.ru", "ivan petrov at mail.ru",
                                 "ivan.petrov.at.gmail.com", "kate"])
def test_no_guess_without_a_known_domain_or_a_plain_local_part(con, raw):
    assert select(con, "crm_email_key(v)", [raw]) == [None]
