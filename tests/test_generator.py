"""The demo-data generator: reproducible, matching the input contract, and honest about its dirt.

Real generation on small data (300 persons) into temporary directories; no mocks.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from crm_assets.cli.main import main
from crm_assets.demo.generator import OUTPUT_FILES, generate
from crm_assets.demo.run import Run
from crm_assets.ingest.contracts import SOURCES

N = 300
SEED = 7
START, END = date(2025, 1, 1), date(2026, 6, 30)
PLACEHOLDER_PHONES = {"0000000000", "70000000000", "9999999999", "79999999999", "00000"}
PLACEHOLDER_EMAILS = {"test@test.ru", "noemail@mail.ru", "no@email.com", "net@net.ru", "a@a.ru"}


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as f:
        return next(csv.reader(f))


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.csv"))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def norm_email(email: str) -> str:
    """Lower case; for gmail the dots of the local part do not count."""
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if domain in ("gmail.com", "googlemail.com"):
        local = local.replace(".", "")
    return f"{local}@{domain}" if domain else local


def norm_phone(phone: str) -> str:
    """Digits only; a leading 8 of an 11-digit number is the trunk prefix of +7."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 11 and digits[0] == "8":
        digits = "7" + digits[1:]
    if len(digits) == 10 and digits[0] == "9":
        digits = "7" + digits
    return digits


def masculine(surname: str) -> str:
    """Иванова -> Иванов, Вишневская -> Вишневский, Толстая -> Толстой."""
    if surname.endswith("ская"):
        return surname[:-4] + "ский"
    if surname.endswith("ая"):
        return surname[:-2] + "ой"
    if surname.endswith(("ова", "ева", "ёва", "ина", "ына")):
        return surname[:-1]
    return surname


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gen_a")
    counts = generate(path, N, SEED, START, END)
    assert counts["customers"] > N
    return path


@pytest.fixture(scope="module")
def data(out: Path) -> dict[str, list[dict[str, str]]]:
    tables = {name: _read(out / f"{name}.csv") for name in OUTPUT_FILES}
    tables["truth"] = _read(out / "_truth" / "customers.csv")
    tables["dirt"] = _read(out / "_truth" / "dirt.csv")
    return tables


@pytest.fixture(scope="module")
def records(data: dict[str, list[dict[str, str]]]) -> list[dict[str, str]]:
    """Customer records joined to their truth, in file order."""
    truth = {t["customer_id"]: t for t in data["truth"]}
    return [{**c, **truth[c["customer_id"]]} for c in data["customers"]]


# -- reproducibility ---------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes(out: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate(again, N, SEED, START, END)
    first = {p.relative_to(out): _sha(p) for p in _all_files(out)}
    second = {p.relative_to(again): _sha(p) for p in _all_files(again)}
    assert len(first) == len(OUTPUT_FILES) + 2
    assert first == second


