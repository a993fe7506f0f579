"""Demo data for the CRM warehouse: a bakery-café chain's CRM export, with the dirt of a real one.

Everything is generated *inside DuckDB*: SQL over ``range()``, where every random choice is a
slice of a hash of the row key (a person, a record, an order...) salted with the seed and the
purpose. DuckDB's ``random()`` is not reproducible once several threads run, and a Python loop over
a million people is far too slow; a keyed hash is both reproducible and parallel. Files are written
with ``COPY`` in key order, so the same seed and arguments give byte-identical files.

Next to the source files the generator writes the ground truth a matcher and the cleaning rules can
be scored against:

- ``_truth/customers.csv`` (``customer_id, person_id, dirt``): which person each customer record
  belongs to and what was done to it (``clean`` or ``;``-separated labels such as
  ``duplicate;email_case;phone_format``, ``invalid_email``, ``household_phone``...). The first
  record of a person (the earliest registered, so also the lowest ``customer_id``) is the original.
- ``_truth/dirt.csv`` (``table_name, record_key, dirt``): every deliberately dirty record of the
  other tables; ``record_key`` is the table's key, ``order_id:line_number`` for ``order_items``.

``customers`` in the arguments counts *persons*; the customer records are ~20% more (duplicates).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

from crm_assets.contracts import SOURCES

# --------------------------------------------------------------------------------------------------
# Reference data (fixed lists; rows of people are never produced in Python)
# --------------------------------------------------------------------------------------------------

#: City code -> (canonical Russian name, IANA zone, UTC offset, weight in % of persons, aliases).
CITIES: tuple[tuple[str, str, str, int, tuple[str, ...]], ...] = (
    ("Москва", "Europe/Moscow", "+03:00", 40, ("мск", "Moscow", "г. Москва", "москва", "МОСКВА")),
    (
        "Санкт-Петербург",
        "Europe/Moscow",
        "+03:00",
        25,
        (
            "СПб",
            "Питер",
            "St. Petersburg",
            "Saint Petersburg",
            "С.-Петербург",
            "г. Санкт-Петербург",
        ),
    ),
    ("Казань", "Europe/Moscow", "+03:00", 12, ("Kazan", "г. Казань", "казань")),
    ("Екатеринбург", "Asia/Yekaterinburg", "+05:00", 12, ("Екб", "Yekaterinburg", "Ekaterinburg")),
    ("Новосибирск", "Asia/Novosibirsk", "+07:00", 11, ("Нск", "Novosibirsk", "г. Новосибирск")),
)

#: Store templates in opening order (city code, name); the first ten cover every city.
STORE_TEMPLATES: tuple[tuple[int, str], ...] = (
    (0, "Круассанная на Тверской"),
    (1, "Круассанная на Невском"),
    (0, "Круассанная на Арбате"),
    (2, "Круассанная на Баумана"),
    (3, "Круассанная на Вайнера"),
    (4, "Круассанная на Красном проспекте"),
    (0, "Круассанная на Покровке"),
    (1, "Круассанная на Петроградской"),
    (0, "Круассанная в Сокольниках"),
    (1, "Круассанная на Васильевском"),
    (0, "Круассанная на Патриарших"),
    (2, "Круассанная на Кремлёвской"),
    (3, "Круассанная на Плотинке"),
    (0, "Круассанная в Китай-городе"),
    (4, "Круассанная в Академгородке"),
    (1, "Круассанная на Московском проспекте"),
    (0, "Круассанная на Таганке"),
    (0, "Круассанная в Хамовниках"),
    (3, "Круассанная на Малышева"),
    (1, "Круассанная на Рубинштейна"),
    (2, "Круассанная на Петербургской"),
    (0, "Круассанная на Маросейке"),
    (4, "Круассанная на Гоголя"),
    (1, "Круассанная на Лиговском"),
    (0, "Круассанная в Замоскворечье"),
)

#: Catalogue: (name, category, price in kopecks, is_active, weight in the basket draw).
PRODUCTS: tuple[tuple[str, str, int, bool, int], ...] = (
    ("Круассан классический", "croissant", 15000, True, 70),
    ("Круассан миндальный", "croissant", 22000, True, 40),
    ("Круассан шоколадный", "croissant", 19000, True, 35),
    ("Круассан с ветчиной и сыром", "croissant", 26000, True, 30),
    ("Круассан с лососем", "croissant", 39000, True, 12),
    ("Круассан фисташковый", "croissant", 24000, False, 8),
    ("Эспрессо", "coffee", 14000, True, 35),
    ("Американо", "coffee", 17000, True, 65),
    ("Капучино", "coffee", 22000, True, 90),
    ("Латте", "coffee", 24000, True, 70),
    ("Флэт уайт", "coffee", 26000, True, 40),
    ("Раф ванильный", "coffee", 28000, True, 30),
    ("Чай чёрный", "tea", 15000, True, 30),
    ("Чай зелёный", "tea", 15000, True, 25),
    ("Чай облепиховый", "tea", 22000, False, 20),
    ("Багет французский", "bread", 12000, True, 30),
    ("Хлеб ржаной на закваске", "bread", 18000, True, 25),
    ("Чиабатта", "bread", 14000, True, 20),
    ("Булочка с корицей", "pastry", 16000, True, 40),
    ("Пан-о-шоколя", "pastry", 19000, True, 30),
    ("Улитка с изюмом", "pastry", 17000, True, 25),
    ("Слойка с вишней", "pastry", 15000, True, 25),
    ("Сэндвич с курицей", "sandwich", 33000, True, 40),
    ("Сэндвич с тунцом", "sandwich", 35000, True, 25),
    ("Бейгл с лососем", "sandwich", 42000, True, 30),
    ("Эклер ванильный", "dessert", 18000, True, 30),
    ("Чизкейк Нью-Йорк", "dessert", 29000, True, 25),
    ("Медовик", "dessert", 26000, True, 20),
    ("Макарон, набор из 3 шт.", "dessert", 24000, True, 12),
    ("Тарт лимонный", "dessert", 23000, True, 13),
)

MALE_FIRST_NAMES: tuple[str, ...] = (
    "Александр", "Алексей", "Андрей", "Антон", "Артём", "Арсений", "Борис", "Вадим", "Валентин",
    "Василий", "Виктор", "Виталий", "Владимир", "Владислав", "Геннадий", "Георгий", "Глеб",
    "Григорий", "Даниил", "Денис", "Дмитрий", "Евгений", "Егор", "Иван", "Игорь", "Илья", "Кирилл",
    "Константин", "Лев", "Леонид", "Максим", "Марк", "Матвей", "Михаил", "Никита", "Николай",
    "Олег", "Павел", "Пётр", "Роман", "Руслан", "Семён", "Сергей", "Станислав", "Степан",
    "Тимофей", "Тимур", "Фёдор", "Юрий", "Ярослав",
)  # fmt: skip
FEMALE_FIRST_NAMES: tuple[str, ...] = (
    "Александра", "Алёна", "Алина", "Алиса", "Анастасия", "Анна", "Антонина", "Валентина",
    "Валерия", "Варвара", "Вера", "Вероника", "Виктория", "Галина", "Дарья", "Диана", "Евгения",
    "Екатерина", "Елена", "Елизавета", "Жанна", "Злата", "Зоя", "Инна", "Ирина", "Карина", "Кира",
    "Ксения", "Лариса", "Лидия", "Любовь", "Людмила", "Маргарита", "Марина", "Мария", "Милана",
    "Надежда", "Наталья", "Нина", "Оксана", "Ольга", "Полина", "Светлана", "Софья", "Таисия",
    "Тамара", "Татьяна", "Ульяна", "Юлия", "Яна",
)  # fmt: skip
#: Surnames in the masculine form; the feminine form is derived (Королёв -> Королёва, ...).
SURNAMES: tuple[str, ...] = (
    "Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов",
    "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров",
    "Павлов", "Козлов", "Степанов", "Николаев", "Орлов", "Андреев", "Макаров", "Никитин",
    "Захаров", "Зайцев", "Соловьёв", "Борисов", "Яковлев", "Григорьев", "Романов", "Воробьёв",
    "Сергеев", "Кузьмин", "Фролов", "Королёв", "Гусев", "Киселёв", "Ильин", "Максимов",
    "Поляков", "Сорокин", "Виноградов", "Ковалёв", "Белов", "Медведев", "Журавлёв", "Пономарёв",
    "Вишневский", "Толстой", "Шевченко", "Громов", "Чернышёв", "Тарасов", "Воронин", "Аксёнов",
    "Орловский", "Лазарев", "Ерёмин", "Цветков",
)  # fmt: skip

EMAIL_DOMAINS: tuple[tuple[str, int], ...] = (
    ("yandex.ru", 27), ("mail.ru", 24), ("gmail.com", 20), ("bk.ru", 6), ("list.ru", 5),
    ("inbox.ru", 3), ("rambler.ru", 3), ("ya.ru", 2), ("techsoft.ru", 3), ("romashka-group.ru", 2),
    ("uralmash-holding.ru", 2), ("sibenergo.ru", 2), ("kazan-it.ru", 1),
)  # fmt: skip
#: Shared mailboxes of small companies: the ``company_email`` trap.
COMPANY_MAILBOXES = ("info", "office", "zakaz", "buh", "admin", "hello")
COMPANY_NAMES = (
    "pekarnya-zakaz", "stroymontazh", "ooo-vesna", "alfa-logistic", "techprom", "kofe-office",
    "uralstroy", "neva-trade", "volga-market", "sib-service", "agro-plus", "mebel-lux",
    "avto-dom", "print-centr", "kazan-opt", "evrookna", "gorizont", "standart-m", "zvezda-tour",
    "eko-dom", "bystro-dostavka", "dom-remont", "ural-consult", "baltika-trade", "krasota-studio",
    "fitness-lab", "it-sfera", "mir-detstva", "zdorovye-plus", "legal-pro",
)  # fmt: skip
PLACEHOLDER_EMAILS = ("test@test.ru", "noemail@mail.ru", "no@email.com", "net@net.ru", "a@a.ru")
PLACEHOLDER_PHONES = ("0000000000", "+7 000 000-00-00", "9999999999", "+7 (999) 999-99-99", "00000")
# mobile operator codes; 999 is left out: 9999999999 is a placeholder
MOBILE_CODES = (
    "903", "905", "906", "909", "910", "911", "912", "913", "914", "915", "916", "917", "918",
    "919", "920", "921", "922", "923", "925", "926", "927", "928", "929", "950", "951", "952",
    "953", "960", "961", "962", "963", "964", "965", "966", "967", "968", "977", "978", "980",
    "981", "982", "983", "985", "987", "988", "989", "991", "993", "995", "996",
)  # fmt: skip
LANDLINE_CODES = (("495", "499"), ("812",), ("843",), ("343",), ("383",))

CHANNELS = ("in_store", "app", "web", "delivery")
UNKNOWN_PRICE = 9900  # kopecks: the price a line of the unknown product P999 carries
STATUSES = ("completed", "cancelled", "refunded")
UNKNOWN_STATUSES = ("done", "оплачен", "в обработке", "pending", "?")
ORDER_DIRT = ("negative_amount", "comma_decimal", "missing_customer", "unknown_status")
ITEM_DIRT = ("unknown_product", "zero_quantity")
#: (campaign channel, days of month a campaign goes out, local hour, open rate, click rate | open).
CAMPAIGN_CHANNELS: tuple[tuple[str, tuple[int, ...], int, float, float], ...] = (
    ("email", (5, 19), 10, 0.26, 0.18),
    ("sms", (12,), 12, 0.0, 0.04),
    ("push", (8, 24), 18, 0.12, 0.25),
)
UTM_SOURCES = ("google", "yandex", "email", "direct", "vk", None)
#: Dirty labels of customer records (the order of labels inside one ``dirt`` value).
DUPLICATE_KINDS = (
    "email_case", "email_dots", "phone_format", "name_order", "name_spelling", "yo_e",
    "missing_email", "missing_phone",
)  # fmt: skip
TRAP_KINDS = ("household_phone", "company_email", "placeholder_contact", "namesake")

OUTPUT_FILES = (
    "stores",
    "products",
    "customers",
    "orders",
    "order_items",
    "interactions",
    "sessions",
)
MAX_SPAN_DAYS = 1456  # registration minutes are packed in 21 bits (see _Generator.build_activity)
TRUTH_DIR = "_truth"
TRUTH_FILES = (f"{TRUTH_DIR}/customers", f"{TRUTH_DIR}/dirt")

_TRANSLIT = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        "a b v g d e e zh z i y k l m n o p r s t u f kh ts ch sh shch _ y _ e yu ya".split(),
        strict=True,
    )
)


def _translit(name: str) -> str:
    return "".join(_TRANSLIT.get(ch, ch) for ch in name.lower()).replace("_", "")


def _feminine(surname: str) -> str:
    if surname.endswith("ский"):
        return surname[:-4] + "ская"
    if surname.endswith("ой"):
        return surname[:-2] + "ая"
    if surname.endswith(("ов", "ев", "ёв", "ин", "ын")):
        return surname + "а"
    return surname  # Шевченко


# --------------------------------------------------------------------------------------------------
# SQL helpers
# --------------------------------------------------------------------------------------------------


def _q(value: object) -> str:
    """A SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _lst(values: Sequence[object]) -> str:
    """A DuckDB list literal; index it 1-based."""
    return "[" + ", ".join(_q(v) for v in values) + "]"


