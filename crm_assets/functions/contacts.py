"""E-mail and phone cleaning: the rules a real library decides, as DuckDB Arrow UDFs.

``email-validator`` (RFC syntax, IDNA) and ``phonenumbers`` (numbering plans) are the rule; this
module adds only what a CRM needs around them (placeholders, the identity key of a mailbox, the
Russian ways of writing one number) and the plumbing that makes them cheap inside DuckDB: each call
gets one DuckDB vector as an Arrow array; blanks are nulled in ``pyarrow.compute``, values are
deduplicated with ``dictionary_encode``, the library runs once per *distinct* value (through a
process-wide LRU cache shared by the value and the issue function), and results are mapped back with
``take``.

Python UDFs exist only in the process that registered them, so any table built with them must be
materialised (never a view), as ``DESIGN.md`` says.

* A placeholder phone (``0000000000``) is reported as ``placeholder phone`` even where the library
  would also call it invalid: "someone typed a filler" is the more useful reason.
* Missing is not an issue: the ``*_issue`` functions are ``NULL`` for a blank value; staging decides
  whether a column is required.
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

KNOWN_EMAIL_DOMAINS: frozenset[str] = frozenset({
    "gmail.com", "googlemail.com", "mail.ru", "bk.ru", "inbox.ru", "list.ru", "internet.ru",
    "yandex.ru", "ya.ru", "yandex.com", "rambler.ru", "outlook.com", "hotmail.com", "live.com",
    "icloud.com", "me.com", "yahoo.com", "proton.me", "protonmail.com",
})
"""Mailbox providers most of a Russian CRM's addresses are at: an address written with ``at``
for ``@`` is repaired for matching only when what follows is one of these (so ``kate`` stays
``kate``, and ``u507atgmail.com`` gives the key ``u507@gmail.com``)."""

AT_TYPED: tuple[str, ...] = ("(at)", "[at]", "собака", "at")
"""What people type for ``@`` (``name(at)mail.ru``, ``name [at] mail.ru``, ``name собака mail.ru``,
``name at mail.ru``, ``nameatmail.ru``): repaired for matching before a known domain only."""

PLACEHOLDER_PHONE_NATIONAL_NUMBERS: frozenset[str] = frozenset(
    {"0000000000", "1234567890", "0123456789", "9876543210", "1111111111", "9999999999"}
)
"""National numbers seen as fillers. Rules below catch the rest of the family: any national number
of five or more digits that is one repeated digit (``9999999999``, ``+7 000 000-00-00``), and any
run of seven or more consecutive digits taken from :data:`PLACEHOLDER_PHONE_SEQUENCES`."""

PLACEHOLDER_PHONE_SEQUENCES: tuple[str, ...] = ("01234567890", "09876543210")
"""Keyboard runs: a national number that is a substring of one of these (7+ digits) is a filler.
Deliberately not cyclic, so a real mobile number such as ``+7 901 234-56-78`` is kept."""

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




# --------------------------------------------------------------------------------------------
# Per-value rules (pure Python, cached). The UDFs below only deduplicate and map.
# --------------------------------------------------------------------------------------------


class EmailResult(NamedTuple):
    """Outcome of cleaning one email: exactly one of ``email`` and ``issue`` is set; ``key``
    with ``email``, or with an ``issue`` when the address evidently means one mailbox."""

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


def _repaired_for_matching(value: str) -> str | None:
    """An invalid address as the mailbox it evidently means, for the matching key only: a
    trailing dot dropped (``name@mail.ru.``), ``at`` typed for ``@`` before a known domain."""
    stripped = value.rstrip(".")
    if stripped != value and "@" in stripped:
        return stripped
    if "@" in stripped:
        return None
    for domain in sorted(KNOWN_EMAIL_DOMAINS, key=len, reverse=True):
        if not stripped.endswith(domain):
            continue
        head = stripped[: -len(domain)].rstrip()
        for typed in AT_TYPED:
            local = head[: -len(typed)].rstrip() if head.endswith(typed) else ""
            if local and not any(c.isspace() for c in local):
                return f"{local}@{domain}"
    return None


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parse_email(value: str) -> EmailResult:
    """Validate one trimmed, lower-cased, non-empty value (the cached unit of work).

    An invalid value stays unusable (no e-mail is ever sent to a guessed address), but when it
    evidently means one mailbox (:func:`_repaired_for_matching`) it keeps that mailbox's key, so
    the person still matches their other records.
    """
    try:
        info = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        issue = f"invalid email: {exc}"
        repaired = _repaired_for_matching(value)
        if repaired is not None:
            meant = _parse_email(repaired)
            if meant.key is not None:
                return EmailResult(None, meant.key, f"{issue} (matched as {meant.email})")
        return EmailResult(None, None, issue)
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


def clean_emails(values: pa.Array) -> pa.Table:
    """For each value as the CRM wrote it: ``email``, ``email_key`` and ``issue``, as the UDFs
    give them (one library call per distinct normalised value)."""
    return _fields_of_distinct(_trimmed_or_null(values, lower=True), _parse_email.__wrapped__,
                               ("email", "email_key", "issue"))


def clean_phones(values: pa.Array) -> pa.Table:
    """For each value as the CRM wrote it: ``phone`` (E.164) and ``issue``, as the UDFs give
    them."""
    return _fields_of_distinct(_phone_text(values), _parse_phone.__wrapped__, ("phone", "issue"))


def _fields_of_distinct(values: pa.Array, parse: Callable[[str], tuple], names: tuple[str, ...]
                        ) -> pa.Table:
    """``parse`` once per distinct non-null value, every field of its answer broadcast back.

    Not through the parsers' LRU cache, which serves the UDFs' 2048-row vectors: a batch of many
    distinct values would evict each before its next field asked for it, and parse it again
    for every field (above :data:`PARSE_CACHE_SIZE` distinct values, 3 parses per e-mail).
    """
    encoded = pc.dictionary_encode(values)
    answers = [parse(v) for v in encoded.dictionary.to_pylist()]
    return pa.table({name: pc.take(pa.array([a[i] for a in answers], type=pa.string()),
                                   encoded.indices)
                     for i, name in enumerate(names)})


_UDFS: dict[str, Callable[[pa.Array], pa.Array]] = {
    "crm_email": _email_udf("email"),
    "crm_email_key": _email_udf("key"),
    "crm_email_issue": _email_udf("issue"),
    "crm_phone": _phone_udf("phone"),
    "crm_phone_issue": _phone_udf("issue"),
}


def register_contact_udfs(con: duckdb.DuckDBPyConnection) -> None:
    """Create the e-mail and phone UDFs on ``con``'s database instance, unless it has them.

    DuckDB keeps Python UDFs in the database instance's ``system`` catalog: every connection to
    the same file in this process (``duckdb.connect(path)`` twice, ``con.cursor()``) sees them,
    even after the registering connection closes, and a second ``create_function`` under the
    same name fails. They are declared free of side effects, so DuckDB may reorder and
    deduplicate calls.
    """
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
