"""Erasure: a person removed from every layer of the warehouse, in one transaction.

The person is named by a warehouse ``customer_id`` (merged-away ids resolve), or by the keyed hash
(:mod:`~crm_assets.warehouse.suppression`) of a source record id, an e-mail or a phone, so the
value itself never reaches Dagster's run records. What they are known by is collected first: their
warehouse ids (the current one and every id merged into it), source record ids, the raw e-mails
and phones of those records, and their order ids. Then, in one transaction, every row that
carries one of them is deleted:

* **raw** (append-only, so rewritten only here): the person's customer records, orders, order
  lines, interactions and sessions; everyone else's rows and their lineage columns are untouched;
* **staging**, including ``staging.rejects`` (a rejected row of theirs, matched in its JSON) and
  the checked contacts (``staging.email_addresses``, ``staging.phone_numbers``);
* **core**, identity (``core.customer_identity``, ``meta.identity_evidence``,
  ``meta.customer_merges``), features, summaries, predictions;
* **segments** and their history, **events**, and every other table with a ``customer_id``.

The keyed hashes of everything they were known by go to ``meta.suppressions`` and the request to
``meta.erasures`` (no personal data), in the same transaction. The caller then republishes the
snapshots and rewrites the trigger exports (:func:`crm_assets.serving.exports.scrub_exports`).
Erasing again is harmless: nothing is found, nothing is deleted, the request is recorded again.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import duckdb

from crm_assets.quoting import identifier
from crm_assets.warehouse.connection import table_exists, transaction
from crm_assets.warehouse.suppression import KINDS, keyed_hash
from crm_assets.warehouse.tables import ERASURES, SUPPRESSIONS

SELECTORS = ("customer", *KINDS[:3])
"""How a request names the person: a warehouse customer_id, or a source id, e-mail or phone."""


class ErasureError(ValueError):
    pass


@dataclass
class Erasure:
    erasure_id: str
    customer_ids: list[int]
    source_records: int
    rows_deleted: dict[str, int] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return bool(self.customer_ids or self.source_records)


def erase_person(con: duckdb.DuckDBPyConnection, key: str, selector: str, value: str,
                 reason: str | None = None, run_id: str | None = None) -> Erasure:
    """Erase the person ``selector`` names (``value``: a customer_id, or a keyed hash).

    Raises:
        ErasureError: an unknown selector, or a customer_id that is not a number.
    """
    if selector not in SELECTORS:
        raise ErasureError(f"unknown selector {selector!r}; expected one of {SELECTORS}")
    erasure_id = str(uuid.uuid4())
    with transaction(con):
        _collect(con, key, selector, value)
        ids = [r[0] for r in con.execute("SELECT id FROM _erase_ids ORDER BY 1").fetchall()]
        sources = con.execute("SELECT count(*) FROM _erase_sources").fetchone()[0]
        deleted = _delete_everywhere(con)
        con.execute(
            f"""INSERT OR IGNORE INTO {SUPPRESSIONS.name}
                SELECT DISTINCT kind, hash, ? FROM (
                    SELECT 'source_id' AS kind, {keyed_hash(key, 'source_id', 'id')} AS hash
                    FROM _erase_sources
                    UNION ALL SELECT 'email', {keyed_hash(key, 'email', 'value')}
                    FROM _erase_emails WHERE value IS NOT NULL
                    UNION ALL SELECT 'phone', {keyed_hash(key, 'phone', 'value')}
                    FROM _erase_phones WHERE value IS NOT NULL
                    UNION ALL SELECT 'order_id', {keyed_hash(key, 'order_id', 'id')}
                    FROM _erase_orders
                    UNION ALL SELECT ?, ? WHERE ? <> 'customer')""",
            [erasure_id, selector, value, selector])
        con.execute(f"INSERT INTO {ERASURES.name} VALUES (?, now(), ?, ?, ?, ?, ?, ?)",
                    [erasure_id, reason, selector, ids, sources,
                     json.dumps({k: v for k, v in deleted.items() if v}), run_id])
    for name in ("ids", "sources", "emails", "phones", "orders"):
        con.execute(f"DROP TABLE IF EXISTS _erase_{name}")
    return Erasure(erasure_id, ids, sources, {k: v for k, v in deleted.items() if v})


def _collect(con: duckdb.DuckDBPyConnection, key: str, selector: str, value: str) -> None:
    """``_erase_ids``, ``_erase_sources``, ``_erase_emails`` (keys), ``_erase_phones``,
    ``_erase_raw_contacts`` and ``_erase_orders``: what the person is known by."""
    if selector == "customer":
        try:
            given = int(value)
        except ValueError as err:
            raise ErasureError(f"customer_id must be a number, not {value!r}") from err
        # only an id the warehouse issued: an unknown one erases nobody (and, recorded in
        # meta.erasures, would push every later new id above it)
        con.execute("""CREATE OR REPLACE TEMP TABLE _erase_start AS
                       SELECT customer_id AS id FROM core.customer_ids WHERE any_customer_id = ?""",
                    [given])
        con.execute("""CREATE OR REPLACE TEMP TABLE _erase_sources AS
                       SELECT DISTINCT source_customer_id AS id FROM core.customer_identity
                       WHERE customer_id IN (SELECT id FROM _erase_start)""")
    else:
        matched = {
            "source_id": f"""SELECT DISTINCT trim(customer_id) AS id FROM raw.customers
                             WHERE {keyed_hash(key, 'source_id', 'trim(customer_id)')} = $h""",
            "email": f"""SELECT DISTINCT trim(r.customer_id) AS id FROM raw.customers r
                         JOIN staging.email_addresses e ON e.raw_value = r.email
                         WHERE {keyed_hash(key, 'email', 'e.email_key')} = $h""",
            "phone": f"""SELECT DISTINCT trim(r.customer_id) AS id FROM raw.customers r
                         JOIN staging.phone_numbers p ON p.raw_value = r.phone
                         WHERE {keyed_hash(key, 'phone', 'p.phone')} = $h""",
        }[selector]
        con.execute(f"CREATE OR REPLACE TEMP TABLE _erase_sources AS {matched}", {"h": value})
        con.execute("""CREATE OR REPLACE TEMP TABLE _erase_start AS
                       SELECT DISTINCT customer_id AS id FROM core.customer_identity
                       WHERE source_customer_id IN (SELECT id FROM _erase_sources)""")
    # every id the person ever had: the current one and those merged into it
    con.execute("""CREATE OR REPLACE TEMP TABLE _erase_ids AS
                   SELECT DISTINCT unnest([any_customer_id, customer_id]) AS id
                   FROM core.customer_ids
                   WHERE customer_id IN (SELECT c.customer_id FROM core.customer_ids c
                                         WHERE c.any_customer_id IN (SELECT id FROM _erase_start))
                   UNION SELECT id FROM _erase_start""")
    # their source records: every record identity put on any of those ids
    con.execute("""INSERT INTO _erase_sources SELECT DISTINCT source_customer_id
                   FROM core.customer_identity WHERE customer_id IN (SELECT id FROM _erase_ids)
                   AND source_customer_id NOT IN (SELECT id FROM _erase_sources)""")
    con.execute("""CREATE OR REPLACE TEMP TABLE _erase_raw_contacts AS
                   SELECT DISTINCT email, phone FROM raw.customers
                   WHERE trim(customer_id) IN (SELECT id FROM _erase_sources)""")
    con.execute("""CREATE OR REPLACE TEMP TABLE _erase_emails AS
                   SELECT DISTINCT e.email_key AS value FROM staging.email_addresses e
                   WHERE e.raw_value IN (SELECT email FROM _erase_raw_contacts)""")
    con.execute("""CREATE OR REPLACE TEMP TABLE _erase_phones AS
                   SELECT DISTINCT p.phone AS value FROM staging.phone_numbers p
                   WHERE p.raw_value IN (SELECT phone FROM _erase_raw_contacts)""")
    con.execute("""CREATE OR REPLACE TEMP TABLE _erase_orders AS
                   SELECT DISTINCT trim(order_id) AS id FROM raw.orders
                   WHERE trim(customer_id) IN (SELECT id FROM _erase_sources)
                   UNION SELECT order_id FROM core.orders
                   WHERE customer_id IN (SELECT id FROM _erase_ids)""")
    con.execute("DROP TABLE _erase_start")


# which column of a table names the person, and the list it is matched against
_MATCHES: dict[str, str] = {
    "customer_id": "_erase_ids",  # a source id in raw (see _condition)
    "source_customer_id": "_erase_sources",
    "any_customer_id": "_erase_ids",
    "from_customer_id": "_erase_ids",
    "to_customer_id": "_erase_ids",
    "order_id": "_erase_orders",
}


def _condition(schema: str, table: str, columns: dict[str, str]) -> str | None:
    """The WHERE clause matching the person's rows of one table, if it has a column to match."""
    terms = []
    for column, list_table in _MATCHES.items():
        if column not in columns:
            continue
        if column == "customer_id" and (schema == "raw" or columns[column] == "VARCHAR"):
            list_table = "_erase_sources"
        value = f"trim({identifier(column)})" if columns[column] == "VARCHAR" else identifier(
            column)
        terms.append(f"{value} IN (SELECT id FROM {list_table})")
    if f"{schema}.{table}" == "staging.rejects":
        terms = ["raw_row->>'customer_id' IN (SELECT id FROM _erase_sources)",
                 "raw_row->>'order_id' IN (SELECT id FROM _erase_orders)",
                 "raw_row->>'email' IN (SELECT email FROM _erase_raw_contacts)",
                 "raw_row->>'phone' IN (SELECT phone FROM _erase_raw_contacts)"]
    elif f"{schema}.{table}" == "staging.email_addresses":
        terms = ["raw_value IN (SELECT email FROM _erase_raw_contacts)",
                 "email_key IN (SELECT value FROM _erase_emails)"]
    elif f"{schema}.{table}" == "staging.phone_numbers":
        terms = ["raw_value IN (SELECT phone FROM _erase_raw_contacts)",
                 "phone IN (SELECT value FROM _erase_phones)"]
    elif f"{schema}.{table}" == "meta.identity_evidence":
        terms = ["source_customer_id IN (SELECT id FROM _erase_sources)"]
    return " OR ".join(terms) if terms else None


