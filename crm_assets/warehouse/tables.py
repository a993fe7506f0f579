"""The tables the framework itself owns, each declared once: DDL and published schemas follow.

SQL files define the models, segments and events; the tables below are written by the framework's
Python code (loading, history, rejects, identity). Each is one :class:`FrameworkTable`: its ``DDL``
(:func:`ensure_framework_tables`), the schema the SQL catalogue validates definitions against
(:func:`readable_schemas`) and the Dagster column schemas all come from here.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field

import duckdb

from crm_assets.layers import SCHEMAS
from crm_assets.quoting import identifier, literal, table

TIMESTAMPTZ = "TIMESTAMP WITH TIME ZONE"  # as DuckDB's DESCRIBE names it

Schema = list[tuple[str, str]]


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool = False
    description: str = ""


@dataclass(frozen=True)
class FrameworkTable:
    """One table (or view) of the framework.

    Attributes:
        written_by: which assets write it, for the asset graph: ``"identity"`` (the
            ``core/customer_identity`` asset), ``"segments"`` (every segment asset) or ``"own"``
            (a Python asset of the same key); ``None`` for bookkeeping no SQL definition may read.
        view_sql: for a view, its query (the columns are then what it outputs).
        renamed: old column name -> new one, applied to an existing warehouse on connect.
    """

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    written_by: str | None = None
    description: str = ""
    view_sql: str | None = None
    renamed: dict[str, str] = field(default_factory=dict)

    @property
    def schema(self) -> Schema:
        """``[(column, type)]``, as the catalogue and Dagster's column schema take it."""
        return [(c.name, c.type) for c in self.columns]

    def ddl(self) -> str:
        if self.view_sql is not None:
            return f"CREATE VIEW IF NOT EXISTS {table(self.name)} AS\n{self.view_sql}"
        columns = [f"{identifier(c.name)} {c.type}" + (" NOT NULL" if c.not_null else "")
                   for c in self.columns]
        if self.primary_key:
            columns.append(f"PRIMARY KEY ({', '.join(map(identifier, self.primary_key))})")
        return f"CREATE TABLE IF NOT EXISTS {table(self.name)} (\n    " + ",\n    ".join(
            columns) + "\n)"


def _c(name: str, type_: str, not_null: bool = False, description: str = "") -> Column:
    return Column(name, type_, not_null, description)


LOADED_FILES = FrameworkTable(
    "meta.loaded_files",
    (_c("table_name", "VARCHAR", True), _c("source_file", "VARCHAR", True),
     _c("file_sha256", "VARCHAR", True), _c("row_count", "BIGINT", True),
     _c("loaded_at", TIMESTAMPTZ, True), _c("run_id", "VARCHAR"), _c("file_size", "BIGINT"),
     _c("file_mtime_ns", "BIGINT"), _c("suppressed_rows", "BIGINT")),
    primary_key=("table_name", "file_sha256"),
    description="Every file loaded into raw, once by its sha256, in the transaction of its rows; "
                "its size and modification time let a later run skip it without reading it.")

DUPLICATE_FILES = FrameworkTable(
    "meta.duplicate_files",
    (_c("table_name", "VARCHAR", True), _c("source_file", "VARCHAR", True),
     _c("file_sha256", "VARCHAR", True), _c("file_size", "BIGINT", True),
     _c("file_mtime_ns", "BIGINT", True), _c("seen_at", TIMESTAMPTZ, True),
     _c("run_id", "VARCHAR")),
    primary_key=("table_name", "source_file"),
    description="Files whose bytes were already loaded under another name (meta.loaded_files): "
                "never loaded; their size and modification time let a later run skip them "
                "without reading them again.")

REFUSED_FILES = FrameworkTable(
    "meta.refused_files",
    (_c("table_name", "VARCHAR", True), _c("source_file", "VARCHAR", True),
     _c("file_sha256", "VARCHAR", True), _c("reason", "VARCHAR", True),
     _c("refused_at", TIMESTAMPTZ, True), _c("run_id", "VARCHAR"), _c("set_aside_to", "VARCHAR")),
    description="Every file refused whole (nothing of it loaded), why, and where it was moved "
                "(set_aside_to, the `_refused/` folder beside it; NULL if it could not be moved).")

