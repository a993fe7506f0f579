"""Cleaning rules plain SQL can express, as ``TEMP`` DuckDB macros generated from reference data.

``crm_name_key``, ``crm_gender``, ``crm_birth_date``, ``crm_birth_date_issue``, ``crm_city``,
``crm_bool``, ``crm_decimal`` and ``crm_instant`` run inside DuckDB's vectorised engine, in
parallel, with no Python in the loop. They are created as ``TEMP`` macros, so they live in the
connection's temporary catalog and never land in the warehouse file, where another process (a BI
tool, a check) could not resolve them. Every macro takes ``VARCHAR`` and returns ``NULL`` for a
``NULL`` or blank input, so "missing" never looks like "invalid".

Decisions worth knowing when reading staging results:

* A birth date in a date shape whose parts make no calendar date (``31.02.1990``, month 13) is an
  ``impossible birth date``, like one before 1900 or after today; ``unparseable birth date`` is
  kept for text that is not a date at all (``abc``, ``15 марта 1990``). Dates are day first
  (``03/04/1990`` is 3 April) unless the year comes first.
* ``crm_decimal`` reads ``,`` as the decimal point unless the value is thousands-grouped with both
  separators (``1,234.50``): ``1,234`` is 1.23.
* ``crm_instant(text, zone)`` takes a time written with a UTC offset (``+03``, ``Z``) as that
  instant, and any other as a wall-clock time in ``zone`` (the store's, the business one): ISO,
  or day first (``10.03.2025 12:00``, ``10/03/2025``), a date alone being midnight.
"""

from __future__ import annotations

import re

import duckdb

from crm_assets.quoting import literal

# --------------------------------------------------------------------------------------------
# Reference data: the only place the rules' vocabularies live.
# --------------------------------------------------------------------------------------------

CITY_ALIASES: dict[str, tuple[str, ...]] = {
    "Москва": ("Москва", "мск", "Moscow", "Moskva", "г. Москва"),
    "Санкт-Петербург": (
        "Санкт-Петербург",
        "Санкт Петербург",
        "СПб",
        "Питер",
        "St. Petersburg",
        "Saint Petersburg",
        "Sankt-Peterburg",
        "С.-Петербург",
        "С-Петербург",
        "Ленинград",
    ),
    "Казань": ("Казань", "Kazan"),
    "Екатеринбург": ("Екатеринбург", "Екб", "Ekaterinburg", "Yekaterinburg"),
    "Новосибирск": ("Новосибирск", "Нск", "Novosibirsk"),
}
"""Canonical city name -> the spellings the CRM uses for it. Matching ignores case, ``ё``/``е``,
a leading ``г.``/``город``, and every character that is not a letter (see :func:`city_key`), so
``С.-Петербург`` and ``с петербург`` are one alias. Cities not listed pass through unchanged
except for trimming and a capital first letter: an unknown city is still information."""

GENDER_ALIASES: dict[str, tuple[str, ...]] = {
    "female": ("ж", "f", "female", "жен", "женский", "женщина", "w", "woman"),
    "male": ("м", "m", "male", "муж", "мужской", "мужчина", "man"),
}
"""Gender code -> accepted spellings, compared lower-cased with non-letters removed (``Муж.``)."""

BOOLEAN_ALIASES: dict[bool, tuple[str, ...]] = {
    True: ("true", "t", "1", "yes", "y", "да"),
    False: ("false", "f", "0", "no", "n", "нет"),
}
"""Boolean -> accepted spellings, compared trimmed and lower-cased."""

SQL_MACROS: tuple[str, ...] = (
    "crm_name_key",
    "crm_gender",
    "crm_birth_date",
    "crm_birth_date_issue",
    "crm_city",
    "crm_bool",
    "crm_decimal",
    "crm_instant",
)
"""Public functions implemented as ``TEMP`` SQL macros."""

# --------------------------------------------------------------------------------------------
# SQL macros, generated from the reference data above.
# --------------------------------------------------------------------------------------------

_CITY_PREFIX = re.compile(r"^(г\.|г\s+|город\s+)\s*", re.IGNORECASE)


def letters_key(text: str) -> str:
    """Lower-case letters only, ``ё`` as ``е``: what the macros compare alias lists on.

    The Python twin of the ``_crm_letters`` macro (``str.isalpha`` is RE2's ``\\p{L}``); the alias
    maps are built with it, so the vocabularies stay human-readable and match as SQL matches.
    """
    return "".join(ch for ch in text.lower().replace("ё", "е") if ch.isalpha())


def city_key(text: str) -> str:
    """The key ``crm_city`` looks a spelling up by: :func:`letters_key` without a ``г.`` prefix."""
    return letters_key(_CITY_PREFIX.sub("", text.strip()))



