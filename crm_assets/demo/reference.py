"""The fixed reference data of the demo chain: cities, stores, products, names, contacts, dirt.

Only short lists live here; rows of people are never produced in Python (see
:mod:`crm_assets.demo.generator`). The lists are inlined into the SQL as literals, so changing one
changes the generated files: the seeds' test (``tests/test_seeds.py``) will say so.
"""

from __future__ import annotations

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
#: (campaign channel, days of month a campaign goes out, local hour, open rate, click rate | open).
CAMPAIGN_CHANNELS: tuple[tuple[str, tuple[int, ...], int, float, float], ...] = (
    ("email", (5, 19), 10, 0.26, 0.18),
    ("sms", (12,), 12, 0.0, 0.04),
    ("push", (8, 24), 18, 0.12, 0.25),
)
UTM_SOURCES = ("google", "yandex", "email", "direct", "vk", None)
#: Labels of the traps of naive matching, in the order of the persons' trap codes 1..4.
TRAP_KINDS = ("household_phone", "company_email", "placeholder_contact", "namesake")

_TRANSLIT = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        "a b v g d e e zh z i y k l m n o p r s t u f kh ts ch sh shch _ y _ e yu ya".split(),
        strict=True,
    )
)


def translit(name: str) -> str:
    """``name`` in lower-case Latin letters, as people spell it in an e-mail (Семён -> semen)."""
    return "".join(_TRANSLIT.get(ch, ch) for ch in name.lower()).replace("_", "")


def feminine(surname: str) -> str:
    """The feminine form of a masculine surname (Королёв -> Королёва, Толстой -> Толстая)."""
    if surname.endswith("ский"):
        return surname[:-4] + "ская"
    if surname.endswith("ой"):
        return surname[:-2] + "ая"
    if surname.endswith(("ов", "ев", "ёв", "ин", "ын")):
        return surname + "а"
    return surname  # Шевченко