DEFINITION_VERSIONS = FrameworkTable(
    "meta.definition_versions",
    (_c("name", "VARCHAR", True), _c("layer", "VARCHAR", True),
     _c("definition_version", "VARCHAR", True), _c("sql", "VARCHAR", True),
     _c("first_materialized_at", TIMESTAMPTZ, True), _c("run_id", "VARCHAR")),
    primary_key=("layer", "name", "definition_version"),
    description="The first materialisation of each version of each definition, with its SQL.",
    renamed={"version": "definition_version"})

SEGMENT_MEMBERSHIP_HISTORY = FrameworkTable(
    "marts.segment_membership_history",
    (_c("segment", "VARCHAR", True, "The segment's name (segments.<segment>)."),
     _c("customer_id", "BIGINT", True, "The member's stable warehouse id."),
     _c("valid_from", "DATE", True, "The first day of the membership (inclusive)."),
     _c("valid_to", "DATE", False, "The first day the person was no longer a member "
                                   "(exclusive); NULL: still a member as of the last day "
                                   "computed."),
     _c("definition_version", "VARCHAR", True, "The version of the segment's SQL definition "
                                               "when the membership began.")),
    written_by="segments",
    description="Who was in each segment when (SCD2: valid_from inclusive, valid_to exclusive).",
    renamed={"version": "definition_version"})

SEGMENT_RUNS = FrameworkTable(
    "meta.segment_runs",
    (_c("segment", "VARCHAR", True), _c("as_of_date", "DATE", True),
     _c("definition_version", "VARCHAR", True), _c("members", "BIGINT", True),
     _c("entered", "BIGINT", True), _c("exited", "BIGINT", True), _c("run_id", "VARCHAR"),
     _c("computed_at", TIMESTAMPTZ, True)),
    written_by="segments",
    description="Each segment's members, entries and exits per as-of day computed.",
    renamed={"version": "definition_version"})

REJECTS = FrameworkTable(
    "staging.rejects",
    (_c("table_name", "VARCHAR", True), _c("_source_file", "VARCHAR"),
     _c("_file_sha256", "VARCHAR"), _c("_row_number", "BIGINT"), _c("reason", "VARCHAR", True),
     _c("raw_row", "JSON"), _c("rejected_at", TIMESTAMPTZ, True), _c("grain_key", "VARCHAR"),
     _c("reference_keys", "VARCHAR[]")),
    description="Every raw row staging could not use, with why, and the row as JSON; "
                "grain_key is the row's key (JSON list of its grain values) when it has one, "
                "reference_keys the keys of other staging tables it names ('column=value'), "
                "so that it is judged again when one of them changes.")

CUSTOMER_IDENTITY = FrameworkTable(
    "core.customer_identity",
    (_c("source_customer_id", "VARCHAR"), _c("customer_id", "BIGINT", True),
     _c("first_seen_at", TIMESTAMPTZ), _c("match_rule", "VARCHAR"), _c("_batch", "BIGINT")),
    primary_key=("source_customer_id",), written_by="identity",
    description="Every source customer record mapped to one stable customer_id.")

CUSTOMER_MERGES = FrameworkTable(
    "meta.customer_merges",
    (_c("from_customer_id", "BIGINT"), _c("to_customer_id", "BIGINT"),
     _c("merged_at", TIMESTAMPTZ), _c("reason", "VARCHAR"), _c("_batch", "BIGINT")),
    written_by="identity",
    description="One row per merge of two existing persons: the younger id redirects to the older.")

CUSTOMER_ID_REDIRECTS = FrameworkTable(
    "core.customer_id_redirects",
    (_c("from_customer_id", "BIGINT"), _c("to_customer_id", "BIGINT")),
    written_by="identity",
    description="Every merged-away id -> the id it stands for today (merge chains resolved).",
    view_sql="""with recursive chain (from_customer_id, to_customer_id, depth) as (
    select from_customer_id, to_customer_id, 1
    from meta.customer_merges
    union all
    select chain.from_customer_id, merges.to_customer_id, chain.depth + 1
    from chain
    inner join meta.customer_merges as merges
        on merges.from_customer_id = chain.to_customer_id
    where chain.depth < 1000
)
select distinct chain.from_customer_id, chain.to_customer_id
from chain
where not exists (
    select 1 from meta.customer_merges as later
    where later.from_customer_id = chain.to_customer_id
)""")

STAGED_FILES = FrameworkTable(
    "meta.staged_files",
    (_c("table_name", "VARCHAR", True), _c("file_sha256", "VARCHAR", True),
     _c("staged_at", TIMESTAMPTZ, True), _c("run_id", "VARCHAR")),
    primary_key=("table_name", "file_sha256"),
    description="Which raw files each staging table has judged: a night judges only the others.")