def _sql_map(pairs: dict[str, str]) -> str:
    return "MAP {" + ", ".join(f"{literal(k)}: {v}" for k, v in pairs.items()) + "}"


def _city_map_sql() -> str:
    pairs: dict[str, str] = {}
    for canonical, aliases in CITY_ALIASES.items():
        for alias in (canonical, *aliases):
            value = literal(canonical)
            if pairs.setdefault(city_key(alias), value) != value:
                raise ValueError(f"city alias {alias!r} names two cities")
    return _sql_map(pairs)


def _gender_map_sql() -> str:
    return _sql_map(
        {
            letters_key(a): literal(code)
            for code, aliases in GENDER_ALIASES.items()
            for a in aliases
        }
    )


def _boolean_map_sql() -> str:
    return _sql_map(
        {a: str(value).lower() for value, aliases in BOOLEAN_ALIASES.items() for a in aliases}
    )


# RE2 (DuckDB's regex engine): \s is ASCII only; \p{Z} adds NBSP and the thin spaces that
# spreadsheets put in numbers and that CSV exports carry around values.
_WS = r"[\s\p{Z}]"
_UTC_OFFSET = r"[0-9]:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)? *([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)$"
"""A time of day followed by a UTC offset or ``Z``, at the end of the value."""
_DAY_FIRST_FORMATS = ("['%d.%m.%Y %H:%M:%S', '%d.%m.%Y %H:%M', '%d.%m.%Y', "
                      "'%d/%m/%Y %H:%M:%S', '%d/%m/%Y %H:%M', '%d/%m/%Y']")
# One shape for both date orders; which group holds the year is decided by digit counts below.
# A time of day after the date (spreadsheet exports add one) is accepted and dropped.
_DATE_SHAPE = (
    rf"^{_WS}*(\d{{1,4}})[-./](\d{{1,2}})[-./](\d{{1,4}})"
    rf"(?:[ T]\d{{1,2}}:\d{{2}}(?::\d{{2}}(?:\.\d+)?)?(?:Z|[+-]\d{{2}}:?\d{{2}})?)?{_WS}*$"
)


def _text_macros() -> list[str]:
    """Trimmed text, letters, name keys, genders and booleans."""
    return [
        # Trimmed text, NULL when blank: the first step of every macro.
        rf"""CREATE OR REPLACE TEMP MACRO _crm_text(raw) AS
            nullif(regexp_replace(raw, '^{_WS}+|{_WS}+$', '', 'g'), '')""",
        # Lower-case letters only, ё as е: 'Муж.' -> 'муж', ' С.-Петербург ' -> 'спетербург'.
        r"""CREATE OR REPLACE TEMP MACRO _crm_letters(raw) AS
            regexp_replace(replace(lower(raw), 'ё', 'е'), '[^\p{L}]+', '', 'g')""",
        rf"""CREATE OR REPLACE TEMP MACRO crm_name_key(first, last) AS
            nullif(array_to_string(list_sort(list_filter(string_split_regex(
                regexp_replace(
                    replace(lower(concat_ws(' ', first, last)), 'ё', 'е'),
                    '[^\p{{L}}\s\p{{Z}}]+', '', 'g'),
                '{_WS}+'), lambda crm_t: crm_t <> '')), ' '), '')""",
        f"""CREATE OR REPLACE TEMP MACRO crm_gender(raw) AS
            {_gender_map_sql()}[_crm_letters(raw)]""",
        f"""CREATE OR REPLACE TEMP MACRO crm_bool(raw) AS
            {_boolean_map_sql()}[lower(_crm_text(raw))]""",
    ]


def _number_and_time_macros() -> list[str]:
    """Decimals as the CRM writes them, and instants from local times."""
    return [
        # Whitespace and apostrophes are thousands separators. With both ',' and '.' in
        # thousands-grouped form ('1.234,50', '1,234.50') the later one is the decimal point;
        # otherwise ',' is the decimal point (the Russian convention: '1,234' is 1.23).
        r"""CREATE OR REPLACE TEMP MACRO _crm_decimal_text(raw) AS
            CASE
                WHEN regexp_full_match(raw, '[-+]?\d{1,3}(\.\d{3})+,\d*')
                    THEN replace(replace(raw, '.', ''), ',', '.')
                WHEN regexp_full_match(raw, '[-+]?\d{1,3}(,\d{3})+\.\d*')
                    THEN replace(raw, ',', '')
                ELSE replace(raw, ',', '.')
            END""",
        rf"""CREATE OR REPLACE TEMP MACRO crm_decimal(raw) AS
            try_cast(_crm_decimal_text(regexp_replace(raw, '{_WS}+|''', '', 'g'))
                AS DECIMAL(12,2))""",
        # A time with an explicit UTC offset is that instant; any other is wall-clock time in
        # `zone` (DuckDB's cast reads ISO; the formats add day-first dates).
        f"""CREATE OR REPLACE TEMP MACRO crm_instant(raw, zone) AS
            CASE
                WHEN regexp_matches(raw, '{_UTC_OFFSET}')
                    THEN try_cast(raw AS TIMESTAMPTZ)
                ELSE timezone(zone, coalesce(try_cast(raw AS TIMESTAMP),
                                             try_strptime(raw, {_DAY_FIRST_FORMATS})))
            END""",
    ]


