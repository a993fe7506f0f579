"""Identity resolution on hand-written ``staging.customers`` rows: who is joined, who stays
apart."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from crm_assets.catalog.query import statement_body
from crm_assets.identity import (
    dedupe_report,
    resolve_customer_id,
    resolve_identity,
)
from crm_assets.warehouse import ensure_framework_tables

STAGING_DDL = """
create table staging.customers (
    source_customer_id varchar, first_name varchar, last_name varchar, name_key varchar,
    email varchar, email_key varchar, phone varchar, gender varchar, birth_date date,
    city varchar, home_store_id varchar, registered_at timestamptz,
    email_opt_in boolean, sms_opt_in boolean, push_opt_in boolean, updated_at timestamptz,
    _source_file varchar, _row_number bigint, _loaded_at timestamptz, _batch bigint
)
"""

COLUMNS = (
    "source_customer_id, first_name, last_name, name_key, email, email_key, phone, gender, "
    "birth_date, city, home_store_id, registered_at, email_opt_in, sms_opt_in, push_opt_in, "
    "updated_at, _source_file, _row_number, _loaded_at"
)

PROJECT = Path(__file__).resolve().parents[1]
RUN_1 = datetime(2024, 1, 1, tzinfo=UTC)
RUN_2 = datetime(2024, 2, 1, tzinfo=UTC)
RUN_3 = datetime(2024, 3, 1, tzinfo=UTC)


def golden_customers_sql() -> str:
    """The query of sql/core/customers.sql (one file = one asset), to test it on records here."""
    return statement_body((PROJECT / "sql" / "core" / "customers.sql").read_text(encoding="utf-8"))


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(":memory:")
    connection.execute("set TimeZone = 'UTC'")
    ensure_framework_tables(connection)
    connection.execute(STAGING_DDL)
    yield connection
    connection.close()


def insert(con: duckdb.DuckDBPyConnection, values_sql: str) -> None:
    """Insert literal ``VALUES`` rows, all columns in ``COLUMNS`` order, as a staging run
    writes them: with a batch number newer than any before (identity takes in only those)."""
    con.execute(f"insert into staging.customers ({COLUMNS}) values {values_sql}")
    con.execute("update staging.customers set _batch = nextval('meta.batches') "
                "where _batch is null")


def record(
    src: str,
    first: str | None,
    last: str | None,
    name_key: str | None,
    *,
    email: str | None = None,
    email_key: str | None = None,
    phone: str | None = None,
    gender: str | None = None,
    birth: str | None = None,
    city: str = "Москва",
    registered: str = "2023-01-01",
    updated: str | None = None,
    opt: tuple[bool | None, bool | None, bool | None] = (None, None, None),
    loaded: str = "2024-01-01",
) -> str:
    """One ``VALUES`` tuple, written as staging would have cleaned it."""

    def lit(value: object) -> str:
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        return "'" + str(value).replace("'", "''") + "'"

    if email is not None and email_key is None:
        email_key = email
    parts = [
        src,
        first,
        last,
        name_key,
        email,
        email_key,
        phone,
        gender,
        birth,
        city,
        "S01",
        registered,
        *opt,
        updated or registered,
        "customers.csv",
        1,
        loaded,
    ]
    return "(" + ", ".join(lit(p) for p in parts) + ")"


def groups(con: duckdb.DuckDBPyConnection) -> set[frozenset[str]]:
    """The identity map as a partition of source ids (ids themselves are checked elsewhere)."""
    rows = con.execute(
        "select list(source_customer_id order by source_customer_id) "
        "from core.customer_identity group by customer_id"
    ).fetchall()
    return {frozenset(r[0]) for r in rows}


def id_of(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    rows = con.execute("select source_customer_id, customer_id from core.customer_identity")
    return dict(rows.fetchall())


def test_chain_email_then_phone_is_one_person(con):
    insert(
        con,
        ",".join(
            [
                record(
                    "A", "Иван", "Петров", "иван петров", email="ivan@mail.ru", phone="+79160000001"
                ),
                # name order swapped, same email, other phone
                record(
                    "B", "Петров", "Иван", "иван петров", email="ivan@mail.ru", phone="+79160000002"
                ),
                # a typo in the surname, no email, shares B's phone
                record("C", "Иван", "Петорв", "иван петорв", phone="+79160000002"),
            ]
        ),
    )
    stats = resolve_identity(con, now=RUN_1)
    assert groups(con) == {frozenset("ABC")}
    assert stats == stats | {"records": 3, "persons": 1, "new_ids": 1, "merges": 0}
    rules = dict(
        con.execute("select source_customer_id, match_rule from core.customer_identity").fetchall()
    )
    assert rules == {"A": "email+name", "B": "email+name", "C": "phone+name_typo"}


def test_one_edit_of_any_kind_links_a_shared_phone_and_two_edits_do_not(con):
    """A typo is one inserted, dropped, changed or swapped letter, also one that moves the name
    to the other side of the sorted key; two changed letters are another person."""
    insert(
        con,
        ",".join(
            [
                # a letter dropped from the first name: the keys differ in length
                record("P1", "Анна", "Петрова", "анна петрова", phone="+79160000011"),
                record("P2", "Ана", "Петрова", "ана петрова", phone="+79160000011"),
                # a changed first letter sorts the first name after the surname in the key
                record("Q1", "Ольга", "Смирнова", "ольга смирнова", phone="+79160000012"),
                record("Q2", "Тльга", "Смирнова", "смирнова тльга", phone="+79160000012"),
                # two letters changed: a different name on the same phone
                record("R1", "Елена", "Козлова", "елена козлова", phone="+79160000013"),
                record("R2", "Алена", "Козлава", "алена козлава", phone="+79160000013"),
            ]
        ),
    )
    resolve_identity(con, now=RUN_1)
    assert groups(con) == {frozenset({"P1", "P2"}), frozenset({"Q1", "Q2"}), frozenset({"R1"}),
                           frozenset({"R2"})}
    rules = dict(
        con.execute("select source_customer_id, match_rule from core.customer_identity").fetchall()
    )
    assert rules == {"P1": "phone+name_typo", "P2": "phone+name_typo", "Q1": "phone+name_typo",
                     "Q2": "phone+name_typo", "R1": "no_match", "R2": "no_match"}


def test_household_phone_keeps_two_people(con):
    insert(
        con,
        ",".join(
            [
                record(
                    "H1",
                    "Сергей",
                    "Сидоров",
                    "сергей сидоров",
                    email="sergey@mail.ru",
                    phone="+79160000010",
                    gender="male",
                    birth="1980-05-01",
                ),
                record(
                    "H2",
                    "Степан",
                    "Сидоров",
                    "сидоров степан",
                    email="stepan@mail.ru",
                    phone="+79160000010",
                    gender="male",
                    birth="2005-09-12",
                ),
                # no birth dates: still two first names, still two people
                record(
                    "H3",
                    "Анна",
                    "Сидорова",
                    "анна сидорова",
                    email="anna@mail.ru",
                    phone="+79160000010",
                ),
            ]
        ),
    )
    resolve_identity(con, now=RUN_1)
    assert groups(con) == {frozenset({"H1"}), frozenset({"H2"}), frozenset({"H3"})}


def test_a_person_never_holds_two_birth_dates_through_a_chain(con):
    """Father and son of one name share the household phone; a third record of that name has no
    birth date and links to both. The chain would make one person of father and son: the
    union that would join two birth dates is refused, the stronger (earlier) evidence kept."""
    insert(
        con,
        ",".join(
            [
                record("F", "Иван", "Петров", "иван петров", phone="+79160000020",
                       gender="male", birth="1960-05-05"),
                record("N", "Иван", "Петров", "иван петров", phone="+79160000020",
                       email="ivan.petrov@mail.ru", gender="male"),
                record("S", "Иван", "Петров", "иван петров", phone="+79160000020",
                       email="ivan.petrov@mail.ru", gender="male", birth="1990-01-01"),
            ]
        ),
    )
    resolve_identity(con, now=RUN_1)
    # N-S share the e-mail and the phone (email+name, the strongest rule), N-F only the phone
    assert groups(con) == {frozenset({"N", "S"}), frozenset({"F"})}
    rules = dict(con.execute(
        "select source_customer_id, match_rule from core.customer_identity").fetchall())
    assert rules == {"N": "email+name", "S": "email+name", "F": "no_match"}

    # a later run with nothing new keeps them apart, and so does a full resolution
    resolve_identity(con, now=RUN_1)
    resolve_identity(con, now=RUN_1, full=True)
    assert groups(con) == {frozenset({"N", "S"}), frozenset({"F"})}


def test_company_email_links_nobody(con):
    names = [
        ("Анна", "Кузнецова"),
        ("Борис", "Котов"),
        ("Вера", "Лебедева"),
        ("Глеб", "Морозов"),
        ("Дарья", "Новикова"),
        ("Егор", "Орлов"),
        ("Жанна", "Павлова"),
        ("Зоя", "Руднева"),
    ]
    rows = [
        record(
            f"C{i}",
            first,
            last,
            " ".join(sorted([first.lower(), last.lower()])),
            email="info@bakery-corp.ru",
        )
        for i, (first, last) in enumerate(names)
    ]
    insert(con, ",".join(rows))
    stats = resolve_identity(con, now=RUN_1)
    assert stats["persons"] == 8
    assert len(groups(con)) == 8


def test_records_without_contacts_stay_apart(con):
    # placeholders were nulled by staging: same name, nothing shared -> nothing to link on
    rows = [record(f"N{i}", "Ольга", "Смирнова", "ольга смирнова") for i in range(10)]
    insert(con, ",".join(rows))
    stats = resolve_identity(con, now=RUN_1)
    assert stats["persons"] == 10
    assert sorted(id_of(con).values()) == list(range(1, 11))


def test_namesakes_in_one_city_stay_apart(con):
    insert(
        con,
        ",".join(
            [
                record(
                    "S1",
                    "Алексей",
                    "Иванов",
                    "алексей иванов",
                    email="a.ivanov@mail.ru",
                    phone="+79160000020",
                ),
                record(
                    "S2",
                    "Алексей",
                    "Иванов",
                    "алексей иванов",
                    email="lesha@yandex.ru",
                    phone="+79160000021",
                ),
            ]
        ),
    )
    resolve_identity(con, now=RUN_1)
    assert groups(con) == {frozenset({"S1"}), frozenset({"S2"})}


def test_identity_map_and_golden_records(con):
    insert(
        con,
        ",".join(
            [
                # person 1: ё/е, gmail dots, phone formats all normalised upstream
                record(
                    "P1a",
                    "Алёна",
                    "Фёдорова",
                    "алена федорова",
                    email="alena.f@gmail.com",
                    email_key="alenaf@gmail.com",
                    phone="+79161112233",
                    gender="female",
                    city="Москва",
                    registered="2021-03-01",
                    updated="2021-03-01 10:00",
                    opt=(True, False, True),
                ),
                record(
                    "P1b",
                    "Алена",
                    "Федорова",
                    "алена федорова",
                    email="alenaf@gmail.com",
                    email_key="alenaf@gmail.com",
                    birth="1990-02-03",
                    city=None,
                    registered="2022-06-01",
                    updated="2022-06-01 10:00",
                    opt=(False, None, None),
                ),
                # missing email, shares P1a's phone; newest record
                record(
                    "P1c",
                    "Алена",
                    "Федорова",
                    "алена федорова",
                    phone="+79161112233",
                    city="Казань",
                    registered="2023-01-10",
                    updated="2023-01-10 10:00",
                    opt=(None, True, False),
                ),
                # same updated_at as P1c with an opt-in for push: the opt-out wins the tie
                record(
                    "P1d",
                    "Алена",
                    "Федорова",
                    "алена федорова",
                    phone="+79161112233",
                    registered="2023-01-10",
                    updated="2023-01-10 10:00",
                    opt=(None, None, True),
                    loaded="2024-02-01",
                ),
                # person 2: alone
                record(
                    "P2",
                    "Олег",
                    "Быков",
                    "быков олег",
                    email="oleg@mail.ru",
                    registered="2021-05-01",
                ),
            ]
        ),
    )
    resolve_identity(con, now=RUN_1)
    assert id_of(con) == {"P1a": 1, "P1b": 1, "P1c": 1, "P1d": 1, "P2": 2}

    golden = con.sql(golden_customers_sql())
    assert golden.columns == [
        "customer_id",
        "first_name",
        "last_name",
        "name_key",
        "email",
        "phone",
        "gender",
        "birth_date",
        "city",
        "home_store_id",
        "registered_at",
        "email_opt_in",
        "sms_opt_in",
        "push_opt_in",
        "updated_at",
        "source_record_count",
    ]
    rows = {r[0]: dict(zip(golden.columns, r, strict=True)) for r in golden.fetchall()}
    alena = rows[1]
    assert alena["first_name"] == "Алена"
    assert alena["email"] == "alenaf@gmail.com"  # P1c/P1d have none; P1b is the newest with one
    assert alena["phone"] == "+79161112233"
    assert alena["gender"] == "female"  # only P1a knows it
    assert str(alena["birth_date"]) == "1990-02-03"
    # P1c (Казань) and P1d (Москва) tie on updated_at; P1d was loaded later and wins
    assert alena["city"] == "Москва"
    # opt-out (P1b, 2022) is newer than the opt-in (P1a, 2021): it stays out
    assert alena["email_opt_in"] is False
    # opt-in (P1c, 2023) is newer than the opt-out (P1a, 2021): it overrides it
    assert alena["sms_opt_in"] is True
    # P1c (out) and P1d (in) tie on updated_at: the opt-out wins
    assert alena["push_opt_in"] is False
    assert alena["registered_at"] == datetime(2021, 3, 1, tzinfo=UTC)
    assert alena["updated_at"] == datetime(2023, 1, 10, 10, tzinfo=UTC)
    assert alena["source_record_count"] == 4
    assert rows[2]["source_record_count"] == 1
    assert rows[2]["email_opt_in"] is None


def snapshot(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute("select * from core.customer_identity order by all").fetchall()


def test_incremental_merges_keep_ids_and_resolve_chains(con):
    insert(
        con,
        ",".join(
            [
                record(
                    "Z",
                    "Борис",
                    "Зуев",
                    "борис зуев",
                    email="zuev@mail.ru",
                    registered="2019-01-01",
                ),
                record(
                    "P",
                    "Анна",
                    "Орлова",
                    "анна орлова",
                    email="anna@mail.ru",
                    registered="2020-01-01",
                ),
                record(
                    "Q",
                    "Анна",
                    "Орлова",
                    "анна орлова",
                    phone="+79160000001",
                    registered="2020-02-01",
                ),
                record(
                    "R",
                    "Анна",
                    "Орлова",
                    "анна орлова",
                    email="orlova@ya.ru",
                    registered="2020-03-01",
                ),
            ]
        ),
    )
    first = resolve_identity(con, now=RUN_1)
    assert first == first | {"new_ids": 4, "merges": 0}
    assert id_of(con) == {"Z": 1, "P": 2, "Q": 3, "R": 4}

    # run 2: N1 carries Q's phone and R's email -> R (4, younger) merges into Q (3)
    insert(
        con,
        record(
            "N1",
            "Анна",
            "Орлова",
            "анна орлова",
            phone="+79160000001",
            email="orlova@ya.ru",
            registered="2023-01-01",
        ),
    )
    second = resolve_identity(con, now=RUN_2)
    assert second == second | {"new_ids": 0, "merges": 1, "new_records": 1}
    assert id_of(con) == {"Z": 1, "P": 2, "Q": 3, "R": 3, "N1": 3}
    merge = con.execute("select * from meta.customer_merges").fetchall()
    assert merge[0][:3] == (4, 3, RUN_2)
    assert "email+name" in merge[0][3]

    # run 3: N2 links P (2) and Q (3) -> 3 merges into 2; W is new and must not reuse id 4
    insert(
        con,
        ",".join(
            [
                record(
                    "N2",
                    "Анна",
                    "Орлова",
                    "анна орлова",
                    email="anna@mail.ru",
                    phone="+79160000001",
                    registered="2023-02-01",
                ),
                record(
                    "W", "Вера", "Ким", "вера ким", email="kim@mail.ru", registered="2023-02-02"
                ),
            ]
        ),
    )
    third = resolve_identity(con, now=RUN_3)
    assert third == third | {"new_ids": 1, "merges": 1, "persons": 3}
    assert id_of(con) == {
        "Z": 1,
        "P": 2,
        "Q": 2,
        "R": 2,
        "N1": 2,
        "N2": 2,
        "W": 5,
    }
    assert con.execute(
        "select from_customer_id, to_customer_id from meta.customer_merges order by merged_at"
    ).fetchall() == [(4, 3), (3, 2)]
    redirects = con.execute(
        "select * from core.customer_id_redirects order by from_customer_id"
    ).fetchall()
    assert redirects == [(3, 2), (4, 2)]
    assert resolve_customer_id(con, 4) == 2
    assert resolve_customer_id(con, 3) == 2
    assert resolve_customer_id(con, 1) == 1

    # run 4: nothing new -> nothing changes, no merge rows
    before = snapshot(con)
    fourth = resolve_identity(con, now=datetime(2024, 4, 1, tzinfo=UTC))
    assert fourth == fourth | {"new_ids": 0, "merges": 0, "new_records": 0}
    assert snapshot(con) == before
    assert con.execute("select count(*) from meta.customer_merges").fetchone() == (2,)


def test_failed_run_leaves_tables_untouched(con, monkeypatch):
    insert(con, record("A", "Иван", "Петров", "иван петров", email="ivan@mail.ru"))
    resolve_identity(con, now=RUN_1)
    before = snapshot(con)
    insert(con, record("B", "Иван", "Петров", "иван петров", email="ivan@mail.ru"))
    from crm_assets.identity import statements

    monkeypatch.setattr(statements, "MERGES_SQL", "select no_such_column")
    with pytest.raises(duckdb.Error):
        resolve_identity(con, now=RUN_2)
    assert snapshot(con) == before


def test_dedupe_report_matches_hand_count(con, tmp_path: Path):
    insert(
        con,
        ",".join(record(s, "Х", "Х", "х х") for s in ["A", "B", "C", "D", "E"]),
    )
    con.execute(
        """
        insert into core.customer_identity (source_customer_id, customer_id) values
            ('A', 1), ('B', 1), ('C', 2), ('D', 3), ('E', 3);
        """
    )
    truth = tmp_path / "truth.csv"
    truth.write_text(
        "customer_id,person_id,dirt\n"
        "A,p1,clean\n"
        "B,p1,duplicate;email_case\n"
        "C,p1,duplicate;name_order\n"
        "D,p2,household_phone\n"
        "E,p3,household_phone\n"
        "F,p4,invalid_email\n"  # rejected by staging: excluded
    )
    rows = {r["label"]: r for r in dedupe_report(con, truth)}
    # true {AB, AC, BC}; predicted {AB, DE}; correct {AB}
    assert rows["all"] == {
        "label": "all",
        "records": 5,
        "true_pairs": 3,
        "predicted_pairs": 2,
        "correct_pairs": 1,
        "precision": 0.5,
        "recall": pytest.approx(1 / 3),
    }
    duplicate = rows["duplicate"]
    assert (duplicate["true_pairs"], duplicate["predicted_pairs"], duplicate["correct_pairs"]) == (
        3,
        1,
        1,
    )
    assert rows["household_phone"]["precision"] == 0.0
    assert rows["household_phone"]["recall"] is None
    assert rows["name_order"]["precision"] is None
    assert rows["name_order"]["recall"] == 0.0
    assert rows["clean"]["true_pairs"] == 2
    assert rows["excluded_not_in_staging"]["records"] == 1
    assert "invalid_email" not in rows
    assert next(iter(rows)) == "all"