WATERMARKS = FrameworkTable(
    "meta.watermarks",
    (_c("consumer", "VARCHAR", True), _c("source", "VARCHAR", True),
     _c("batch", "BIGINT", True)),
    primary_key=("consumer", "source"),
    description="The last batch of each source table a table has taken in (rows with a larger "
                "_batch are new to it), moved in the transaction that takes them in.")

BUILT_VERSIONS = FrameworkTable(
    "meta.built_versions",
    (_c("table_name", "VARCHAR", True), _c("definition_version", "VARCHAR", True),
     _c("batch", "BIGINT", True), _c("built_at", TIMESTAMPTZ, True), _c("grain", "VARCHAR[]"),
     _c("inputs", "VARCHAR", description="For a table computed whole: a digest of what it was "
        "computed from (the batch of each table it read, the as-of date and the session's "
        "settings); a run finding the same inputs leaves the table as it is.")),
    primary_key=("table_name",),
    description="The definition version (and grain) each table holds now, and the batch that "
                "last changed it: another version on disk makes the next run rebuild an "
                "incremental table whole.")

IDENTITY_EVIDENCE = FrameworkTable(
    "meta.identity_evidence",
    (_c("source_customer_id", "VARCHAR", True), _c("name_key", "VARCHAR"),
     _c("email_key", "VARCHAR"), _c("phone", "VARCHAR")),
    description="The contacts and name each source record had when identity last resolved it: "
                "a record that changes them re-checks who shared the old ones.")

EMAIL_ADDRESSES = FrameworkTable(
    "staging.email_addresses",
    (_c("raw_value", "VARCHAR", True), _c("email", "VARCHAR"), _c("email_key", "VARCHAR"),
     _c("issue", "VARCHAR")),
    written_by="own",
    description="Every distinct e-mail as the CRM wrote it, validated once by email-validator: "
                "the address, its matching key, or why it is unusable.")

PHONE_NUMBERS = FrameworkTable(
    "staging.phone_numbers",
    (_c("raw_value", "VARCHAR", True), _c("phone", "VARCHAR"), _c("issue", "VARCHAR")),
    written_by="own",
    description="Every distinct phone as the CRM wrote it, read once by phonenumbers: E.164, or "
                "why it is unusable.")

EVENT_DAYS = FrameworkTable(
    "meta.event_days",
    (_c("event", "VARCHAR", True), _c("event_date", "DATE", True), _c("rows", "BIGINT", True),
     _c("batch", "BIGINT", True), _c("built_at", TIMESTAMPTZ, True)),
    primary_key=("event", "event_date"),
    description="Each day of each event as last built: its rows and the batch that built it "
                "(what changed for the trigger exports and the BI snapshot to follow).")

CHANGED_PARTS = FrameworkTable(
    "meta.changed_parts",
    (_c("table_name", "VARCHAR", True), _c("part", "VARCHAR", True),
     _c("batch", "BIGINT", True)),
    description="The months (of a table's date column, see month_column) a merge wrote or "
                "deleted rows in, by batch; '*' when a build rewrote the whole table; for the "
                "segment membership history, 'open' and the month a segment closed rows in. The "
                "BI snapshot rewrites just those parts.")

CLV_MODELS = FrameworkTable(
    "meta.clv_models",
    (_c("model_version", "VARCHAR", True), _c("fitted_at", TIMESTAMPTZ, True),
     _c("run_id", "VARCHAR"), _c("calibration_end", "DATE", True), _c("holdout_end", "DATE"),
     _c("time_unit", "VARCHAR", True), _c("population", "BIGINT", True),
     _c("sample_size", "BIGINT", True), _c("sample_seed", "VARCHAR"),
     _c("r", "DOUBLE", True), _c("alpha", "DOUBLE", True), _c("a", "DOUBLE", True),
     _c("b", "DOUBLE", True), _c("log_likelihood", "DOUBLE", True),
     _c("repeat_customers", "BIGINT", True), _c("p", "DOUBLE"), _c("q", "DOUBLE"),
     _c("gamma", "DOUBLE"), _c("gg_log_likelihood", "DOUBLE"),
     _c("monthly_discount_rate", "DOUBLE", True), _c("holdout_predicted", "DOUBLE"),
     _c("holdout_actual", "DOUBLE"), _c("holdout_error", "DOUBLE"),
     _c("holdout_by_frequency", "JSON"), _c("converged", "BOOLEAN", True),
     _c("parameters_at_bound", "VARCHAR"),
     _c("fit_seconds", "DOUBLE", True), _c("libraries", "JSON", True)),
    primary_key=("model_version",), written_by="own",
    description="Every fit of the customer-base models (BG/NBD and Gamma-Gamma, times in weeks): "
                "parameters, log-likelihoods, the sample, the holdout check and the libraries; "
                "core.customer_predictions scores with the latest fitted up to its as-of day.")