ERASED_SCHEMAS = ("raw", "staging", "core", "segments", "events", "marts")
ERASED_META = ("meta.identity_evidence", "meta.customer_merges")


def _delete_everywhere(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Delete the person's rows from every table that can hold them; rows deleted per table."""
    columns: dict[tuple[str, str], dict[str, str]] = {}
    for schema, table, column, type_ in con.execute(
            """SELECT c.schema_name, c.table_name, c.column_name, c.data_type
               FROM duckdb_columns() c JOIN duckdb_tables() t
                   USING (database_name, schema_name, table_name)
               WHERE c.database_name = current_database() AND NOT t.temporary
                 AND (list_contains(?, c.schema_name)
                      OR list_contains(?, c.schema_name || '.' || c.table_name))""",
            [list(ERASED_SCHEMAS), list(ERASED_META)]).fetchall():
        columns.setdefault((schema, table), {})[column] = type_
    # the raw contacts are matched last: staging.rejects and the checked contacts need them
    deleted = {}
    for (schema, table), cols in sorted(columns.items(), key=lambda kv: kv[0] == (
            "raw", "customers")):
        where = _condition(schema, table, cols)
        if where is None or not table_exists(con, f"{schema}.{table}"):
            continue
        deleted[f"{schema}.{table}"] = int(con.execute(
            f"DELETE FROM {identifier(schema)}.{identifier(table)} WHERE {where}").fetchone()[0])
    return deleted