def test_other_seed_gives_other_data(out: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    generate(other, N, SEED + 1, START, END)
    assert _sha(other / "customers.csv") != _sha(out / "customers.csv")
    assert _sha(other / "orders.csv") != _sha(out / "orders.csv")


def test_files_do_not_depend_on_the_number_of_threads(tmp_path: Path) -> None:
    """The big files are written in generation order, not sorted: with several row groups per
    table (40k persons: ~320k orders, ~600k lines) one thread and four must agree byte for byte."""
    one, four = tmp_path / "one", tmp_path / "four"
    generate(one, 40_000, SEED, START, END, threads=1)
    generate(four, 40_000, SEED, START, END, threads=4)
    for path in _all_files(one):
        assert _sha(path) == _sha(four / path.relative_to(one)), path.name


def test_fast_paths_write_what_the_plain_way_writes(
    out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines rendered in SQL equal DuckDB's own CSV writing; rows generated in key order equal
    rows sorted by key."""
    monkeypatch.setattr(Run, "PRERENDER_LINES", not Run.PRERENDER_LINES)
    monkeypatch.setattr(Run, "SORT_BIG_TABLES", not Run.SORT_BIG_TABLES)
    plain = tmp_path / "plain"
    generate(plain, N, SEED, START, END)
    for path in _all_files(out):
        assert _sha(path) == _sha(plain / path.relative_to(out)), path.name


def test_returned_counts_are_the_data_rows(out: Path, tmp_path: Path) -> None:
    counts = generate(tmp_path / "c", N, SEED, START, END)
    for name in OUTPUT_FILES:
        assert counts[name] == len(_read(out / f"{name}.csv")), name
    assert counts["_truth/dirt"] == len(_read(out / "_truth" / "dirt.csv"))


def test_cli_generate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["generate", "--customers", "60", "--out", str(tmp_path), "--seed", "3"]
    assert main([*args, "--start", "2025-03-01", "--end", "2025-08-31"]) == 0
    assert "customers" in capsys.readouterr().out
    regs = [r["registered_at"] for r in _read(tmp_path / "customers.csv")]
    assert min(regs) >= "2025-03-01" and max(regs) <= "2025-08-31 23:59:59"


# -- the contract ------------------------------------------------------------------------------


def test_headers_are_the_contract_columns(out: Path) -> None:
    for name in OUTPUT_FILES:
        assert _header(out / f"{name}.csv") == SOURCES[name].column_names, name
    assert set(OUTPUT_FILES) == set(SOURCES)
    assert _header(out / "_truth" / "customers.csv") == ["customer_id", "person_id", "dirt"]
    assert _header(out / "_truth" / "dirt.csv") == ["table_name", "record_key", "dirt"]


def test_keys_are_unique_and_files_sorted_by_key(data: dict[str, list[dict[str, str]]]) -> None:
    for name in OUTPUT_FILES:
        key = SOURCES[name].key
        keys = [tuple(r[k] for k in key) for r in data[name]]
        if name == "order_items":
            keys = [(o, int(n)) for o, n in keys]
        assert len(set(keys)) == len(keys), name
        assert keys == sorted(keys), name


def test_stores_and_products(data: dict[str, list[dict[str, str]]]) -> None:
    stores = data["stores"]
    assert 10 <= len(stores) <= 25
    zones = {
        "Москва": "Europe/Moscow",
        "Санкт-Петербург": "Europe/Moscow",
        "Казань": "Europe/Moscow",
        "Екатеринбург": "Asia/Yekaterinburg",
        "Новосибирск": "Asia/Novosibirsk",
    }
    assert {s["city"] for s in stores} == set(zones)
    assert all(zones[s["city"]] == s["timezone"] for s in stores)
    assert all(re.fullmatch(r"S\d{3}", s["store_id"]) for s in stores)
    products = data["products"]
    assert len(products) >= 25
    assert {p["category"] for p in products} >= {"croissant", "coffee", "tea", "bread", "pastry"}
    croissants = [p["product_name"] for p in products if p["category"] == "croissant"]
    assert "Круассан классический" in croissants and len(croissants) >= 3
    assert all(re.fullmatch(r"P\d{3}", p["product_id"]) for p in products)


def test_customer_values_look_like_a_crm(data: dict[str, list[dict[str, str]]]) -> None:
    customers = data["customers"]
    store_ids = {s["store_id"] for s in data["stores"]}
    assert all(re.fullmatch(r"C\d{7}", c["customer_id"]) for c in customers)
    assert all(c["home_store_id"] in store_ids for c in customers)
    assert any("ё" in c["first_name"] + c["last_name"] for c in customers)
    for c in customers:
        for col in ("registered_at", "updated_at"):
            ts = datetime.strptime(c[col], "%Y-%m-%d %H:%M:%S")
            assert START <= ts.date() <= END
        assert c["updated_at"] >= c["registered_at"]
    spellings = {c["gender"] for c in customers}
    assert {"М", "Ж"} <= spellings and len(spellings) > 4
    flags = {c["email_opt_in"] for c in customers}
    assert {"true", "false"} <= flags and len(flags) > 2
    formats = {re.sub(r"\d", "9", c["birth_date"]) for c in customers}
    assert {"9999-99-99", "99.99.9999", "99/99/99"} <= formats


# -- the truth of customers ---------------------------------------------------------------------


def test_truth_accounts_for_every_record_once(data: dict[str, list[dict[str, str]]]) -> None:
    truth_ids = [t["customer_id"] for t in data["truth"]]
    assert len(truth_ids) == len(set(truth_ids))
    assert set(truth_ids) == {c["customer_id"] for c in data["customers"]}
    assert len({t["person_id"] for t in data["truth"]}) == N
    known = {"clean", "duplicate", "email_case", "email_dots", "email_typo", "phone_format",
             "name_order", "name_spelling", "yo_e", "missing_email", "missing_phone",
             "invalid_email",
             "impossible_birth_date", "household_phone", "company_email", "placeholder_contact",
             "namesake", "namesake_household"}  # fmt: skip
    for t in data["truth"]:
        labels = t["dirt"].split(";")
        assert set(labels) <= known and len(set(labels)) == len(labels), t
        assert labels == ["clean"] or "clean" not in labels


def test_each_person_has_one_original_and_it_comes_first(
    records: list[dict[str, str]],
) -> None:
    by_person: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in records:
        by_person[r["person_id"]].append(r)
    multi = [rs for rs in by_person.values() if len(rs) > 1]
    assert 0.08 * N < len(multi) < 0.2 * N
    for rs in by_person.values():
        originals = [r for r in rs if "duplicate" not in r["dirt"].split(";")]
        assert len(originals) == 1
        first = min(rs, key=lambda r: r["customer_id"])
        assert first is originals[0]
        assert all(r["registered_at"] >= first["registered_at"] for r in rs)


def test_duplicates_share_a_normalised_contact_with_their_original(
    records: list[dict[str, str]],
) -> None:
    original = {r["person_id"]: r for r in records if "duplicate" not in r["dirt"]}
    duplicates = [r for r in records if "duplicate" in r["dirt"]]
    kinds: set[str] = set()
    for d in duplicates:
        o = original[d["person_id"]]
        kinds.update(d["dirt"].split(";"))
        same_email = bool(d["email"]) and norm_email(d["email"]) == norm_email(o["email"])
        labels = d["dirt"].split(";")
        if "email_typo" in labels:  # a trailing dot, or "at" / "(at)" typed for "@"
            assert d["email"] not in (o["email"], "") and "@" not in d["email"][-1:]
            assert norm_email(o["email"]) in {
                norm_email(d["email"].rstrip(".")),
                norm_email(d["email"].replace("(at)", "@")),
                norm_email(d["email"][::-1].replace("ta", "@", 1)[::-1]),
            }
            assert same_email is False and d["phone"]
        same_phone = bool(d["phone"]) and norm_phone(d["phone"]) == norm_phone(o["phone"])
        assert same_email or same_phone, (d, o)
        if "missing_email" in labels:
            assert not d["email"] and o["email"]
        if "missing_phone" in labels:
            assert not d["phone"] and o["phone"]
        if "email_case" in labels:
            assert d["email"] != o["email"] and d["email"] != d["email"].lower()
            assert norm_email(d["email"]) == norm_email(o["email"])
        if "phone_format" in labels:
            assert d["phone"] != o["phone"]
        if "name_order" in labels and not {"name_spelling", "yo_e"} & set(labels):
            assert (d["first_name"], d["last_name"]) == (o["last_name"], o["first_name"])
        if "yo_e" in labels:
            assert "ё" not in d["first_name"] + d["last_name"]
            assert "ё" in o["first_name"] + o["last_name"]
        if "email_dots" in labels:
            assert d["email"].lower().endswith("@gmail.com") and d["email"] != o["email"]
    expected = {"email_case", "phone_format", "name_order", "name_spelling", "missing_email",
                "missing_phone", "email_typo"}  # fmt: skip
    assert expected <= kinds


def test_clean_variants_are_not_labelled(records: list[dict[str, str]]) -> None:
    aliases = {"СПб", "Питер", "St. Petersburg", "мск", "Moscow", "Екб", "Kazan"}
    assert any(r["city"] in aliases and r["dirt"] == "clean" for r in records)
    for r in records:
        if "impossible_birth_date" in r["dirt"]:
            assert r["birth_date"] in {"1899-01-01", "2031-05-05", "31.02.1990", "30.02.1985",
                                       "1990-13-01", "2099-12-31"}  # fmt: skip
        if "invalid_email" in r["dirt"] or "email_typo" in r["dirt"]:
            assert not re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", r["email"])
        elif r["email"] and r["email"] not in PLACEHOLDER_EMAILS:
            assert re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-zA-Z]{2,}", r["email"]), r


def test_every_trap_is_present(records: list[dict[str, str]]) -> None:
    def with_label(label: str) -> list[dict[str, str]]:
        return [r for r in records if label in r["dirt"].split(";")]

    # household: persons sharing one phone, same surname, different first names and emails
    households: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in with_label("household_phone"):
        households[norm_phone(r["phone"])].append(r)
    assert households
    for members in households.values():
        assert len({m["person_id"] for m in members}) >= 2
        assert len({m["first_name"] for m in members}) == len(members)
        assert len({norm_email(m["email"]) for m in members}) == len(members)
        assert len({masculine(m["last_name"]) for m in members}) == 1
    # company e-mail: different persons and phones behind one mailbox
    companies: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in with_label("company_email"):
        companies[norm_email(r["email"])].append(r)
    assert companies
    for members in companies.values():
        assert len({m["person_id"] for m in members}) >= 3
        assert len({norm_phone(m["phone"]) for m in members}) == len(members)
    # placeholders: many persons with a dummy phone or e-mail
    placeholders = with_label("placeholder_contact")
    assert len({r["person_id"] for r in placeholders}) >= 3
    for r in placeholders:
        assert norm_phone(r["phone"]) in PLACEHOLDER_PHONES or r["email"] in PLACEHOLDER_EMAILS
    # namesakes: same first + last name and city, different persons, nothing else in common;
    # or living together (father and son): then one phone
    namesakes: dict[tuple[str, str, bool], list[dict[str, str]]] = defaultdict(list)
    for r in with_label("namesake"):
        if "duplicate" not in r["dirt"]:
            together = "namesake_household" in r["dirt"]
            namesakes[(r["first_name"], r["last_name"], together)].append(r)
    assert any(len(m) >= 2 for (_, _, together), m in namesakes.items() if not together)
    assert any(len(m) >= 2 for (_, _, together), m in namesakes.items() if together)
    for (_, _, together), members in namesakes.items():
        if len(members) >= 2:
            assert len({m["person_id"] for m in members}) == len(members)
            phones = [norm_phone(m["phone"]) for m in members if m["phone"]]
            emails = [norm_email(m["email"]) for m in members if m["email"]]
            assert len(set(emails)) == len(emails)
            assert len(set(phones)) == (min(1, len(phones)) if together else len(phones))
    # and otherwise a contact belongs to one person (a broken e-mail like "a@b" may repeat)
    shared = {"household_phone", "company_email", "placeholder_contact", "namesake_household"}
    owner: dict[str, set[str]] = defaultdict(set)
    for r in records:
        labels = set(r["dirt"].split(";"))
        if not labels & shared:
            if r["phone"]:
                owner["p" + norm_phone(r["phone"])].add(r["person_id"])
            if r["email"] and "invalid_email" not in labels:
                owner["e" + norm_email(r["email"])].add(r["person_id"])
    assert all(len(persons) == 1 for persons in owner.values())


# -- facts and their dirt -----------------------------------------------------------------------


def test_orders_reference_existing_records(data: dict[str, list[dict[str, str]]]) -> None:
    ids = {c["customer_id"] for c in data["customers"]}
    missing = {d["record_key"] for d in data["dirt"] if d["dirt"] == "missing_customer"}
    assert missing
    for o in data["orders"]:
        assert (o["customer_id"] in ids) != (o["order_id"] in missing), o
    stores = {s["store_id"] for s in data["stores"]}
    assert all(o["store_id"] in stores for o in data["orders"])
    assert all(o["channel"] in ("in_store", "app", "web", "delivery") for o in data["orders"])
    order_ids = {o["order_id"] for o in data["orders"]}
    assert {i["order_id"] for i in data["order_items"]} == order_ids


def test_orders_volume_time_and_baskets(data: dict[str, list[dict[str, str]]]) -> None:
    orders, items = data["orders"], data["order_items"]
    assert 6 * N <= len(orders) <= 11 * N
    times = [datetime.strptime(o["ordered_at"], "%Y-%m-%d %H:%M:%S") for o in orders]
    assert all(START <= t.date() <= END for t in times)
    assert any(t.hour == 0 for t in times)  # night delivery
    assert all(t.hour == 0 and t.minute >= 10 or 7 <= t.hour < 23 for t in times)
    lines = defaultdict(list)
    for i in items:
        lines[i["order_id"]].append(i)
    assert all(1 <= len(v) <= 4 for v in lines.values())
    croissant = {p["product_id"] for p in data["products"] if p["category"] == "croissant"}
    share = sum(any(i["product_id"] in croissant for i in v) for v in lines.values()) / len(lines)
    assert 0.25 <= share <= 0.45
    statuses = {o["status"] for o in orders}
    assert {"completed", "cancelled", "refunded"} <= statuses


def test_totals_are_the_sum_of_their_lines(data: dict[str, list[dict[str, str]]]) -> None:
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for i in data["order_items"]:
        sums[i["order_id"]] += Decimal(i["unit_price"]) * int(i["quantity"])
    dirt = {d["record_key"]: d["dirt"] for d in data["dirt"] if d["table_name"] == "orders"}
    for o in data["orders"]:
        text = o["total_amount"]
        if dirt.get(o["order_id"]) == "comma_decimal":
            assert "," in text
            text = text.replace(",", ".")
        if dirt.get(o["order_id"]) == "negative_amount":
            assert text.startswith("-")
            text = text[1:]
        assert re.fullmatch(r"\d+\.\d\d", text), o
        assert Decimal(text) == sums[o["order_id"]], o


def test_every_dirty_record_exists_and_is_dirty(data: dict[str, list[dict[str, str]]]) -> None:
    orders = {o["order_id"]: o for o in data["orders"]}
    items = {f"{i['order_id']}:{i['line_number']}": i for i in data["order_items"]}
    seen = set()
    for d in data["dirt"]:
        seen.add(d["dirt"])
        if d["table_name"] == "orders":
            o = orders[d["record_key"]]
            if d["dirt"] == "unknown_status":
                assert o["status"] not in ("completed", "cancelled", "refunded")
        else:
            assert d["table_name"] == "order_items"
            i = items[d["record_key"]]
            assert (d["dirt"], i["product_id"] == "P999", i["quantity"] == "0") in {
                ("unknown_product", True, False),
                ("zero_quantity", False, True),
            }
    assert seen == {"negative_amount", "comma_decimal", "missing_customer", "unknown_status",
                    "unknown_product", "zero_quantity"}  # fmt: skip
    # and nothing dirty goes unlabelled
    labelled = {d["record_key"] for d in data["dirt"]}
    for key, i in items.items():
        if i["product_id"] == "P999" or i["quantity"] == "0":
            assert key in labelled
    for key, o in orders.items():
        if o["status"] not in ("completed", "cancelled", "refunded"):
            assert key in labelled
    rate = sum(d["table_name"] == "orders" for d in data["dirt"]) / len(orders)
    assert 0.01 < rate < 0.06


def test_interactions_and_sessions(data: dict[str, list[dict[str, str]]]) -> None:
    ids = {c["customer_id"] for c in data["customers"]}
    inter = data["interactions"]
    assert N <= len(inter) <= 9 * N
    assert {i["channel"] for i in inter} == {"email", "sms", "push"}
    assert {i["interaction_type"] for i in inter} == {"sent", "opened", "clicked", "unsubscribed"}
    iso = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[357]:00"
    for i in inter:
        assert i["customer_id"] in ids
        assert re.fullmatch(r"CMP-\d{4}-\d\d-(email|sms|push)-\d\d", i["campaign_id"])
        assert re.fullmatch(iso, i["occurred_at"])
        assert i["campaign_id"][4:11] == i["occurred_at"][:7] or i["interaction_type"] != "sent"
    sessions = data["sessions"]
    assert 0.5 * N <= len(sessions) <= 4 * N
    assert any(s["customer_id"] == "" for s in sessions)
    for s in sessions:
        assert s["customer_id"] == "" or s["customer_id"] in ids
        assert re.fullmatch(iso, s["started_at"])
        assert s["device"] in ("web", "ios", "android")
        assert s["utm_source"] in ("google", "yandex", "email", "direct", "vk", "")
        assert int(s["duration_seconds"]) > 0 and int(s["page_views"]) > 0


def test_demo_size_fits(tmp_path: Path) -> None:
    """The shipped demo (3000 persons, seed 42) stays under 5 MB, truth included."""
    generate(tmp_path, 3000, 42)
    size = sum(p.stat().st_size for p in _all_files(tmp_path))
    assert size < 5_000_000