ERASURES = FrameworkTable(
    "meta.erasures",
    (_c("erasure_id", "VARCHAR", True), _c("requested_at", TIMESTAMPTZ, True),
     _c("reason", "VARCHAR"), _c("selector", "VARCHAR", True),
     _c("customer_ids", "BIGINT[]", True), _c("source_records", "BIGINT", True),
     _c("rows_deleted", "JSON", True), _c("run_id", "VARCHAR")),
    primary_key=("erasure_id",),
    description="Every erasure request (crm erase): when, why, how the person was named "
                "(customer, source_id, email or phone; never the value), the warehouse ids "
                "erased and the rows deleted per table. No personal data.")

SUPPRESSIONS = FrameworkTable(
    "meta.suppressions",
    (_c("kind", "VARCHAR", True), _c("key_hash", "VARCHAR", True), _c("erasure_id", "VARCHAR")),
    primary_key=("kind", "key_hash"),
    description="Keyed hashes of what erased people were known by (source ids, e-mail keys, "
                "phones, order ids): rows carrying one are dropped as their file loads.")

IDENTITY_SPLITS = FrameworkTable(
    "meta.identity_splits",
    (_c("split_id", "VARCHAR", True), _c("source_customer_id", "VARCHAR", True),
     _c("side", "VARCHAR", True)),
    description="Each unmerge's decision: the records split off ('split') and those kept "
                "('kept') are never one person again, however later records link them.")

CUSTOMER_UNMERGES = FrameworkTable(
    "meta.customer_unmerges",
    (_c("split_id", "VARCHAR", True), _c("customer_id", "BIGINT", True),
     _c("new_customer_id", "BIGINT", True), _c("records", "BIGINT", True),
     _c("reason", "VARCHAR"), _c("unmerged_at", TIMESTAMPTZ, True), _c("run_id", "VARCHAR"),
     _c("_batch", "BIGINT")),
    description="Every unmerge (crm unmerge): the person split, the new id the named records "
                "took (never a reused one), how many records, why. meta.customer_merges keeps "
                "the merges as they were.")

RFM_SEGMENT_MAP = FrameworkTable(
    "core.rfm_segment_map",
    (_c("rfm_segment", "VARCHAR", True, "The named segment (champions, at_risk, ...)."),
     _c("label", "VARCHAR", True, "Its name as marketers say it (Champions, At Risk, ...)."),
     _c("description", "VARCHAR", False, "Who they are and what to do with them."),
     *(_c(f"{score}_{end}", "INTEGER", True, f"The {end}imum {score} score (1-5) of this range.")
       for score in ("recency", "frequency", "monetary") for end in ("min", "max"))),
    written_by="own",
    description="The RFM map: which (recency, frequency, monetary) scores, 1-5 each, make which "
                "named segment; one or more ranges per name, every one of the 125 combinations "
                "in exactly one. Loaded from seeds/reference/rfm_segment_map.csv.")

HIGHEST_ID_SQL = """
select greatest(
    (select coalesce(max(customer_id), 0) from core.customer_identity),
    (select coalesce(max(from_customer_id), 0) from meta.customer_merges),
    (select coalesce(max(id), 0) from (select unnest(customer_ids) as id from meta.erasures)),
    (select coalesce(max(new_customer_id), 0) from meta.customer_unmerges)
)"""
"""The largest id ever handed out, merged away, erased or split off: new ids start above it, so
no id ever names two people."""

FRAMEWORK_TABLES: tuple[FrameworkTable, ...] = (
    LOADED_FILES, DUPLICATE_FILES, REFUSED_FILES, DEFINITION_VERSIONS,
    SEGMENT_MEMBERSHIP_HISTORY, SEGMENT_RUNS, REJECTS, CUSTOMER_IDENTITY, CUSTOMER_MERGES,
    CUSTOMER_ID_REDIRECTS, STAGED_FILES, WATERMARKS, BUILT_VERSIONS, IDENTITY_EVIDENCE,
    EMAIL_ADDRESSES, PHONE_NUMBERS, EVENT_DAYS, CHANGED_PARTS, CLV_MODELS, ERASURES,
    SUPPRESSIONS, IDENTITY_SPLITS, CUSTOMER_UNMERGES, RFM_SEGMENT_MAP,
)

