"""The input contract: which source tables exist, their columns, types and which are required.

Raw tables keep what the file said, every value as text, so that nothing a source sends is lost
before staging has had a chance to judge it (a comma-decimal amount or a ``31.02.1990`` birth date
is dirt to clean, not a reason to refuse a whole file). The *declared* type of each column below is
the contract staging enforces row by row: a value that cannot be read as its type sends its row to
``staging.rejects`` with the file, the row number and the reason.

A file is refused whole, naming the file and the column, when its header lacks a required column,
because then every row would be wrong in the same way. Columns the contract does not know are
ignored (and logged): exports often carry more than the warehouse needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from crm_assets.quoting import identifier

LINEAGE_COLUMNS: dict[str, str] = {
    "_source_file": "VARCHAR",
    "_file_sha256": "VARCHAR",
    "_row_number": "BIGINT",
    "_loaded_at": "TIMESTAMPTZ",
}
"""Columns every raw row carries: where it came from, so any later row can be traced back."""

OPT_IN = "yes/no, да/нет, 1/0, true/false; empty or absent: no consent recorded."
"""What a consent column accepts, and what its absence means."""


@dataclass(frozen=True)
class Column:
    """One source column: its name, the type staging reads it as, and whether it must be present."""

    name: str
    type: str
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class SourceTable:
    """One source table of the CRM export: ``<input dir>/<name>.csv`` lands in ``raw.<name>``."""

    name: str
    columns: tuple[Column, ...]
    required: bool
    key: tuple[str, ...]
    description: str

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]


def _c(name: str, type_: str, required: bool = False, description: str = "") -> Column:
    return Column(name, type_, required, description)


SOURCES: dict[str, SourceTable] = {
    t.name: t
    for t in (
        SourceTable(
            "stores",
            (
                _c("store_id", "VARCHAR", True, "Store code."),
                _c("store_name", "VARCHAR", True),
                _c("city", "VARCHAR", True, "City name as the CRM spells it."),
                _c("timezone", "VARCHAR", True, "IANA zone of the store, e.g. Asia/Novosibirsk."),
                _c("opened_on", "DATE"),
            ),
            required=False,
            key=("store_id",),
            description="Shops of the chain. Store-local timestamps are read in the store's zone.",
        ),
        SourceTable(
            "products",
            (
                _c("product_id", "VARCHAR", True),
                _c("product_name", "VARCHAR", True),
                _c("category", "VARCHAR", True, "croissant, coffee, tea, bread, pastry, ..."),
                _c("unit_price", "DECIMAL(10,2)"),
                _c("is_active", "BOOLEAN"),
            ),
            required=False,
            key=("product_id",),
            description="Catalogue of what is sold.",
        ),
        SourceTable(
            "customers",
            (
                _c("customer_id", "VARCHAR", True, "The source system's id of this record."),
                _c("first_name", "VARCHAR"),
                _c("last_name", "VARCHAR"),
                _c("email", "VARCHAR"),
                _c("phone", "VARCHAR", description="Any common Russian format."),
                _c("gender", "VARCHAR", description="М/Ж, m/f, male/female, муж/жен."),
                _c("birth_date", "DATE", description="ISO, dd.mm.yyyy or dd/mm/yy."),
                _c("city", "VARCHAR"),
                _c("home_store_id", "VARCHAR", description="Store where the card was issued; empty "
                   "or absent: times are read in the business time zone."),
                _c("registered_at", "TIMESTAMP", description="Local time of the home store "
                   "(ISO or day first; a UTC offset wins)."),
                _c("email_opt_in", "BOOLEAN", description=OPT_IN),
                _c("sms_opt_in", "BOOLEAN", description=OPT_IN),
                _c("push_opt_in", "BOOLEAN", description=OPT_IN),
                _c("updated_at", "TIMESTAMP", description="Local time of the home store "
                   "(ISO or day first; a UTC offset wins)."),
            ),
            required=True,
            key=("customer_id",),
            description="Customer records as the CRM holds them: one person may appear many times.",
        ),
        SourceTable(
            "orders",
            (
                _c("order_id", "VARCHAR", True),
                _c("customer_id", "VARCHAR", True, "Source customer id; may be empty (guest)."),
                _c("store_id", "VARCHAR", description="Empty or absent: no store; the time "
                   "is read in the business time zone."),
                _c("ordered_at", "TIMESTAMP", True,
                   "Local time of the store (ISO or day first; a UTC offset wins)."),
                _c("channel", "VARCHAR", description="in_store, app, web, delivery; empty or "
                   "absent: unknown."),
                _c("status", "VARCHAR", description="completed, cancelled, refunded; empty or "
                   "absent: completed."),
                _c("total_amount", "DECIMAL(12,2)",
                   description="In the business's currency; comma decimals accepted."),
            ),
            required=True,
            key=("order_id",),
            description="Purchases (receipts).",
        ),
        SourceTable(
            "order_items",
            (
                _c("order_id", "VARCHAR", True),
                _c("line_number", "INTEGER", True),
                _c("product_id", "VARCHAR", True),
                _c("quantity", "INTEGER"),
                _c("unit_price", "DECIMAL(10,2)"),
            ),
            required=False,
            key=("order_id", "line_number"),
            description="Lines of each order.",
        ),
        SourceTable(
            "interactions",
            (
                _c("interaction_id", "VARCHAR", True),
                _c("customer_id", "VARCHAR", True),
                _c("channel", "VARCHAR", True, "email, sms, push."),
                _c("interaction_type", "VARCHAR", True, "sent, opened, clicked, unsubscribed."),
                _c("campaign_id", "VARCHAR"),
                _c("occurred_at", "TIMESTAMPTZ", True,
                   "ISO 8601 with offset; without one, business time zone."),
            ),
            required=False,
            key=("interaction_id",),
            description="Marketing messages and the customer's responses.",
        ),
        SourceTable(
            "sessions",
            (
                _c("session_id", "VARCHAR", True),
                _c("customer_id", "VARCHAR"),
                _c("device", "VARCHAR", description="web, ios, android."),
                _c("started_at", "TIMESTAMPTZ", True,
                   "ISO 8601 with offset; without one, business time zone."),
                _c("duration_seconds", "INTEGER"),
                _c("page_views", "INTEGER"),
                _c("utm_source", "VARCHAR"),
            ),
            required=False,
            key=("session_id",),
            description="Web and app sessions of logged-in customers.",
        ),
    )
}


RAW_EXTRA_COLUMNS: dict[str, str] = {"_parse_error": "VARCHAR"}
"""A raw row that could not be split into the contract's columns says why here (else NULL)."""


class SourceFileError(ValueError):
    """A file that breaks the input contract; the message names the file, line and column."""


def raw_schema(source: SourceTable) -> list[tuple[str, str]]:
    """The columns of ``raw.<source>``: contract columns as text, parse errors, then lineage."""
    return ([(c.name, "VARCHAR") for c in source.columns] + list(RAW_EXTRA_COLUMNS.items())
            + list(LINEAGE_COLUMNS.items()))


def raw_ddl(source: SourceTable) -> str:
    """``CREATE TABLE IF NOT EXISTS raw.<source>`` with :func:`raw_schema`'s columns."""
    cols = ", ".join(f"{identifier(name)} {type_}" for name, type_ in raw_schema(source))
    return f"CREATE TABLE IF NOT EXISTS raw.{identifier(source.name)} ({cols})"


def raw_schemas() -> dict[str, list[tuple[str, str]]]:
    """``{"raw.<table>": columns}`` for every source table."""
    return {f"raw.{name}": raw_schema(source) for name, source in SOURCES.items()}
