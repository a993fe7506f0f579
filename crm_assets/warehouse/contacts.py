"""E-mails and phones checked by their libraries once, ever: ``staging.email_addresses`` and
``staging.phone_numbers``, read by ``staging.customers``.

``email-validator`` and ``phonenumbers`` cost ~30 µs a value, and most of a customer file's values
are distinct: calling them for every record on every run was most of staging's time. Here each
distinct value *as the CRM wrote it* is checked once: a run checks only the values of raw files it
has not seen (``meta.staged_files`` under the tables' names) that neither table holds yet, and
appends the answers. A first build spreads the calls over every core (processes: the libraries are
pure Python, so threads would share one core). The answers are those of the ``crm_email*`` and
``crm_phone*`` functions (:mod:`crm_assets.functions.contacts`), which share the code.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context

import duckdb
import pyarrow as pa

from crm_assets.functions.contacts import clean_emails, clean_phones
from crm_assets.functions.registry import cleaning_version
from crm_assets.quoting import identifier
from crm_assets.warehouse.connection import transaction
from crm_assets.warehouse.state import built_version, mark_staged, set_built_version
from crm_assets.warehouse.tables import EMAIL_ADDRESSES, LOADED_FILES, PHONE_NUMBERS, STAGED_FILES

PARALLEL_FROM = 50_000
"""Fewer new values than this are checked in this process: starting workers would cost more."""

DOMAINS_REMEMBERED = 1 << 16
"""Valid e-mail domains whose check a batch remembers (1M persons' addresses: ~10k domains)."""

_CHECKS = ((EMAIL_ADDRESSES, "email", clean_emails), (PHONE_NUMBERS, "phone", clean_phones))
_SOURCE = "customers"


@dataclass(frozen=True)
class ContactCheck:
    files: int
    """Raw customer files looked at (those not seen before)."""
    checked: dict[str, int]
    """New distinct values checked, per table."""
    held: dict[str, int]
    """Values each table holds after the run."""


def check_contacts(con: duckdb.DuckDBPyConnection, run_id: str, *, full_refresh: bool = False,
                   workers: int | None = None) -> ContactCheck:
    """Check the e-mails and phones of raw customer files not seen yet; append the answers.

    With ``full_refresh``, or when the cleaning rules changed since the answers were given (a new
    ``phonenumbers``, see :func:`~crm_assets.functions.registry.cleaning_version`), both tables
    are emptied and every value is checked again; ``staging.customers`` records the same version,
    so its next run judges every record again with the new answers.
    """
    rules = cleaning_version()
    if full_refresh or built_version(con, EMAIL_ADDRESSES.name) not in (None, rules):
        with transaction(con):
            for table, _, _ in _CHECKS:
                con.execute(f"DELETE FROM {table.name}")
            con.execute(f"DELETE FROM {STAGED_FILES.name} WHERE table_name = ?",
                        [EMAIL_ADDRESSES.name])
    files = [r[0] for r in con.execute(
        f"SELECT file_sha256 FROM {LOADED_FILES.name} WHERE table_name = ? AND file_sha256 NOT IN "
        f"(SELECT file_sha256 FROM {STAGED_FILES.name} WHERE table_name = ?)",
        [_SOURCE, EMAIL_ADDRESSES.name]).fetchall()]
    checked: dict[str, int] = {}
    answers: dict[str, pa.Table] = {}
    for table, column, clean in _CHECKS:
        values = con.sql(
            f"SELECT DISTINCT {identifier(column)} AS raw_value FROM raw.{_SOURCE} "
            f"WHERE list_contains(?, _file_sha256) AND {identifier(column)} IS NOT NULL "
            f"AND {identifier(column)} NOT IN (SELECT raw_value FROM {table.name})",
            params=[files]).to_arrow_table().column("raw_value").combine_chunks()
        checked[table.name] = len(values)
        answers[table.name] = _check(values, clean, workers)
    with transaction(con):
        for table, _, _ in _CHECKS:
            con.register("_crm_answers", answers[table.name])
            try:
                con.execute(f"INSERT INTO {table.name} BY NAME SELECT * FROM _crm_answers")
            finally:
                con.unregister("_crm_answers")
        mark_staged(con, EMAIL_ADDRESSES.name, files, run_id)
        for table, _, _ in _CHECKS:
            set_built_version(con, table.name, rules, 0, ["raw_value"])
    held = {table.name: int(con.execute(f"SELECT count(*) FROM {table.name}").fetchone()[0])
            for table, _, _ in _CHECKS}
    return ContactCheck(len(files), checked, held)


def _check(values: pa.Array, clean, workers: int | None) -> pa.Table:
    """``raw_value`` and ``clean(values)``, over several processes when there are many."""
    workers = workers or os.cpu_count() or 1
    batch = functools.partial(_checked, clean)
    if len(values) < PARALLEL_FROM or workers < 2:
        parts = [batch(values)]
    else:
        size = -(-len(values) // (workers * 4))
        chunks = [values.slice(i, size) for i in range(0, len(values), size)]
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            parts = list(pool.map(batch, chunks))
    table = pa.concat_tables(parts) if parts else batch(values)
    return table.add_column(0, "raw_value", values)


def _checked(clean, values: pa.Array) -> pa.Table:
    """``clean(values)`` with each e-mail domain checked once (:func:`domains_checked_once`)."""
    with domains_checked_once():
        return clean(values)


@contextmanager
def domains_checked_once() -> Iterator[None]:
    """Within the block, ``email-validator`` checks each valid domain once, not once per address.

    The library checks every character of an address's domain against IDNA's tables for each
    address: over half of its time on a CRM's addresses, which are at a few thousand domains
    (mail.ru, gmail.com and their typos). That check is a pure function of the domain and two
    flags, and the library calls it by its name in the module of ``validate_email``; for the
    block that name holds the same function remembering its answers (an invalid domain raises,
    which is not remembered: it is checked each time, with the same message). The answers are
    the library's (a test compares them); what changes is the time. It lives here, not among
    the cleaning rules (:mod:`crm_assets.functions`), whose code versions the answers.
    """
    module = importlib.import_module("email_validator.validate_email")
    check = getattr(module, "validate_email_domain_name", None)
    if check is None:  # a library release that checks domains otherwise: plain calls
        yield
        return
    module.validate_email_domain_name = functools.lru_cache(maxsize=DOMAINS_REMEMBERED)(check)
    try:
        yield
    finally:
        module.validate_email_domain_name = check