MONTH_COLUMNS: tuple[str, ...] = ("event_date", "ordered_at", "occurred_at", "started_at")
"""A table holding one of these (the first found) is split by month of it where that pays: the BI
snapshot writes one file per month, so a night rewrites the months it touched, not the table."""


OPEN_PART = "open"
CLOSED_BY_MONTH: dict[str, str] = {SEGMENT_MEMBERSHIP_HISTORY.name: "valid_to"}
"""Tables that only grow at their open rows: split into those (the column ``NULL``: still
current, :data:`OPEN_PART`) and the closed rows by month of the column, which a night never
changes (history only moves forward). A night rewrites the open rows and the month it closed
rows in, not a history of every day since the warehouse began (25M rows after two years at 1M
persons). Their writers record those parts in ``meta.changed_parts`` (``'*'``: a rebuild).
"""


def month_column(columns: list[str]) -> str | None:
    """The column a table with ``columns`` is split by month of, if any."""
    return next((c for c in MONTH_COLUMNS if c in columns), None)
"""Every framework table, in creation order (a view after the tables it reads)."""


BATCHES = "meta.batches"
"""The sequence every writing step takes its batch from (:mod:`crm_assets.warehouse.state`)."""


def readable_schemas() -> dict[str, Schema]:
    """The framework tables SQL definitions may read (those an asset writes), with columns."""
    return {t.name: t.schema for t in FRAMEWORK_TABLES if t.written_by is not None}


def ensure_framework_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create every layer's schema and every framework table that does not exist yet.

    Columns renamed since an older release are renamed in place first, so a warehouse built by
    it keeps its data. One catalogue query decides; a warehouse that has everything (every step
    of every run opens one) gets no DDL.
    """
    try:  # what the warehouse says it has: one row, instead of the catalogue (every step opens)
        if con.execute(f"SELECT fingerprint FROM {FRAMEWORK_STAMP}").fetchone() == (
                framework_fingerprint(),):
            return
    except duckdb.CatalogException:
        pass
    present = {(r[0], r[1]) for r in con.execute(
        """SELECT schema_name || '.' || table_name, column_name FROM duckdb_columns()
           WHERE database_name = current_database() AND schema_name IN ('meta', 'marts',
                 'staging', 'core')""").fetchall()}
    tables = {t for t, _ in present}
    renames = [(t, old, new) for t in FRAMEWORK_TABLES for old, new in t.renamed.items()
               if (t.name, old) in present and (t.name, new) not in present]
    added = [(t, c) for t in FRAMEWORK_TABLES if t.name in tables and t.view_sql is None
             for c in t.columns if (t.name, c.name) not in present
             and c.name not in t.renamed.values()]
    sequence = con.execute("SELECT count(*) FROM duckdb_sequences() WHERE database_name = "
                           "current_database() AND schema_name = 'meta' AND sequence_name = "
                           "'batches'").fetchone()[0]
    if (not renames and not added and sequence
            and all(t.name in tables for t in FRAMEWORK_TABLES)):
        _stamp(con)
        return
    con.execute(";\n".join(f"CREATE SCHEMA IF NOT EXISTS {identifier(s)}" for s in SCHEMAS))
    for t, old, new in renames:
        con.execute(f"ALTER TABLE {table(t.name)} RENAME COLUMN {identifier(old)} "
                    f"TO {identifier(new)}")
    for t, c in added:  # columns a newer release added: NULL on the rows already there
        con.execute(f"ALTER TABLE {table(t.name)} ADD COLUMN {identifier(c.name)} {c.type}")
    con.execute(";\n".join(t.ddl() for t in FRAMEWORK_TABLES))
    con.execute(f"CREATE SEQUENCE IF NOT EXISTS {BATCHES}")
    _stamp(con)


FRAMEWORK_STAMP = "meta.framework"
"""One row: the fingerprint of the framework tables the warehouse was last brought up to."""


@functools.cache
def framework_fingerprint() -> str:
    """What :func:`ensure_framework_tables` makes: every table's DDL and renames, the sequence."""
    text = "\n".join([*(t.ddl() + repr(sorted(t.renamed.items())) for t in FRAMEWORK_TABLES),
                      BATCHES])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _stamp(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE OR REPLACE TABLE {FRAMEWORK_STAMP} AS "
                f"SELECT {literal(framework_fingerprint())} AS fingerprint")