def _birth_date_macros() -> list[str]:
    """Birth dates in either date order, telling unparseable from impossible."""
    return [
        # [year, month, day] as text when the value has a date shape, else NULL. ISO when the
        # first group has 4 digits, otherwise day first (a Russian CRM); a two-digit year up to
        # this year's is 20xx, any other 19xx. Whether the parts make a real date is not judged
        # here, so that the issue macro can tell 'unparseable' from 'impossible'.
        f"""CREATE OR REPLACE TEMP MACRO _crm_birth_date_parts(raw) AS
            list_transform([regexp_extract(raw, '{_DATE_SHAPE}', ['a', 'b', 'c'])],
                lambda crm_p: CASE
                    WHEN length(crm_p.a) = 4 AND length(crm_p.c) <= 2
                        THEN [crm_p.a, crm_p.b, crm_p.c]
                    WHEN length(crm_p.a) <= 2 AND length(crm_p.c) = 4
                        THEN [crm_p.c, crm_p.b, crm_p.a]
                    WHEN length(crm_p.a) <= 2 AND length(crm_p.c) = 2
                        THEN [CAST(CASE WHEN CAST(crm_p.c AS INTEGER) <= year(current_date) % 100
                                        THEN 2000 ELSE 1900 END
                                   + CAST(crm_p.c AS INTEGER) AS VARCHAR),
                              crm_p.b, crm_p.a]
                END)[1]""",
        """CREATE OR REPLACE TEMP MACRO _crm_is_birth_date(d) AS
            d BETWEEN DATE '1900-01-01' AND current_date""",
        """CREATE OR REPLACE TEMP MACRO crm_birth_date(raw) AS
            list_transform(
                [try_cast(array_to_string(_crm_birth_date_parts(raw), '-') AS DATE)],
                lambda crm_d: CASE WHEN _crm_is_birth_date(crm_d) THEN crm_d END)[1]""",
        """CREATE OR REPLACE TEMP MACRO crm_birth_date_issue(raw) AS
            list_transform([_crm_birth_date_parts(raw)], lambda crm_p: CASE
                WHEN crm_p IS NULL
                    THEN CASE WHEN _crm_text(raw) IS NOT NULL THEN 'unparseable birth date' END
                WHEN coalesce(_crm_is_birth_date(
                        try_cast(array_to_string(crm_p, '-') AS DATE)), false)
                    THEN NULL
                ELSE 'impossible birth date'
            END)[1]""",
    ]


def _city_macros() -> list[str]:
    """Canonical cities from the aliases the CRM uses."""
    return [
        # Unknown cities keep their spelling minus a 'г.' prefix, with a capital first letter.
        rf"""CREATE OR REPLACE TEMP MACRO _crm_city_text(raw) AS
            nullif(regexp_replace(
                regexp_replace(_crm_text(raw), '^(?i:г\.|г{_WS}+|город{_WS}+){_WS}*', ''),
                '{_WS}+', ' ', 'g'), '')""",
        f"""CREATE OR REPLACE TEMP MACRO crm_city(raw) AS
            list_transform([_crm_city_text(raw)], lambda crm_c: coalesce(
                {_city_map_sql()}[_crm_letters(crm_c)],
                upper(left(crm_c, 1)) || substr(crm_c, 2)))[1]""",
    ]


def register_cleaning_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Create (or replace) every cleaning macro on ``con``, helpers first.

    Macros have no local variables and DuckDB does not share a repeated sub-expression across
    ``CASE`` branches, so a value used several times is bound once with
    ``list_transform([value], lambda x: ...)[1]`` (half the cost of repeating a regex). Lambda
    parameters are named ``crm_*`` so they cannot capture a column of the caller's table. The
    macros belong to this connection only (cursors and other connections do not see them).
    """
    statements = [*_text_macros(), *_number_and_time_macros(), *_birth_date_macros(),
                  *_city_macros()]
    con.execute(";\n".join(statements))
