"""Value cleaning for the staging layer: DuckDB functions that turn raw CSV text into clean values.

Raw tables keep every value as text (see :mod:`crm_assets.contracts`); staging SQL turns that text
into typed, comparable values by calling the functions registered here by
:func:`register_cleaning_functions`. Every function takes ``VARCHAR`` and returns ``NULL`` for a
``NULL`` or blank input, so "missing" never looks like "invalid".

Two kinds of function, chosen by what the rule needs:

* **SQL macros** (``crm_name_key``, ``crm_gender``, ``crm_birth_date``, ``crm_birth_date_issue``,
  ``crm_city``, ``crm_bool``, ``crm_decimal``, ``crm_instant``) for rules that plain SQL
  expresses: they run inside DuckDB's vectorised engine, in parallel, with no Python in the loop.
  They are created as ``TEMP`` macros, so they live in the connection's temporary catalog and
  never land in the warehouse file, where another process (a BI tool, a check) could not resolve
  them.
* **Vectorised Arrow UDFs** (``crm_email``, ``crm_email_key``, ``crm_email_issue``, ``crm_phone``,
  ``crm_phone_issue``) where a real library is the rule: ``email-validator`` for RFC syntax and
  IDNA, ``phonenumbers`` for numbering plans. Each call gets one DuckDB vector as an Arrow array;
  blanks are nulled in ``pyarrow.compute``, values are deduplicated with ``dictionary_encode``, the
  library runs once per *distinct* value (through a process-wide LRU cache shared by the value and
  the issue function), and results are mapped back with ``take``.

Python UDFs exist only in the process that registered them, so any table built with them must be
materialised (never a view), as ``DESIGN.md`` says. :data:`CLEANING_FUNCTIONS` lists the public
names for the SQL allow-list.

Decisions worth knowing when reading staging results:

* Missing is not an issue: the ``*_issue`` functions are ``NULL`` for a blank value; staging decides
  whether a column is required.
* A birth date in a date shape whose parts make no calendar date (``31.02.1990``, month 13) is an
  ``impossible birth date``, like one before 1900 or after today; ``unparseable birth date`` is
  kept for text that is not a date at all (``abc``, ``15 марта 1990``). Dates are day first
  (``03/04/1990`` is 3 April) unless the year comes first.
* A placeholder phone (``0000000000``) is reported as ``placeholder phone`` even where the library
  would also call it invalid: "someone typed a filler" is the more useful reason.
* ``crm_decimal`` reads ``,`` as the decimal point unless the value is thousands-grouped with both
  separators (``1,234.50``): ``1,234`` is 1.23.
* ``crm_instant(text, zone)`` takes a time written with a UTC offset (``+03``, ``Z``) as that
  instant, and any other as a wall-clock time in ``zone`` (the store's, the business one): ISO,
  or day first (``10.03.2025 12:00``, ``10/03/2025``), a date alone being midnight.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import NamedTuple

import duckdb
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from email_validator import EmailNotValidError, validate_email

# --------------------------------------------------------------------------------------------
# Reference data: the only place the rules' vocabularies live.
# --------------------------------------------------------------------------------------------

DEFAULT_PHONE_REGION = "RU"
"""Region assumed for numbers written without a country code (``8 916 ...``, ``916 ...``)."""

PLACEHOLDER_EMAILS: frozenset[str] = frozenset(
    {
        "test@test.ru",
        "test@test.com",
        "no@email.com",
        "example@example.com",
        "email@email.com",
    }
)
"""Whole addresses that operators type to get past a required field; they identify nobody."""

PLACEHOLDER_EMAIL_LOCAL_PARTS: frozenset[str] = frozenset(
    {"noemail", "no-email", "nomail", "none", "noreply", "no-reply"}
)
"""Local parts (before ``@``, ``+tag`` ignored) that mean "no address" whatever the domain."""

PLACEHOLDER_EMAIL_DOMAINS: frozenset[str] = frozenset({"example.com", "example.org", "example.net"})
"""Domains reserved for documentation (RFC 2606): nobody receives mail there."""

GMAIL_DOMAINS: frozenset[str] = frozenset({"gmail.com", "googlemail.com"})
"""Domains where Google ignores dots in the local part; the identity key folds them to gmail.com."""

PLACEHOLDER_PHONE_NATIONAL_NUMBERS: frozenset[str] = frozenset(
    {"0000000000", "1234567890", "0123456789", "9876543210", "1111111111", "9999999999"}
)
"""National numbers seen as fillers. Rules below catch the rest of the family: any national number
of five or more digits that is one repeated digit (``9999999999``, ``+7 000 000-00-00``), and any
run of seven or more consecutive digits taken from :data:`PLACEHOLDER_PHONE_SEQUENCES`."""

PLACEHOLDER_PHONE_SEQUENCES: tuple[str, ...] = ("01234567890", "09876543210")
"""Keyboard runs: a national number that is a substring of one of these (7+ digits) is a filler.
Deliberately not cyclic, so a real mobile number such as ``+7 901 234-56-78`` is kept."""

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

PARSE_CACHE_SIZE = 1 << 18
"""Distinct values remembered per library-backed parser (email, phone). DuckDB hands a UDF one
2048-row vector at a time, so deduplication inside a call sees little; the cache is what makes
``crm_email`` + ``crm_email_issue`` on one column cost one parse, and what makes repeated values
across vectors free. At most ~400 bytes an email and ~300 a phone: ~180 MB when both are full."""

PYTHON_FUNCTIONS: tuple[str, ...] = (
    "crm_email",
    "crm_email_key",
    "crm_email_issue",
    "crm_phone",
    "crm_phone_issue",
)
"""Public functions implemented as Arrow UDFs (connection-scoped, never usable from a view)."""

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

CLEANING_FUNCTIONS: tuple[str, ...] = PYTHON_FUNCTIONS + SQL_MACROS
"""Every public name :func:`register_cleaning_functions` creates: the staging SQL allow-list."""


# --------------------------------------------------------------------------------------------
# Per-value rules (pure Python, cached). The UDFs below only deduplicate and map.
# --------------------------------------------------------------------------------------------


class EmailResult(NamedTuple):
    """Outcome of cleaning one email: exactly one of ``email`` and ``issue`` is set."""

    email: str | None
    key: str | None
    issue: str | None


class PhoneResult(NamedTuple):
    """Outcome of cleaning one phone: exactly one of ``phone`` and ``issue`` is set."""

    phone: str | None
    issue: str | None


def _email_key(local: str, domain: str) -> str:
    """Identity key: one mailbox, however it was written (``+tag`` and Gmail dots dropped)."""
    base = local.split("+", 1)[0] or local
    if domain in GMAIL_DOMAINS:
        return f"{base.replace('.', '') or base}@gmail.com"
    return f"{base}@{domain}"


def _is_placeholder_email(local: str, domain: str, email: str) -> bool:
    return (
        email in PLACEHOLDER_EMAILS
        or domain in PLACEHOLDER_EMAIL_DOMAINS
        or (local.split("+", 1)[0] or local) in PLACEHOLDER_EMAIL_LOCAL_PARTS
    )


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parse_email(value: str) -> EmailResult:
    """Validate one trimmed, lower-cased, non-empty value (the cached unit of work)."""
    try:
        info = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        return EmailResult(None, None, f"invalid email: {exc}")
    email = info.normalized
    local, domain = email.rsplit("@", 1)
    if _is_placeholder_email(local, domain, email):
        return EmailResult(None, None, "placeholder email")
    return EmailResult(email, _email_key(local, domain), None)


def clean_email(raw: str | None) -> EmailResult:
    """Clean one email the way ``crm_email`` / ``crm_email_key`` / ``crm_email_issue`` do.

    Args:
        raw: the value as the source wrote it.

    Returns:
        All ``None`` for a missing or blank value; otherwise either the normalised address with
        its identity key, or the reason it was refused (``invalid email: <validator message>`` or
        ``placeholder email``). Syntax only, no DNS: staging must be deterministic and offline.
    """
    value = (raw or "").strip().lower()
    return _parse_email(value) if value else EmailResult(None, None, None)


def _placeholder_nationals() -> frozenset[str]:
    """Every national number the placeholder rules refuse, so a check is one set look-up."""
    found = set(PLACEHOLDER_PHONE_NATIONAL_NUMBERS)
    found.update(digit * n for digit in "0123456789" for n in range(5, 16))
    for seq in PLACEHOLDER_PHONE_SEQUENCES:
        found.update(seq[i:j] for i in range(len(seq)) for j in range(i + 7, len(seq) + 1))
    return frozenset(found)


_PLACEHOLDER_NATIONALS = _placeholder_nationals()


_NON_DIGITS = re.compile(r"\D")


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parse_phone(value: str) -> PhoneResult:
    """Parse one trimmed, non-empty value (the cached unit of work)."""
    digits = _NON_DIGITS.sub("", value)
    # The national part as typed: an 11-digit 7/8-prefixed Russian number without its prefix.
    national = digits[1:] if len(digits) == 11 and digits[0] in "78" else digits
    if national in _PLACEHOLDER_NATIONALS:
        return PhoneResult(None, "placeholder phone")
    try:
        number = phonenumbers.parse(value, DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        return PhoneResult(None, "invalid phone")
    if not phonenumbers.is_valid_number(number):
        return PhoneResult(None, "invalid phone")
    if phonenumbers.national_significant_number(number) in _PLACEHOLDER_NATIONALS:
        return PhoneResult(None, "placeholder phone")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return PhoneResult(e164, None)


def clean_phone(raw: str | None) -> PhoneResult:
    """Clean one phone the way ``crm_phone`` / ``crm_phone_issue`` do.

    Args:
        raw: the value as the source wrote it; any common Russian format, or international.

    Returns:
        All ``None`` for a missing or blank value; otherwise the E.164 form of a valid number or
        the reason it was refused (``invalid phone``, ``placeholder phone``).
    """
    value = (raw or "").strip()
    return _parse_phone(value) if value else PhoneResult(None, None)


def clear_cleaning_caches() -> None:
    """Forget every cached parse (memory back after a large load, or a test that counts calls)."""
    _parse_email.cache_clear()
    _parse_phone.cache_clear()


# --------------------------------------------------------------------------------------------
# Arrow plumbing: null blanks, deduplicate, run the cached rule per distinct value, map back.
# --------------------------------------------------------------------------------------------

_NULL_STRING = pa.scalar(None, pa.string())

# Only digits and the separators people type between them: for such a value the phone library's
# answer depends on the digits and a leading '+' alone, so the separators are dropped before
# deduplicating. Then the Russian shapes of one number (+7 / 7 / 8 / no prefix + 10 digits) are
# folded to '+7' + 10 digits, which the library parses the same way (tests/test_cleaning.py checks
# this on random numbers), so one person's number written four ways costs one parse. '8 10 ...' is
# the international dialling prefix, not a trunk 8, and is left alone.
_PHONE_PUNCTUATION_ONLY = r"^\+?[0-9\s\-().]+$"
_PHONE_SEPARATORS = r"[\s\-().]"
_RU_PHONE_WITH_7 = r"^(?:\+7|7)?(\d{10})$"
_RU_PHONE_WITH_8 = r"^8([02-9]\d{9}|1[1-9]\d{8})$"


def _as_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    return values


def _trimmed_or_null(values: pa.Array | pa.ChunkedArray, *, lower: bool) -> pa.Array:
    """Trim Unicode whitespace (and lower-case); blank becomes null, so it is never parsed."""
    text = pc.utf8_trim_whitespace(_as_array(values))
    if lower:
        text = pc.utf8_lower(text)
    return pc.if_else(pc.equal(text, ""), _NULL_STRING, text)


def _map_distinct(values: pa.Array, rule: Callable[[str], str | None]) -> pa.Array:
    """Apply ``rule`` once per distinct non-null value and broadcast the answers back."""
    encoded = pc.dictionary_encode(values)
    answers = pa.array([rule(v) for v in encoded.dictionary.to_pylist()], type=pa.string())
    return pc.take(answers, encoded.indices)


def _email_udf(field: str) -> Callable[[pa.Array], pa.Array]:
    index = EmailResult._fields.index(field)

    def udf(values: pa.Array) -> pa.Array:
        return _map_distinct(_trimmed_or_null(values, lower=True), lambda v: _parse_email(v)[index])

    udf.__name__ = f"crm_email_{field}"
    return udf


def _phone_text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    text = _trimmed_or_null(values, lower=False)
    plain = pc.match_substring_regex(text, _PHONE_PUNCTUATION_ONLY)
    text = pc.if_else(plain, pc.replace_substring_regex(text, _PHONE_SEPARATORS, ""), text)
    text = pc.replace_substring_regex(text, _RU_PHONE_WITH_7, r"+7\1")
    return pc.replace_substring_regex(text, _RU_PHONE_WITH_8, r"+7\1")


def _phone_udf(field: str) -> Callable[[pa.Array], pa.Array]:
    index = PhoneResult._fields.index(field)

    def udf(values: pa.Array) -> pa.Array:
        return _map_distinct(_phone_text(values), lambda v: _parse_phone(v)[index])

    udf.__name__ = f"crm_phone_{field}"
    return udf


_UDFS: dict[str, Callable[[pa.Array], pa.Array]] = {
    "crm_email": _email_udf("email"),
    "crm_email_key": _email_udf("key"),
    "crm_email_issue": _email_udf("issue"),
    "crm_phone": _phone_udf("phone"),
    "crm_phone_issue": _phone_udf("issue"),
}


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


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_map(pairs: dict[str, str]) -> str:
    return "MAP {" + ", ".join(f"{_sql_literal(k)}: {v}" for k, v in pairs.items()) + "}"


def _city_map_sql() -> str:
    pairs: dict[str, str] = {}
    for canonical, aliases in CITY_ALIASES.items():
        for alias in (canonical, *aliases):
            value = _sql_literal(canonical)
            if pairs.setdefault(city_key(alias), value) != value:
                raise ValueError(f"city alias {alias!r} names two cities")
    return _sql_map(pairs)


def _gender_map_sql() -> str:
    return _sql_map(
        {
            letters_key(a): _sql_literal(code)
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


def _macro_sql() -> list[str]:
    """``CREATE OR REPLACE TEMP MACRO`` statements, helpers first.

    Macros have no local variables and DuckDB does not share a repeated sub-expression across
    ``CASE`` branches, so a value used several times is bound once with
    ``list_transform([value], lambda x: ...)[1]`` (half the cost of repeating a regex). Lambda
    parameters are named ``crm_*`` so they cannot capture a column of the caller's table.
    """
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


def register_cleaning_functions(con: duckdb.DuckDBPyConnection, *, udfs: bool = True) -> None:
    """Create every ``crm_*`` cleaning function on ``con``; safe to call again, on any connection.

    The two kinds live in different places, so registration treats them differently:

    * The macros are ``CREATE OR REPLACE TEMP``: they belong to this connection only (cursors and
      other connections do not see them) and are never written to the warehouse file. They are
      re-created on every call.
    * DuckDB keeps Python UDFs in the database instance's ``system`` catalog: every connection to
      the same file in this process (``duckdb.connect(path)`` twice, ``con.cursor()``) sees them,
      even after the registering connection closes, and a second ``create_function`` under the
      same name fails. So a UDF is created only when the instance does not have it yet.

    All are declared free of side effects, so DuckDB may reorder and deduplicate calls.

    Args:
        con: a connection that will run staging SQL. Call this on each connection (or cursor)
            that needs the macros; it is cheap.
        udfs: ``False`` when the caller knows the instance has the UDFs (it skips the ~12 ms
            look-up in ``duckdb_functions()``).
    """
    if udfs:
        present = {
            row[0]
            for row in con.execute(
                "SELECT function_name FROM duckdb_functions()"
                " WHERE database_name = 'system' AND function_type = 'scalar'"
                " AND list_contains($names, function_name)",
                {"names": list(PYTHON_FUNCTIONS)},
            ).fetchall()
        }
        for name, udf in _UDFS.items():
            if name in present:
                continue
            try:
                con.create_function(
                    name,
                    udf,
                    ["VARCHAR"],
                    "VARCHAR",
                    type="arrow",
                    null_handling="special",
                    side_effects=False,
                )
            except duckdb.CatalogException:
                pass  # another connection of this instance registered it since the check above
    con.execute(";\n".join(_macro_sql()))