def _weighted(weights: Sequence[int], size: int) -> list[int]:
    """A lookup list of ``size`` indexes where index i appears in proportion to weights[i]."""
    total = sum(weights)
    out: list[int] = []
    acc = 0
    for i, w in enumerate(weights):
        acc += w
        out.extend([i] * (round(acc * size / total) - len(out)))
    return out


class _Rnd:
    """Keyed pseudo-randomness in SQL.

    ``stream(key, purpose)`` is a 64-bit hash of a row key for one purpose; ``u``/``pick`` slice it
    into four independent 16-bit draws (``slot`` 0..3) and ``pick32`` into two 32-bit ones, so a row
    needs one hash per four decisions instead of one per decision.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def salt(self, purpose: str) -> int:
        digest = hashlib.blake2b(f"{self.seed}/{purpose}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little")

    def stream(self, key: str, purpose: str, hashed: bool = False) -> str:
        """64 random bits for ``key`` (an SQL expression; ``hashed``: already ``hash(key)``).

        DuckDB's ``hash(a, b, c)`` combines its arguments' hashes so weakly that draws for two
        purposes of one key are correlated (r ~ 0.9); hashing the key's hash XOR a
        per-(seed, purpose) salt gives independent streams.
        """
        base = key if hashed else f"hash(({key})::BIGINT)"
        return f"hash(xor({base}, {self.salt(purpose)}::UBIGINT))"

    @staticmethod
    def u(col: str, slot: int) -> str:
        """Uniform in [0, 1) with 16-bit resolution."""
        return f"((({col} >> {16 * slot}) & 65535)::DOUBLE * {1 / 65536!r})"

    @staticmethod
    def pick(col: str, slot: int, n: int | str) -> str:
        """Uniform integer in [0, n) for n <= 65536 (an int or an SQL expression >= 0)."""
        return f"(((({col} >> {16 * slot}) & 65535) * greatest({n}, 0)::UBIGINT) >> 16)::BIGINT"

    @staticmethod
    def pick32(col: str, half: int, n: int | str) -> str:
        """Uniform integer in [0, n) for n < 2**31."""
        return (
            f"(((({col} >> {32 * half}) & 4294967295) * greatest({n}, 0)::UBIGINT) >> 32)::BIGINT"
        )


def _lit_path(path: Path) -> str:
    return _q(str(path))


def _customer_id(rec_no: str) -> str:
    """``C`` + the record number in 7 digits (``right`` of a shifted number beats ``lpad``)."""
    return f"('C' || right((10000000 + {rec_no})::VARCHAR, 7))"


# --------------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------------


def _blocks(n: int, fraction: float, size: int, minimum: int = 1) -> int:
    """Persons for a trap: ~``fraction`` of n in whole groups of ``size``, at least ``minimum``."""
    return max(minimum, round(n * fraction / size)) * size


def _epoch_seconds(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def n_stores_for(customers: int) -> int:
    """Number of stores: 15 at the 3000-customer demo, +2 per tenfold, within 10..25."""
    return max(10, min(len(STORE_TEMPLATES), round(15 + 2 * math.log10(customers / 3000))))


def generate(
    out_dir: Path,
    customers: int,
    seed: int,
    start: date = date(2025, 1, 1),
    end: date = date(2026, 6, 30),
    *,
    threads: int | None = None,
) -> dict[str, int]:
    """Write the demo CRM export and its ground truth to ``out_dir``.

    Args:
        out_dir: Directory to write ``<table>.csv`` (one per ``contracts.SOURCES`` table) and
            ``_truth/customers.csv`` + ``_truth/dirt.csv`` into; created if missing, files
            overwritten.
        customers: Number of distinct *persons* (customer records are ~20% more: duplicates).
        seed: Any integer; the same seed and arguments give byte-identical files.
        start: First day of activity (registrations, orders, campaigns, sessions).
        end: Last day of activity, inclusive; at most four years after ``start``.
        threads: DuckDB worker threads (default: one per core). The files do not depend on it.

    Returns:
        Data rows written per file, keyed by file stem (``"customers"``, ...,
        ``"_truth/customers"``, ``"_truth/dirt"``).
    """
    if customers < 50:
        raise ValueError("customers must be at least 50 (every trap needs a few persons)")
    if customers > 5_000_000:
        raise ValueError("customers above 5,000,000 would run out of unique phone numbers")
    if end <= start:
        raise ValueError("end must be after start")
    if (end - start).days >= MAX_SPAN_DAYS:
        raise ValueError(f"the period may span at most {MAX_SPAN_DAYS} days")
    out_dir = Path(out_dir)
    (out_dir / TRUTH_DIR).mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        # the big files are written in the order their rows are generated (see _copy)
        con.execute("SET preserve_insertion_order = true")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        return _Generator(con, customers, seed, start, end).run(out_dir)
    finally:
        con.close()


class _Generator:
    """One generation run: builds intermediate tables in an in-memory DuckDB and COPYs them out.

    Keys are assigned without sorting the big tables (a sort of ~10M wide rows costs seconds on two
    cores): order and session numbers are a per-person running offset plus the row's index within
    the person, message numbers the row's place in a table filled by one order-preserving query
    from the person-ordered ``activity``. The rows therefore come out in key order already (see
    ``SORT_BIG_TABLES``).
    """

    def __init__(
        self, con: duckdb.DuckDBPyConnection, n: int, seed: int, start: date, end: date
    ) -> None:
        self.con = con
        self.n = n
        self.r = _Rnd(seed)
        self.start = start
        self.end = end
        self.span = (end - start).days + 1  # days, end inclusive
        self.t0 = _epoch_seconds(start)  # seconds of start 00:00 (naive local clock)
        self.t_end = self.t0 + self.span * 86400 - 1  # end 23:59:59
        self.n_stores = n_stores_for(n)
        self.stores = STORE_TEMPLATES[: self.n_stores]
        self.store_ids = _lst([f"S{i + 1:03d}" for i in range(self.n_stores)])
        # persons [0, h) household, [h, c) company e-mail, [c, p) placeholder, [p, s) namesakes;
        # record ids are shuffled (by registration time), so these blocks are invisible in the data
        self.h_end = _blocks(n, 0.015, 5)
        self.c_end = self.h_end + _blocks(n, 0.012, 7)
        self.p_end = self.c_end + _blocks(n, 0.012, 1, minimum=4)
        self.s_end = self.p_end + _blocks(n, 0.01, 5)
        # unique numbers by affine permutations: e-mail suffix mod 10^d, phone subscriber mod 10^7
        self.email_mod = 10 ** max(3, len(str(n)))
        self.email_add = self.r.salt("email_number") % self.email_mod
        self.phone_add = self.r.salt("phone_number") % 10**7

    # -- small tables --------------------------------------------------------------------------

    def write_stores(self, path: Path) -> int:
        rows = []
        for i, (city, name) in enumerate(self.stores):
            opened = self.start - timedelta(days=2200 - 85 * i)
            rows.append(
                f"({_q(f'S{i + 1:03d}')}, {_q(name)}, {_q(CITIES[city][0])}, "
                f"{_q(CITIES[city][1])}, DATE {_q(opened.isoformat())})"
            )
        return self._copy_values("stores", rows, "store_id", path)

    def write_products(self, path: Path) -> int:
        rows = [
            f"({_q(f'P{i + 1:03d}')}, {_q(name)}, {_q(cat)}, {_q(f'{price / 100:.2f}')}, "
            f"{_q('true' if active else 'false')})"
            for i, (name, cat, price, active, _) in enumerate(PRODUCTS)
        ]
        return self._copy_values("products", rows, "product_id", path)

    # -- persons -------------------------------------------------------------------------------

    def build_persons(self) -> None:
        """One row per true person: who they are, their contacts, how they behave."""
        r = self.r
        nf, ns = len(MALE_FIRST_NAMES), len(SURNAMES)
        assert nf == len(FEMALE_FIRST_NAMES)
        city_pick = _lst(_weighted([c[3] for c in CITIES], 100))
        per_city: list[list[int]] = [[] for _ in CITIES]
        for i, (city, _) in enumerate(self.stores):
            per_city[city].append(i)
        city_stores = "[" + ", ".join(_lst(x) for x in per_city) + "]"
        city_nstores = _lst([len(x) for x in per_city])
        h, c, p, s, span = self.h_end, self.c_end, self.p_end, self.s_end, self.span
        u, pick, pick32 = r.u, r.pick, r.pick32

        def grp_or_person(traps: str, grp_expr: str, person_expr: str) -> str:
            return f"CASE WHEN trap IN {traps} THEN {grp_expr} ELSE {person_expr} END"

        # range() is a single-threaded source: materialise it so the heavy query scans in parallel
        self.con.execute(f"CREATE TABLE person_ids AS SELECT range AS i FROM range({self.n})")
        self.con.execute(f"""
        CREATE TABLE persons AS
        WITH base AS (
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
        ), hashed AS (
            SELECT *,
                {r.stream("pid", "p1")} AS hp1, {r.stream("pid", "p2")} AS hp2,
                {r.stream("pid", "p3")} AS hp3, {r.stream("pid", "p4")} AS hp4,
                {r.stream("pid", "p5")} AS hp5, {r.stream("pid", "p6")} AS hp6,
                {r.stream("pid", "p7")} AS hp7, {r.stream("pid", "p8")} AS hp8,
                {r.stream("pid", "p9")} AS hp9,
                {r.stream("trap * 100000000 + grp", "g1")} AS hg1,
                {r.stream("trap * 100000000 + grp", "g2")} AS hg2
            FROM grouped
        ), attrs AS (
            SELECT pid, trap, grp, member,
                {grp_or_person("(4)", u("hg1", 0), u("hp1", 0))} < 0.56 AS female,
                {city_pick}[
                    {grp_or_person("(1, 2, 4)", pick("hg1", 1, 100), pick("hp1", 1, 100))} + 1
                ] AS city,
                CASE WHEN trap = 1 THEN ({pick("hg1", 2, nf)} + member * 17) % {nf}
                     WHEN trap = 4 THEN {pick("hg1", 2, nf)}
                     ELSE {pick("hp1", 2, nf)} END AS fn_idx,
                floor({ns} * pow({grp_or_person("(1, 4)", u("hg1", 3), u("hp1", 3))}, 1.2))::BIGINT
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
                {u("hp4", 1)} AS u_invalid,
                (DATE '{self.start.isoformat()}'
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
                {grp_or_person("(1)", pick("hg2", 3, 65536), pick("hp7", 3, 65536))} AS store_draw,
                {u("hp8", 0)} < 0.55 AS email_opt0,
                {u("hp8", 1)} < 0.40 AS sms_opt0,
                {u("hp8", 2)} < 0.75 AS push_opt0,
                {u("hp8", 3)} < 0.45 AS ios,
                {pick("hp9", 0, 5)} AS invalid_kind0,
                {u("hg2", 0)} < 0.6 AS hh_landline,
                {pick("hg2", 1, 2)} AS landline_pick,
                {pick("hg2", 2, len(MOBILE_CODES))} AS hh_mobile_code,
                {pick("hg2", 3, len(COMPANY_MAILBOXES))} AS company_box
            FROM hashed
        )
        SELECT *,
            {city_stores}[city + 1][store_draw % {city_nstores}[city + 1] + 1] AS home_store,
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
            push_opt0 AND u_app < 0.42 AS push_opt
        FROM attrs
        """)

    def build_records(self) -> None:
        """Customer records: the original of each person plus its duplicates, rendered as text."""
        r = self.r
        u, pick, pick32 = r.u, r.pick, r.pick32
        nf, ns = len(MALE_FIRST_NAMES), len(SURNAMES)
        all_first = MALE_FIRST_NAMES + FEMALE_FIRST_NAMES
        all_last = SURNAMES + tuple(_feminine(x) for x in SURNAMES)
        first_names, last_names = _lst(all_first), _lst(all_last)
        first_lat = _lst([_translit(x) for x in all_first])
        last_lat = _lst([_translit(x) for x in all_last])
        domains = _lst([d for d, _ in EMAIL_DOMAINS])
        dom_pick = _lst(_weighted([w for _, w in EMAIL_DOMAINS], 100))
        gmail_idx = [d for d, _ in EMAIL_DOMAINS].index("gmail.com")
        mobile_codes = _lst(MOBILE_CODES)
        landline = "[" + ", ".join(_lst(x) for x in LANDLINE_CODES) + "]"
        fmt_pick = _lst(_weighted([7, 3, 2, 2, 1, 3, 1, 1], 20))  # format of the original phone
        city_names = _lst([x[0] for x in CITIES])
        city_aliases = "[" + ", ".join(_lst(x[4]) for x in CITIES) + "]"
        city_nalias = _lst([len(x[4]) for x in CITIES])
        # spelling of the gender by a draw in [0, 20): 18 spellings by weight, 2 empty
        spelling = _weighted([6, 3, 3, 2, 2, 1], 18)
        gender_words = _lst(
            [["М", "m", "male", "муж", "M", "м"][i] for i in spelling]
            + [None, None]
            + [["Ж", "f", "female", "жен", "F", "ж"][i] for i in spelling]
            + [None, None]
        )
        t0, t_end, n = self.t0, self.t_end, self.n
        em, eadd, padd = self.email_mod, self.email_add, self.phone_add
        ncomp = len(COMPANY_NAMES)
        bad_births = ["1899-01-01", "2031-05-05", "31.02.1990", "30.02.1985", "1990-13-01",
                      "2099-12-31"]  # fmt: skip

        def fmt_phone(fmt: str) -> str:
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

        def typo(s: str) -> str:
            """Drop or double one inner letter: the name always changes."""
            pos = f"(2 + {pick('hr6', 2, f'length({s}) - 2')})"
            drop = f"left({s}, {pos} - 1) || substr({s}, {pos} + 1)"
            double = f"left({s}, {pos}) || substr({s}, {pos})"
            return f"CASE WHEN {u('hr6', 1)} < 0.6 THEN {drop} ELSE {double} END"

        no_variation = "NOT (k_me OR k_mp OR k_no OR k_ns OR k_yo OR k_ec0 OR k_ed OR k_pf0)"
        self.con.execute(f"""
        CREATE TABLE persons_r AS
        WITH p AS (
            SELECT *,
                {first_names}[fn_idx + 1 + female::INT * {nf}] AS fn0,
                {last_names}[ln_idx + 1 + female::INT * {ns}] AS ln0,
                {first_lat}[fn_idx + 1 + female::INT * {nf}] AS fn_lat,
                {last_lat}[ln_idx + 1 + female::INT * {ns}] AS ln_lat,
                {dom_pick}[email_dom_pick + 1] AS dom_idx,
                ((pid * 7919 + {eadd}) % {em})::VARCHAR AS email_num,
                -- a phone: a 3-digit code and a 7-digit subscriber number, unique per person
                -- (a household's number is unique per household)
                CASE WHEN trap = 1 AND hh_landline
                     THEN {landline}[city + 1][landline_pick % len({landline}[city + 1]) + 1]
                     WHEN trap = 1 THEN {mobile_codes}[hh_mobile_code + 1]
                     ELSE {mobile_codes}[mobile_code + 1] END AS ph_code,
                (CASE WHEN trap = 1 THEN {n} + grp ELSE pid END * 3021377 + {padd}) % 10000000
                    AS ph_num,
                {fmt_pick}[phone_fmt_pick + 1] AS phone_fmt0
            FROM persons
        ), p2 AS (
            SELECT *,
                CASE email_style
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
                     THEN 1 + invalid_kind0 ELSE 0 END AS invalid_kind
            FROM p
        ), p3 AS (
            SELECT *,
                CASE WHEN trap = 2
                     THEN {_lst(COMPANY_MAILBOXES)}[company_box + 1] || '@'
                          || {_lst(COMPANY_NAMES)}[grp % {ncomp} + 1]
                          || CASE WHEN grp >= {ncomp} THEN (grp // {ncomp} + 1)::VARCHAR ELSE '' END
                          || '.ru'
                     WHEN trap = 3 AND placeholder_email
                     THEN {_lst(PLACEHOLDER_EMAILS)}[placeholder_kind + 1]
                     WHEN invalid_kind = 1 THEN email_local || '@'
                     WHEN invalid_kind = 2 THEN email_local || '.' || domain
                     WHEN invalid_kind = 3 THEN fn_lat[1] || '@' || domain[1]
                     WHEN invalid_kind = 4 THEN email_local || '@@' || domain
                     WHEN invalid_kind = 5 THEN email_local || '@' || split_part(domain, '.', 1)
                     ELSE email_local || '@' || domain END AS email0
            FROM p2
        )
        SELECT pid, trap, n_extra, fn0, ln0, has_email, has_phone, has_yo, is_gmail, email0,
            ph_code, ph_num, phone_fmt0, placeholder_email, placeholder_kind, reg_day, reg_sec,
            birth_date, female, city, home_store, email_opt, sms_opt, push_opt, invalid_kind
        FROM p3
        """)
        # duplicates: a scan per record rank (a person has at most 4 records) is much cheaper
        # than unnest, which copies every column row by row
        self.con.execute(f"""
        CREATE TABLE records AS
        WITH rec AS (
            SELECT *, 0 AS rn FROM persons_r
            UNION ALL SELECT *, 1 AS rn FROM persons_r WHERE n_extra >= 1
            UNION ALL SELECT *, 2 AS rn FROM persons_r WHERE n_extra >= 2
            UNION ALL SELECT *, 3 AS rn FROM persons_r WHERE n_extra >= 3
        ), hashed AS (
            SELECT *,
                {r.stream("pid * 4 + rn", "r1")} AS hr1, {r.stream("pid * 4 + rn", "r2")} AS hr2,
                {r.stream("pid * 4 + rn", "r3")} AS hr3, {r.stream("pid * 4 + rn", "r4")} AS hr4,
                {r.stream("pid * 4 + rn", "r5")} AS hr5, {r.stream("pid * 4 + rn", "r6")} AS hr6
            FROM rec
        ), kinds AS (
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
                k_ec0 OR (rn > 0 AND NOT has_phone AND {no_variation}) AS k_ec
            FROM kinds2
        ), parts AS (
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
        ), rendered AS (
            SELECT *,
                CASE WHEN k_yo THEN replace(fn0, 'ё', 'е') ELSE fn0 END AS fn1,
                CASE WHEN k_yo THEN replace(ln0, 'ё', 'е') ELSE ln0 END AS ln1,
                CASE WHEN NOT has_email OR k_me THEN NULL ELSE email0 END AS email1,
                CASE WHEN NOT has_phone OR k_mp THEN NULL
                     WHEN trap = 3 AND NOT placeholder_email
                        THEN {_lst(PLACEHOLDER_PHONES)}[placeholder_kind + 1]
                     ELSE {fmt_phone("ph_fmt")} END AS phone,
                CASE WHEN {u("hr3", 1)} < 0.006
                     THEN {_lst(bad_births)}[{pick("hr3", 2, len(bad_births))} + 1]
                     END AS bad_birth,
                CASE WHEN rn = 0 THEN {t0} + reg_day * 86400 + reg_sec
                     ELSE {t0} + reg_day * 86400 + reg_sec + 60
                          + {pick32("hr5", 0, f"{t_end} - ({t0} + reg_day * 86400 + reg_sec) - 60")}
                     END AS reg_ts
            FROM parts
        ), final AS (
            SELECT *,
                CASE WHEN k_ns AND u_typo < 0.3 THEN {typo("fn1")} ELSE fn1 END AS fn2,
                CASE WHEN k_ns AND u_typo >= 0.3 THEN {typo("ln1")} ELSE ln1 END AS ln2,
                CASE WHEN k_ed THEN
                        CASE WHEN contains(split_part(email1, '@', 1), '.')
                             THEN replace(split_part(email1, '@', 1), '.', '')
                             ELSE email1[1:3] || '.' || split_part(email1, '@', 1)[4:] END
                        || '@' || split_part(email1, '@', 2)
                     ELSE email1 END AS email2
            FROM rendered
        )
        SELECT pid, rn, reg_ts,
            reg_ts + {pick32("hr5", 1, f"{t_end} - reg_ts + 1")} AS upd_ts,
            CASE WHEN k_no THEN ln2 ELSE fn2 END AS first_name,
            CASE WHEN k_no THEN fn2 ELSE ln2 END AS last_name,
            CASE WHEN NOT k_ec THEN email2
                 WHEN u_case < 0.5 THEN upper(email2)
                 WHEN u_case < 0.75 THEN upper(email2[1]) || email2[2:]
                 ELSE split_part(email2, '@', 1) || '@' || upper(split_part(email2, '@', 2)) END
                AS email,
            phone,
            {gender_words}[female::INT * 20 + gender_fmt + 1] AS gender,
            CASE WHEN bad_birth IS NOT NULL THEN bad_birth
                 WHEN u_birth_fmt < 0.55 THEN strftime(birth_date, '%Y-%m-%d')
                 WHEN u_birth_fmt < 0.85 THEN strftime(birth_date, '%d.%m.%Y')
                 WHEN u_birth_fmt < 0.95 THEN strftime(birth_date, '%d/%m/%y')
                 END AS birth_date,
            CASE WHEN u_city < 0.6 THEN {city_names}[city + 1]
                 WHEN u_city < 0.97
                    THEN {city_aliases}[city + 1][city_alias % {city_nalias}[city + 1] + 1]
                 END AS city,
            {self.store_ids}[home_store + 1] AS home_store_id,
            {pick("hr4", 3, 25)} AS optin_fmt, email_opt, sms_opt, push_opt,
            concat_ws(';',
                CASE WHEN rn > 0 THEN 'duplicate' END,
                CASE WHEN k_ec THEN 'email_case' END,
                CASE WHEN k_ed THEN 'email_dots' END,
                CASE WHEN k_pf THEN 'phone_format' END,
                CASE WHEN k_no THEN 'name_order' END,
                CASE WHEN k_ns THEN 'name_spelling' END,
                CASE WHEN k_yo THEN 'yo_e' END,
                CASE WHEN k_me THEN 'missing_email' END,
                CASE WHEN k_mp THEN 'missing_phone' END,
                CASE WHEN invalid_kind > 0 THEN 'invalid_email' END,
                CASE WHEN bad_birth IS NOT NULL THEN 'impossible_birth_date' END,
                {_lst([None, *TRAP_KINDS])}[trap + 1]
            ) AS dirt
        FROM final
        """)
        # record ids follow registration time, so a person's original has the lowest id
        self.con.execute("""
        CREATE TABLE record_ids AS
        SELECT pid, rn, reg_ts, row_number() OVER (ORDER BY reg_ts, pid, rn) AS rec_no
        FROM records
        """)
        # sorted once here, then read in order by the customers file and the truth
        self.con.execute(f"""
        CREATE TABLE customers_out AS
        SELECT i.rec_no, {_customer_id("i.rec_no")} AS customer_id, r.*
        FROM records r JOIN record_ids i USING (pid, rn)
        ORDER BY i.rec_no
        """)
        self.con.execute("DROP TABLE records")

    # Fields packed into one BIGINT per person, so that expanding a person into its orders,
    # messages or sessions copies a few columns instead of a dozen (unnest copies row by row).
    PERSON_FIELDS: tuple[tuple[str, int], ...] = (
        ("n_orders", 9), ("reg_day", 11), ("active_end", 11), ("home_store", 5), ("app_user", 1),
        ("n_rec1", 2), ("city", 3), ("ios", 1), ("n_sessions", 7),
    )  # fmt: skip

    @classmethod
    def _field(cls, col: str, name: str) -> str:
        shift = 0
        for field, bits in cls.PERSON_FIELDS:
            if field == name:
                return f"(({col} >> {shift}) & {(1 << bits) - 1})"
            shift += bits
        raise KeyError(name)

    @classmethod
    def _pack(cls) -> str:
        parts, shift = [], 0
        for field, bits in cls.PERSON_FIELDS:
            parts.append(f"(({field})::BIGINT << {shift})")
            shift += bits
        return " | ".join(parts)

    def _record_of(self, pick_col: str, ts: str) -> str:
        """The rec_no of the record a fact at ``ts`` refers to: the picked record (``pick_col``, a
        column: a simple CASE repeats its operand per WHEN) if it was registered by then, else
        the original (packed in r01/r23/regm of activity)."""
        t0 = self.t0

        def reg_ok(i: int) -> str:
            return f"{t0} + ((regm >> {21 * i}) & 2097151) * 60 <= {ts}"

        return f"""CASE {pick_col}
            WHEN 1 THEN CASE WHEN {reg_ok(0)} THEN r01 >> 24 ELSE r01 & 16777215 END
            WHEN 2 THEN CASE WHEN {reg_ok(1)} THEN r23 & 16777215 ELSE r01 & 16777215 END
            WHEN 3 THEN CASE WHEN {reg_ok(2)} THEN r23 >> 24 ELSE r01 & 16777215 END
            ELSE r01 & 16777215 END"""

    def build_activity(self) -> None:
        """Per person: its records, how much it buys, until when, how often it visits online."""
        span = self.span
        start = f"DATE '{self.start.isoformat()}'"
        never = 2097151  # a "registered at" minute after any fact

        def reg_minute(rn: int) -> str:
            return (
                f"coalesce(max(CASE WHEN rn = {rn} THEN (reg_ts - {self.t0} + 59) // 60 END), "
                f"{never})"
            )

        self.con.execute(f"""
        CREATE TABLE activity AS
        WITH pr AS (
            SELECT pid, count(*) - 1 AS n_rec1,
                -- (bit operators all bind alike in DuckDB: parenthesise every shift)
                max(CASE WHEN rn = 0 THEN rec_no END)
                    | (coalesce(max(CASE WHEN rn = 1 THEN rec_no END), 0) << 24) AS r01,
                coalesce(max(CASE WHEN rn = 2 THEN rec_no END), 0)
                    | (coalesce(max(CASE WHEN rn = 3 THEN rec_no END), 0) << 24) AS r23,
                {reg_minute(1)} | ({reg_minute(2)} << 21) | ({reg_minute(3)} << 42) AS regm
            FROM record_ids GROUP BY pid
        ), a AS (
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
            r01, r23, regm, {self._pack()} AS pk,
            sum(n_orders) OVER w - n_orders AS order_base,
            sum(n_sessions) OVER w - n_sessions AS session_base
        FROM n
        WINDOW w AS (ORDER BY pid ROWS UNBOUNDED PRECEDING)
        ORDER BY pid
        """)

    # -- orders --------------------------------------------------------------------------------

    def _line_tables(self) -> dict[str, list[object]]:
        """Lookup lists of order lines: 12 random bits -> line code (product | quantity << 5;
        product 31 is the unknown P999, quantity 0 is dirt), and per code its amount and dirt."""
        wp = [x[4] for x in PRODUCTS]
        wq = [16, 3, 1]
        codes = [31 | (1 << 5)] * 21  # unknown_product, ~0.5%
        codes += [p for p in _weighted(wp, 21)]  # zero_quantity, ~0.5%
        joint = [a * b for a in wp for b in wq]
        codes += [(i // 3) | ((i % 3 + 1) << 5) for i in _weighted(joint, 4096 - len(codes))]
        prices = [x[2] for x in PRODUCTS] + [0] * (31 - len(PRODUCTS)) + [UNKNOWN_PRICE]
        return {
            "line_code": codes,
            "line_amount": [prices[c & 31] * (c >> 5) for c in range(128)],
            "line_dirty": [int((c & 31) == 31 or (c >> 5) == 0) for c in range(128)],
            "line_price": [f"{prices[c & 31] / 100:.2f}" for c in range(128)],
            "line_product": [
                "P999" if c & 31 == 31 else f"P{(c & 31) + 1:03d}" for c in range(128)
            ],
        }

    def build_lut(self) -> None:
        """One row of lookup lists. Queries cross join it: a list literal inline in a query is
        rebuilt for every vector of rows, which costs seconds for large lists and many rows."""
        tables: dict[str, list[object]] = {
            "order_hour": (
                [7] * 3
                + [8] * 6
                + [9] * 6
                + [10] * 4
                + [11] * 3
                + [12] * 4
                + [13] * 4
                + [14] * 3
                + [15] * 2
                + [16] * 2
                + [17] * 3
                + [18] * 3
                + [19] * 3
                + [20] * 2
                + [21]
                + [22]
            ),  # fmt: skip
            "items_per_order": [x + 1 for x in _weighted([9, 6, 3, 2], 20)],
            "digits2": [f"{i:02d}" for i in range(100)],
            "digits3": [f"{i:03d}" for i in range(1000)],
            **self._line_tables(),
        }
        self.con.execute(
            "CREATE TABLE lut AS SELECT "
            + ", ".join(f"{_lst(v)} AS {k}" for k, v in tables.items())
        )

    def build_orders(self) -> None:
        """Orders of every person, numbered person by person (no sort of the big table)."""
        r = self.r
        u, pick = r.u, r.pick
        f = self._field

        def line(i: int) -> str:
            code = f"lut.line_code[((hl >> {12 * i}) & 4095)::BIGINT + 1]"
            return f"(CASE WHEN n_items > {i} THEN {code} ELSE 0 END)"

        def per_line(table: str, i: int) -> str:
            return f"lut.{table}[((lines >> {7 * i}) & 127) + 1]"

        self.con.execute(f"""
        CREATE TABLE orders AS
        WITH o AS (
            SELECT order_base + k + 1 AS order_no, k, pk, r01, r23, regm
            FROM (SELECT order_base, pk, r01, r23, regm, unnest(range(n_orders)) AS k
                  FROM activity WHERE n_orders > 0)
        ), hashed AS (
            SELECT *,
                {r.stream("hk", "o1", True)} AS ho1, {r.stream("hk", "o2", True)} AS ho2,
                {r.stream("hk", "o3", True)} AS ho3, {r.stream("hk", "l1", True)} AS hl,
                {f("pk", "reg_day")} AS reg_day
            FROM (SELECT *, hash(order_no::BIGINT) AS hk FROM o)
        ), t AS (
            SELECT order_no, pk, r01, r23, regm, ho2, ho3, hl,
                -- stratified over the active period: a person's orders are in time order
                reg_day + 1 + floor((k + {u("ho1", 0)}) * ({f("pk", "active_end")} - reg_day)
                                    / {f("pk", "n_orders")})::BIGINT AS day,
                {u("ho1", 1)} AS u_ch,
                {u("ho1", 2)} < 0.15 AS night,
                {u("ho1", 3)} AS u_dirt,
                {u("ho2", 0)} AS u_st,
                lut.items_per_order[{pick("ho2", 1, 20)} + 1] AS n_items,
                {pick("ho2", 2, f"{f('pk', 'n_rec1')} + 1")} AS rec
            FROM hashed CROSS JOIN lut
        ), c AS (
            SELECT t.*,
                CASE WHEN {f("pk", "app_user")} = 1 THEN
                    CASE WHEN u_ch < 0.45 THEN 0 WHEN u_ch < 0.80 THEN 1
                         WHEN u_ch < 0.85 THEN 2 ELSE 3 END
                ELSE CASE WHEN u_ch < 0.75 THEN 0 WHEN u_ch < 0.80 THEN 1
                          WHEN u_ch < 0.90 THEN 2 ELSE 3 END
                END AS channel,
                {line(0)} | ({line(1)} << 7) | ({line(2)} << 14) | ({line(3)} << 21) AS lines
            FROM t CROSS JOIN lut
        ), ts AS (
            SELECT c.*,
                {self.t0} + day * 86400 + CASE
                    -- night delivery: 00:10-00:59
                    WHEN channel = 3 AND night THEN 600 + {pick("ho3", 2, 3000)}
                    ELSE lut.order_hour[{pick("ho3", 0, 50)} + 1] * 3600 + {pick("ho3", 1, 3600)}
                END AS ordered_ts
            FROM c CROSS JOIN lut
        ), packed AS (
            SELECT order_no, ordered_ts, channel, n_items, lines,
                CASE WHEN channel IN (0, 1) AND {u("ho2", 3)} < 0.12
                     THEN {pick("ho3", 3, self.n_stores)} ELSE {f("pk", "home_store")} END AS store,
                CASE WHEN u_dirt < 0.008 THEN 1 WHEN u_dirt < 0.018 THEN 2
                     WHEN u_dirt < 0.023 THEN 3 WHEN u_dirt < 0.030 THEN 4 ELSE 0 END AS odirt,
                CASE WHEN u_st < 0.93 THEN 0 WHEN u_st < 0.97 THEN 1 ELSE 2 END AS status,
                {self._record_of("rec", "ordered_ts")} AS rec_no,
                {" + ".join(per_line("line_amount", i) for i in range(4))} AS total_cents,
                ({" | ".join(f"({per_line('line_dirty', i)} << {i})" for i in range(4))})
                    & ((1 << n_items) - 1) AS dirty_lines
            FROM ts CROSS JOIN lut
        )
        -- few columns: storing and scanning 8M rows costs per column
        SELECT order_no, 'O' || (10000000 + order_no)::VARCHAR AS order_id, ordered_ts, lines,
            rec_no, total_cents,
            channel | (status << 2) | (odirt << 4) | (n_items << 7) | (store << 10)
                | (dirty_lines << 15) AS info
        FROM packed
        """)
        self.con.execute("""
        CREATE VIEW orders_v AS
        SELECT order_no, order_id, ordered_ts, lines, rec_no, total_cents,
            info & 3 AS channel, (info >> 2) & 3 AS status, (info >> 4) & 7 AS odirt,
            (info >> 7) & 7 AS n_items, (info >> 10) & 31 AS store, (info >> 15) & 15 AS dirty_lines
        FROM orders
        """)

    def write_orders(self, path: Path) -> int:
        amount = "(total_cents / 100)::DECIMAL(12, 2)::VARCHAR"
        comma_amount = self._quoted(f"replace({amount}, '.', ',')")  # "123,50"
        aux = self.r.stream("order_no", "o4")
        exprs = {
            "order_id": "order_id",
            # an id no record has: record ids have no letter after the digits
            "customer_id": f"CASE WHEN odirt = 3 THEN 'C9' || lpad(({aux} % 1000000)::VARCHAR, 6, "
            f"'0') || 'x' ELSE {_customer_id('rec_no')} END",
            "store_id": f"{self.store_ids}[store + 1]",
            "ordered_at": "make_timestamp(ordered_ts * 1000000)",
            "channel": f"{_lst(CHANNELS)}[channel + 1]",
            "status": f"CASE WHEN odirt = 4 THEN {_lst(UNKNOWN_STATUSES)}"
            f"[({aux} % {len(UNKNOWN_STATUSES)})::BIGINT + 1] "
            f"ELSE {_lst(STATUSES)}[status + 1] END",
            "total_amount": f"CASE WHEN odirt = 1 THEN '-' || {amount} "
            f"WHEN odirt = 2 THEN {comma_amount} ELSE {amount} END",
        }
        return self._copy("orders", exprs, "orders_v", self._key("order_no"), path, prerender=True)

    def write_order_items(self, path: Path) -> int:
        self.con.execute("""
        CREATE TEMP VIEW items AS
        SELECT order_no, order_id, l, (lines >> (7 * l)::INTEGER) & 127 AS code
        FROM (SELECT order_no, order_id, lines, unnest(range(n_items)) AS l FROM orders_v)
        """)
        exprs = {
            "order_id": "order_id",
            "line_number": "l + 1",
            "product_id": "lut.line_product[code + 1]",
            "quantity": "code >> 5",
            "unit_price": "lut.line_price[code + 1]",
        }
        self._copy(
            "order_items",
            exprs,
            "items CROSS JOIN lut",
            self._key("order_no, l"),
            path,
            count=False,
            prerender=True,
        )
        return int(self.con.execute("SELECT sum(n_items) FROM orders_v").fetchone()[0] or 0)

    # -- interactions --------------------------------------------------------------------------

    def _campaigns(self) -> list[dict[str, object]]:
        """Per channel: campaign ids and day offsets (from start) for every month of the period."""
        out = []
        base_y, base_m = self.start.year, self.start.month
        months = (self.end.year - base_y) * 12 + self.end.month - base_m + 1
        for name, days, hour, _, _ in CAMPAIGN_CHANNELS:
            ids, offs = [], []
            for mi in range(months):
                y, m = base_y + (base_m - 1 + mi) // 12, (base_m - 1 + mi) % 12 + 1
                for j, d in enumerate(days):
                    ids.append(f"CMP-{y:04d}-{m:02d}-{name}-{j + 1:02d}")
                    offs.append((date(y, m, d) - self.start).days)
            valid = [i for i, o in enumerate(offs) if 0 <= o < self.span]
            out.append(
                {"ids": ids, "offs": offs, "lo": valid[0] if valid else 0,
                 "hi": valid[-1] if valid else -1, "days": days, "hour": hour}
            )  # fmt: skip
        return out

    def build_interactions(self) -> None:
        """Campaign messages to persons with consent, and their opens, clicks, unsubscribes."""
        r = self.r
        u, pick = r.u, r.pick
        f = self._field
        camps = self._campaigns()
        flat_ids: list[str] = []
        flat_offs: list[int] = []
        bases: list[int] = []
        for c in camps:
            bases.append(len(flat_ids))
            flat_ids += c["ids"]  # type: ignore[arg-type]
            flat_offs += c["offs"]  # type: ignore[arg-type]
        self.campaign_ids = _lst(flat_ids)
        open_rate = _lst([x[3] for x in CAMPAIGN_CHANNELS])
        click_rate = _lst([x[4] for x in CAMPAIGN_CHANNELS])
        hours = _lst([c["hour"] for c in camps])
        # the events of one message by bitmask opened(1) | clicked(2) | unsubscribed(4)
        event_lists = (
            "["
            + ", ".join(
                _lst([0] + [t for bit, t in ((1, 1), (2, 2), (4, 3)) if mask & bit])
                for mask in range(8)
            )
            + "]"
        )
        opts = ("email_opt", "sms_opt", "push_opt")
        per_channel = []
        for ch, c in enumerate(camps):
            first = (
                f"greatest({c['lo']}, reg_month * {len(c['days'])}"  # type: ignore[arg-type]
                + "".join(f" + (reg_dom >= {d})::INT" for d in c["days"])  # type: ignore[union-attr]
                + ")"
            )
            per_channel.append(f"""
                {r.stream(f"pid * 4 + {ch}", "c1")} AS hc{ch},
                {first} AS first{ch},
                CASE WHEN {opts[ch]} THEN {c["hi"]} ELSE -1 END AS hi{ch}""")
        derived = []
        for ch in range(3):
            derived.append(f"""
                {pick(f"hc{ch}", 0, 7)} AS stride{ch},  -- every (5 + stride)-th campaign
                {u(f"hc{ch}", 1)} < 0.08 AS unsub{ch},
                {pick(f"hc{ch}", 2, f"5 + {pick(f'hc{ch}', 0, 7)}")} AS phase{ch}""")
        counts = []
        for ch in range(3):
            avail = (
                f"CASE WHEN hi{ch} - first{ch} > phase{ch} "
                f"THEN (hi{ch} - first{ch} - phase{ch}) // (5 + stride{ch}) + 1 ELSE 0 END"
            )
            counts.append(f"""
                CASE WHEN unsub{ch} AND {avail} > 0
                     THEN 1 + {pick(f"hc{ch}", 3, avail)} ELSE {avail} END AS n{ch}""")
        # per channel: first campaign (10 bits), stride - 5 (3 bits), unsubscribes (1 bit)
        chan_pack = " | ".join(
            f"((({bases[ch]} + first{ch} + phase{ch}) | (stride{ch} << 10)"
            f" | (unsub{ch}::BIGINT << 13)) << {14 * ch})"
            for ch in range(3)
        )
        chan = "CASE WHEN jj < n0 THEN 0 WHEN jj < n0 + n1 THEN 1 ELSE 2 END"
        self.con.execute(f"""
        CREATE TABLE interactions AS
        WITH pc AS (
            SELECT pid, pk, r01, r23, regm, {", ".join(per_channel)}
            FROM activity WHERE email_opt OR sms_opt OR push_opt
        ), pc2 AS (
            SELECT *, {", ".join(derived)} FROM pc
        ), pc3 AS (
            SELECT pid, pk, r01, r23, regm, {chan_pack} AS cp, {", ".join(counts)} FROM pc2
        ), s AS (
            -- one row per message, the person's channels one after another
            SELECT pid, pk, r01, r23, regm, cp, n0, n1, n0 + n1 + n2 AS n_all,
                unnest(range(n0 + n1 + n2)) AS jj
            FROM pc3 WHERE n0 + n1 + n2 > 0
        ), s1 AS (
            SELECT *, {chan} AS ch FROM s
        ), s2 AS (
            SELECT *,
                jj - CASE ch WHEN 0 THEN 0 WHEN 1 THEN n0 ELSE n0 + n1 END AS j,
                CASE ch WHEN 0 THEN n0 WHEN 1 THEN n1 ELSE n_all - n0 - n1 END AS n_sends,
                (cp >> (14 * ch)::INTEGER) & 16383 AS c
            FROM s1
        ), s3 AS (
            SELECT *,
                (c & 1023) + j * (5 + ((c >> 10) & 7)) AS camp,
                (c >> 13) = 1 AND j = n_sends - 1 AS unsub,
                {r.stream("(pid * 4 + ch) * 256 + j", "m1")} AS hm,
                {r.stream("(pid * 4 + ch) * 256 + j", "m2")} AS hm2
            FROM s2
        ), s4 AS (
            SELECT *,
                {self.t0} + {_lst(flat_offs)}[camp + 1] * 86400 + {hours}[ch + 1] * 3600
                    + {pick("hm", 0, 1200)} AS sent_ts,
                ({u("hm", 1)} < {open_rate}[ch + 1] OR unsub) AND ch <> 1 AS opened,
                30 + floor(-ln(1 - {u("hm", 2)}) * 10800)::BIGINT % 259200 AS open_delay,
                30 + {pick("hm", 3, 900)} AS click_delay,
                {pick("hm2", 1, f"{f('pk', 'n_rec1')} + 1")} AS rec
            FROM s3
        ), s5 AS (
            SELECT sent_ts, open_delay | (click_delay << 20) AS delays,
                ch | (camp << 2) | ({f("pk", "city")} << 16) AS info,
                {self._record_of("rec", "sent_ts")} AS rec_no,
                opened::INT + 2 * ((ch = 1 OR opened) AND {u("hm2", 0)} < {click_rate}[ch + 1])::INT
                    + 4 * unsub::INT AS mask
            FROM s4
        ), ev AS (
            SELECT sent_ts, delays, info, rec_no, unnest({event_lists}[mask + 1]) AS itype FROM s5
        ), ev2 AS (
            SELECT rec_no, info, itype,
                sent_ts + CASE itype
                    WHEN 0 THEN 0
                    WHEN 1 THEN delays & 1048575
                    WHEN 2 THEN (delays & 1048575) * (info & 3 <> 1)::INT + (delays >> 20)
                    ELSE (delays & 1048575) + 2 * (delays >> 20) END AS ts
            FROM ev
        )
        -- one pipeline from the person-ordered activity table: the rows are stored in
        -- (person, channel, message, event) order and numbered by rowid
        SELECT * FROM ev2 WHERE ts <= {self.t_end}
        """)

    def write_interactions(self, path: Path) -> int:
        offsets = _lst([c[2] for c in CITIES])
        exprs = {
            "interaction_id": "'I' || (10000001 + rowid)::VARCHAR",
            "customer_id": _customer_id("rec_no"),
            "channel": f"{_lst([c[0] for c in CAMPAIGN_CHANNELS])}[(info & 3) + 1]",
            "interaction_type": "['sent', 'opened', 'clicked', 'unsubscribed'][itype + 1]",
            "campaign_id": f"{self.campaign_ids}[((info >> 2) & 16383) + 1]",
            "occurred_at": "strftime(make_timestamp(ts * 1000000), '%Y-%m-%dT%H:%M:%S') || "
            f"{offsets}[(info >> 16) + 1]",
        }
        return self._copy(
            "interactions", exprs, "interactions", self._key("rowid"), path, prerender=True
        )

    # -- sessions ------------------------------------------------------------------------------

    def build_sessions(self) -> None:
        r = self.r
        u, pick = r.u, r.pick
        f = self._field
        hour_list = (
            [0] + [7] * 2 + [8] * 4 + [9] * 4 + [10] * 3 + [11] * 3 + [12] * 4 + [13] * 4
            + [14] * 3 + [15] * 3 + [16] * 3 + [17] * 3 + [18] * 4 + [19] * 4 + [20] * 4
            + [21] * 3 + [22] * 2 + [23] * 1
        )  # fmt: skip
        utm_pick = _lst(_weighted([15, 20, 10, 25, 10, 20], 20))
        self.con.execute(f"""
        CREATE TABLE sessions AS
        WITH s AS (
            SELECT session_base + k + 1 AS session_no, k, pk, r01, r23, regm,
                {r.stream("session_base + k + 1", "x1")} AS hx1,
                {r.stream("session_base + k + 1", "x2")} AS hx2
            FROM (SELECT session_base, pk, r01, r23, regm, unnest(range(n_sessions)) AS k
                  FROM activity WHERE n_sessions > 0)
        ), t AS (
            SELECT *,
                {self.t0} + ({f("pk", "reg_day")} + floor((k + {u("hx1", 0)})
                    * ({self.span} - {f("pk", "reg_day")}) / {f("pk", "n_sessions")})::BIGINT)
                    * 86400
                    + {_lst(hour_list)}[{pick("hx1", 1, len(hour_list))} + 1] * 3600
                    + {pick("hx1", 2, 3600)} AS started_ts,
                {pick("hx1", 3, f"{f('pk', 'n_rec1')} + 1")} AS rec
            FROM s
        )
        SELECT session_no, started_ts, {f("pk", "city")} AS city,
            CASE WHEN {u("hx2", 0)} >= 0.03
                 THEN {self._record_of("rec", "started_ts")}
                 END AS rec_no,
            CASE WHEN {f("pk", "app_user")} = 0 OR {u("hx2", 1)} < 0.2 THEN 0
                 ELSE 1 + {f("pk", "ios")} END AS device,
            10 + floor(1800 * pow({u("hx2", 2)}, 2.5))::BIGINT AS duration_seconds,
            1 + floor(25 * pow({u("hx2", 3)}, 2))::BIGINT AS page_views,
            {utm_pick}[{pick(r.stream("session_no", "x3"), 0, 20)} + 1] AS utm
        FROM t
        """)

    def write_sessions(self, path: Path) -> int:
        offsets = _lst([c[2] for c in CITIES])
        exprs = {
            "session_id": "'W' || (10000000 + session_no)::VARCHAR",
            "customer_id": _customer_id("rec_no"),
            "device": "['web', 'android', 'ios'][device + 1]",
            "started_at": "strftime(make_timestamp(started_ts * 1000000), '%Y-%m-%dT%H:%M:%S') || "
            f"{offsets}[city + 1]",
            "duration_seconds": "duration_seconds",
            "page_views": "page_views",
            "utm_source": f"{_lst(UTM_SOURCES)}[utm + 1]",
        }
        return self._copy(
            "sessions", exprs, "sessions", self._key("session_no"), path, prerender=True
        )

    # -- customers and truth -------------------------------------------------------------------

    def write_customers(self, path: Path) -> int:
        trues = _lst(["true", "yes", "1", "да", "True"])
        falses = _lst(["false", "no", "0", "нет", "False"])
        spelling = f"{_lst(_weighted([80, 5, 7, 4, 4], 25))}[optin_fmt + 1] + 1"

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
        return self._copy("customers", exprs, "customers_out", "rec_no", path, prerender=True)

    def write_truth_customers(self, path: Path) -> int:
        self.con.execute(f"""
        COPY (
            SELECT customer_id,
                   'person-' || lpad((pid + 1)::VARCHAR, 7, '0') AS person_id,
                   CASE WHEN dirt = '' THEN 'clean' ELSE dirt END AS dirt
            FROM customers_out ORDER BY rec_no
        ) TO {_lit_path(path)} (HEADER, DELIMITER ',')
        """)
        return int(self.con.execute("SELECT count(*) FROM customers_out").fetchone()[0])

    def write_truth_dirt(self, path: Path) -> int:
        self.con.execute(f"""
        CREATE TABLE dirt AS
        SELECT 'orders' AS table_name, order_id AS record_key,
               {_lst(ORDER_DIRT)}[odirt] AS dirt, order_no, 0 AS l
        FROM orders_v WHERE odirt > 0
        UNION ALL
        SELECT 'order_items', order_id || ':' || (l + 1)::VARCHAR,
               CASE WHEN (lines >> (7 * l)::INTEGER) & 31 = 31 THEN 'unknown_product'
                    ELSE 'zero_quantity' END,
               order_no, l
        FROM (SELECT order_no, order_id, lines, dirty_lines, unnest(range(n_items)) AS l
              FROM orders_v WHERE dirty_lines > 0)
        WHERE (dirty_lines >> l::INTEGER) & 1 = 1
        """)
        self.con.execute(f"""
        COPY (SELECT table_name, record_key, dirt FROM dirt ORDER BY table_name, order_no, l)
        TO {_lit_path(path)} (HEADER, DELIMITER ',')
        """)
        return int(self.con.execute("SELECT count(*) FROM dirt").fetchone()[0])

    # -- plumbing ------------------------------------------------------------------------------

    #: Also ORDER BY key in the COPY of the four big files. They are generated in key order, so
    #: the sort changes no byte (the tests check it, and that the thread count changes none)
    #: while costing ~15% of the run at 1M customers; the small files are always sorted.
    SORT_BIG_TABLES = False
    #: Render each line in SQL and COPY it as one unquoted column: DuckDB's CSV writer then costs
    #: a third less. Only for files whose values (numbers, timestamps, words and names from the
    #: lists above) hold no comma, quote or newline; a value that needs quotes gets them from
    #: ``_quoted``. The tests check that both ways write the same bytes.
    PRERENDER_LINES = True

    def _key(self, key: str) -> str | None:
        return key if self.SORT_BIG_TABLES else None

    def _quoted(self, expr: str) -> str:
        """A value with a comma: quoted by hand when the line is pre-rendered."""
        return f"concat('\"', {expr}, '\"')" if self.PRERENDER_LINES else expr

    def _copy(
        self,
        table: str,
        exprs: dict[str, str],
        source: str,
        order: str | None,
        path: Path,
        count: bool = True,
        prerender: bool = False,
    ) -> int:
        """COPY ``source`` to ``path`` with exactly the contract's columns, in its order.

        ``order`` is the key to sort by; None for a source whose rows are generated in key order
        (one order-preserving pipeline from a table stored in person order), where a sort would
        only cost time: the tests check that the keys of such files increase. ``prerender``: see
        ``PRERENDER_LINES``.
        """
        cols = SOURCES[table].column_names
        if list(exprs) != cols:
            raise AssertionError(f"{table}: generator columns {list(exprs)} != contract {cols}")
        options = "HEADER, DELIMITER ','"
        if prerender and self.PRERENDER_LINES:
            line = ", ',', ".join(f"{exprs[c]}" for c in cols)
            select = f'concat({line}) AS "{",".join(cols)}"'
            options += ", QUOTE '', ESCAPE ''"
        else:
            select = ", ".join(f'{exprs[c]} AS "{c}"' for c in cols)
        self.con.execute(
            f"COPY (SELECT {select} FROM {source}{f' ORDER BY {order}' if order else ''}) "
            f"TO {_lit_path(path)} ({options})"
        )
        if not count:
            return -1
        return int(self.con.execute(f"SELECT count(*) FROM {source}").fetchone()[0])

    def _copy_values(self, table: str, rows: list[str], order: str, path: Path) -> int:
        cols = ", ".join(SOURCES[table].column_names)
        self.con.execute(
            f"COPY (SELECT * FROM (VALUES {', '.join(rows)}) t({cols}) ORDER BY {order}) "
            f"TO {_lit_path(path)} (HEADER, DELIMITER ',')"
        )
        return len(rows)

    def run(self, out_dir: Path) -> dict[str, int]:
        counts: dict[str, int] = {}
        counts["stores"] = self.write_stores(out_dir / "stores.csv")
        counts["products"] = self.write_products(out_dir / "products.csv")
        self.build_lut()
        self.build_persons()
        self.build_records()
        self.build_activity()

        # Two independent chains on two connections to the same database: DuckDB interleaves
        # their tasks on its worker threads, which fills the cores while one chain is in a
        # single-threaded phase (a sort's merge, the end of a COPY). Every query's result is
        # the same whatever runs beside it, so the files stay byte-identical.
        def facts(gen: _Generator) -> dict[str, int]:
            out: dict[str, int] = {}
            gen.build_orders()
            out["orders"] = gen.write_orders(out_dir / "orders.csv")
            out["order_items"] = gen.write_order_items(out_dir / "order_items.csv")
            out[f"{TRUTH_DIR}/dirt"] = gen.write_truth_dirt(out_dir / TRUTH_DIR / "dirt.csv")
            return out

        def the_rest(gen: _Generator) -> dict[str, int]:
            out: dict[str, int] = {}
            out["customers"] = gen.write_customers(out_dir / "customers.csv")
            out[f"{TRUTH_DIR}/customers"] = gen.write_truth_customers(
                out_dir / TRUTH_DIR / "customers.csv"
            )
            gen.build_interactions()
            out["interactions"] = gen.write_interactions(out_dir / "interactions.csv")
            gen.build_sessions()
            out["sessions"] = gen.write_sessions(out_dir / "sessions.csv")
            return out

        other = copy.copy(self)
        other.con = self.con.cursor()
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                rest = pool.submit(the_rest, other)
                counts.update(facts(self))
                counts.update(rest.result())
        finally:
            other.con.close()
        return {name: counts[name] for name in (*OUTPUT_FILES, *TRUTH_FILES)}


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m crm_assets.generator --customers 3000 --out seeds --seed 42``."""
    parser = argparse.ArgumentParser(
        prog="crm generate", description="Generate the demo CRM export (CSV) and its ground truth."
    )
    parser.add_argument("--customers", type=int, default=3000, help="number of persons")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2025, 1, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 6, 30))
    args = parser.parse_args(argv)
    counts = generate(args.out, args.customers, args.seed, args.start, args.end)
    for name, rows in counts.items():
        print(f"{name:20s} {rows:>12,d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
