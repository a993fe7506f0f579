"""Suppression: what an erased person was known by, as keyed hashes, so a later file cannot bring
them back.

Each erasure records the keyed hash of the person's source record ids, e-mail keys (the identity
key of a mailbox: case, dots and ``+tags`` of Gmail folded), phone numbers (E.164) and order ids
in ``meta.suppressions``. Loading a file then drops, in the transaction of its rows, every row
that carries one of them (:func:`drop_suppressed`): a new file with the same customer record, or a
new record with the same e-mail or phone, loads without it.

The hash is ``sha256(key | kind | value)`` with a secret key kept in a file outside the warehouse
(``suppression.key`` next to it, or ``CRM_SUPPRESSION_KEY_FILE``), created on the first erasure:
a copy of the warehouse alone does not let anyone test which phone numbers were erased. Lose the
key and suppression cannot be checked: a load then fails rather than let erased people back in.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import duckdb

from crm_assets.functions.registry import register_cleaning_functions
from crm_assets.quoting import identifier, literal
from crm_assets.warehouse.tables import SUPPRESSIONS

KINDS = ("source_id", "email", "phone", "order_id")

# what each raw table's rows are suppressed by: (kind, SQL of the normalised value)
RAW_KEYS: dict[str, list[tuple[str, str]]] = {
    "customers": [("source_id", "trim(customer_id)"), ("email", "crm_email_key(email)"),
                  ("phone", "crm_phone(phone)")],
    "orders": [("source_id", "trim(customer_id)"), ("order_id", "trim(order_id)")],
    "order_items": [("order_id", "trim(order_id)")],
    "interactions": [("source_id", "trim(customer_id)")],
    "sessions": [("source_id", "trim(customer_id)")],
}


class SuppressionKeyMissing(RuntimeError):
    """People were erased, but the key their hashes were made with is gone."""


def read_key(path: Path, *, create: bool = False) -> str | None:
    """The suppression key in ``path``; a new one (mode 0600) when ``create`` and none exists."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    return read_key(path)


def keyed_hash(key: str, kind: str, value_sql: str) -> str:
    """SQL of the keyed hash of ``value_sql`` (NULL stays NULL)."""
    return f"sha256({literal(key)} || '|' || {literal(kind)} || '|' || ({value_sql}))"


def hash_value(con: duckdb.DuckDBPyConnection, key: str, kind: str, value: str) -> str | None:
    """The keyed hash of one value as given (``email`` and ``phone`` normalised as on load)."""
    register_cleaning_functions(con)
    expression = {"email": "crm_email_key($v)", "phone": "crm_phone($v)"}.get(kind, "trim($v)")
    return con.execute(f"SELECT {keyed_hash(key, kind, expression)}", {"v": value}).fetchone()[0]


def has_suppressions(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute(f"SELECT count(*) FROM {SUPPRESSIONS.name}").fetchone()[0])


def drop_suppressed(con: duckdb.DuckDBPyConnection, table: str, file_sha256: str,
                    key_path: Path | None) -> int:
    """Delete the rows of one just-loaded file of ``raw.<table>`` that carry a suppressed value;
    how many. Call it in the transaction of the file's rows.

    Raises:
        SuppressionKeyMissing: there are suppressions but no key to check them with.
    """
    keys = RAW_KEYS.get(table)
    if not keys or not has_suppressions(con):
        return 0
    key = read_key(key_path) if key_path else None
    if key is None:
        raise SuppressionKeyMissing(
            f"people were erased (meta.erasures) but the suppression key is missing "
            f"({key_path}): restore it, or set CRM_SUPPRESSION_KEY_FILE to it; nothing of "
            f"this {table} file was loaded, so erased people cannot come back")
    register_cleaning_functions(con)
    matches = " OR ".join(
        f"{keyed_hash(key, kind, value)} IN (SELECT key_hash FROM {SUPPRESSIONS.name} "
        f"WHERE kind = {literal(kind)})" for kind, value in keys)
    return int(con.execute(f"DELETE FROM raw.{identifier(table)} WHERE _file_sha256 = ? AND "
                           f"({matches})", [file_sha256]).fetchone()[0])
