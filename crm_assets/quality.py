"""Checks written in Python: every raw row accounted for in staging, and raw freshness.

**Accounting** (:func:`account_rows`, check ``every_raw_row_accounted_for`` on each
``staging.<table>`` fed by ``raw.<table>``): every raw row, identified by ``(_file_sha256,
_row_number)``, must appear exactly once in ``staging.<table>`` or in ``staging.rejects``: none
missing (silently dropped), none twice (fanned out by a join, or both staged and rejected), none
unknown (a staged row that no raw row explains). It is evaluated by the staging asset itself, right
after it is rebuilt (:func:`staging_python_checks`, wired in by the factory), and is **blocking**:
when rows go missing, nothing downstream is built on the table.

**Freshness** (:func:`freshness`, check ``freshness`` on each ``raw.<table>``): the last file
loaded into the table (``meta.loaded_files``; a header-only file counts, as the export did run)
must be at most the table's limit old (``[tool.crm.freshness_hours]``, defaults in
:data:`crm_assets.settings.DEFAULT_FRESHNESS_HOURS`). Staleness is a warning (``WARN``), not a
reason to stop the pipeline. The check is one op for all raw tables (:func:`build_freshness_checks`)
in the writer pool: every run that loads raw tables runs it after them, and it can be run on its
own (from the UI, or the ``check_freshness`` job and its schedule) at any time, since staleness
grows while nothing runs. The raw asset's own materialisation also records the hours since its
last new file.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg
import duckdb

from crm_assets.contracts import SOURCES
from crm_assets.settings import Settings

ACCOUNTING_CHECK = "every_raw_row_accounted_for"
FRESHNESS_CHECK = "freshness"


def _exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
        [schema, table]).fetchone()[0])


# --------------------------------------------------------------------------------------------
# accounting


@dataclass(frozen=True)
class Accounting:
    """Where the rows of ``raw.<table>`` went. ``ok`` iff nothing is missing, twice or unknown."""

    table: str
    raw_rows: int
    staged_rows: int
    rejected_rows: int
    missing_rows: int
    duplicated_rows: int
    unknown_rows: int
    examples: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.missing_rows or self.duplicated_rows or self.unknown_rows)


def account_rows(con: duckdb.DuckDBPyConnection, table: str, examples: int = 5) -> Accounting:
    """Match every row of ``raw.<table>`` with its rows in ``staging.<table>`` + rejects.

    One full outer join of per-key counts (two hash aggregates), so it stays cheap at millions of
    rows. ``duplicated_rows`` counts the extra appearances (a key seen 3 times counts 2), also of a
    key repeated in raw itself, which ``meta.loaded_files`` should make impossible.

    Args:
        examples: how many offending keys (``file#row: problem``) to describe at most.
    """
    outputs = f"""
        SELECT _file_sha256 AS sha, _row_number AS rn FROM staging."{table}"
        UNION ALL
        SELECT _file_sha256, _row_number FROM staging.rejects WHERE table_name = $table"""
    keyed = f"""
        WITH r AS (SELECT _file_sha256 AS sha, _row_number AS rn, any_value(_source_file) AS file,
                          count(*) AS n_raw
                   FROM raw."{table}" GROUP BY ALL),
             o AS (SELECT sha, rn, count(*) AS n_out FROM ({outputs}) GROUP BY ALL)
        SELECT * FROM r FULL OUTER JOIN o USING (sha, rn)"""
    params = {"table": table}
    missing, duplicated, unknown, raw_rows = con.execute(
        f"""SELECT count(*) FILTER (WHERE n_out IS NULL),
                   coalesce(sum(coalesce(n_out, 0) + coalesce(n_raw, 0) - 2)
                            FILTER (WHERE n_out + n_raw > 2), 0),
                   count(*) FILTER (WHERE n_raw IS NULL),
                   coalesce(sum(n_raw), 0)
            FROM ({keyed})""", params).fetchone()
    staged = con.execute(f'SELECT count(*) FROM staging."{table}"').fetchone()[0]
    rejected = con.execute("SELECT count(*) FROM staging.rejects WHERE table_name = $table",
                           params).fetchone()[0]
    found: tuple[str, ...] = ()
    if missing or duplicated or unknown:
        found = tuple(r[0] for r in con.execute(
            f"""SELECT coalesce(file, 'sha256 ' || left(sha, 12)) || '#' || coalesce(rn::VARCHAR,
                       'NULL') || ': ' || CASE WHEN n_out IS NULL THEN 'missing'
                                               WHEN n_raw IS NULL THEN 'not in raw'
                                               ELSE 'appears ' || (n_out + n_raw - 1) || ' times'
                                          END
                FROM ({keyed}) WHERE n_out IS NULL OR n_raw IS NULL OR n_out + n_raw > 2
                ORDER BY file, rn LIMIT {int(examples)}""", params).fetchall())
    return Accounting(table, int(raw_rows), int(staged), int(rejected), int(missing),
                      int(duplicated), int(unknown), found)


def accounting_result(con: duckdb.DuckDBPyConnection, table: str) -> dg.AssetCheckResult:
    """:func:`account_rows` as the blocking check result of ``staging.<table>``."""
    key = dg.AssetKey(["staging", table])
    if not _exists(con, "raw", table):
        return dg.AssetCheckResult(asset_key=key, check_name=ACCOUNTING_CHECK, passed=True,
                                   description=f"raw.{table} does not exist yet: nothing to "
                                               "account for")
    try:
        a = account_rows(con, table)
    except duckdb.BinderException as err:  # a staging table without its lineage columns
        return dg.AssetCheckResult(
            asset_key=key, check_name=ACCOUNTING_CHECK, passed=False,
            description=f"staging.{table} cannot be matched to raw.{table}: {err}")
    summary = (f"{a.raw_rows} raw rows = {a.staged_rows} staged + {a.rejected_rows} rejected"
               if a.ok else
               f"{a.missing_rows} raw rows missing, {a.duplicated_rows} extra appearances, "
               f"{a.unknown_rows} rows not from raw")
    meta = {"raw_rows": a.raw_rows, "staged_rows": a.staged_rows,
            "rejected_rows": a.rejected_rows, "missing_rows": a.missing_rows,
            "duplicated_rows": a.duplicated_rows, "unknown_rows": a.unknown_rows}
    if a.examples:
        meta["examples"] = dg.MetadataValue.json(list(a.examples))
    return dg.AssetCheckResult(asset_key=key, check_name=ACCOUNTING_CHECK, passed=a.ok,
                               severity=dg.AssetCheckSeverity.ERROR, description=summary,
                               metadata=meta)


@dataclass(frozen=True)
class PythonCheck:
    """A check the asset's own op evaluates after materialising: its spec and how to run it."""

    spec: dg.AssetCheckSpec
    evaluate: Callable[[duckdb.DuckDBPyConnection], dg.AssetCheckResult]


def staging_python_checks(layer: str, name: str, splits_rejects: bool) -> list[PythonCheck]:
    """The Python checks of the definition ``<layer>.<name>``: accounting for staging tables.

    Only a staging table fed by a source table (``raw.<name>``) and splitting rejects (it outputs
    ``_problem`` or ``_reject_reason``) gets one.
    """
    if layer != "staging" or name not in SOURCES or not splits_rejects:
        return []
    spec = dg.AssetCheckSpec(
        name=ACCOUNTING_CHECK, asset=dg.AssetKey(["staging", name]), blocking=True,
        description=f"Every row of raw.{name} (by _file_sha256, _row_number) is in "
                    f"staging.{name} or staging.rejects exactly once: no loss, no duplicate.")
    return [PythonCheck(spec, lambda con: accounting_result(con, name))]


# --------------------------------------------------------------------------------------------
# freshness


@dataclass(frozen=True)
class Freshness:
    """How old the newest file of a raw table is, against its limit."""

    table: str
    limit_hours: float
    files: int
    last_loaded_at: datetime | None
    last_file: str | None
    age_hours: float | None

    @property
    def ok(self) -> bool:
        if self.age_hours is None:
            return not SOURCES[self.table].required
        return self.age_hours <= self.limit_hours


def freshness(con: duckdb.DuckDBPyConnection, table: str, limit_hours: float,
              now: datetime | None = None) -> Freshness:
    """The age of the last file loaded into ``raw.<table>`` at ``now`` (default: the clock).

    A table that never had a file is fresh if it is optional (it may legitimately not exist) and
    stale if it is required.
    """
    now = now or datetime.now(UTC)
    files, last, name = 0, None, None
    if _exists(con, "meta", "loaded_files"):
        files, last, name = con.execute(
            "SELECT count(*), max(loaded_at), arg_max(source_file, loaded_at) "
            "FROM meta.loaded_files WHERE table_name = ?", [table]).fetchone()
    age = None if last is None else (now - last).total_seconds() / 3600
    return Freshness(table, float(limit_hours), int(files), last, name, age)


def freshness_result(f: Freshness) -> dg.AssetCheckResult:
    """:class:`Freshness` as the (``WARN``) check result of ``raw.<table>``."""
    if f.age_hours is None:
        text = (f"no file was ever loaded into raw.{f.table}"
                + (" (optional table)" if f.ok else " (required table)"))
    else:
        text = (f"last new file {f.age_hours:.1f} h ago ({f.last_file}); limit "
                f"{f.limit_hours:g} h" + ("" if f.ok else ": STALE"))
    meta: dict = {"limit_hours": f.limit_hours, "files_loaded": f.files}
    if f.age_hours is not None:
        meta.update({"hours_since_new_file": round(f.age_hours, 2),
                     "last_file": f.last_file or "",
                     "last_file_loaded_at": dg.MetadataValue.timestamp(f.last_loaded_at)})
    return dg.AssetCheckResult(asset_key=dg.AssetKey(["raw", f.table]),
                               check_name=FRESHNESS_CHECK, passed=f.ok,
                               severity=dg.AssetCheckSeverity.WARN, description=text,
                               metadata=meta)


def build_freshness_checks(settings: Settings, pool: str | None = None,
                           clock: Callable[[], datetime] | None = None
                           ) -> dg.AssetChecksDefinition:
    """One op checking the freshness of every raw table (any subset of them can be selected).

    It reads the warehouse through the ``warehouse`` resource, so it belongs in the writer
    ``pool``: DuckDB refuses even a read-only open while another process writes.

    Args:
        clock: what "now" is (default: the system clock), for tests.
    """
    specs = [dg.AssetCheckSpec(
        name=FRESHNESS_CHECK, asset=dg.AssetKey(["raw", table]), blocking=False,
        description=f"A new file reached raw.{table} within the last "
                    f"{settings.freshness_limit_hours(table):g} h "
                    "([tool.crm.freshness_hours]).") for table in SOURCES]

    @dg.multi_asset_check(specs=specs, name="raw_freshness", can_subset=True, pool=pool,
                          required_resource_keys={"warehouse"},
                          description="Hours since each raw table last received a new file.")
    def _freshness(context: dg.AssetCheckExecutionContext):
        now = clock() if clock else datetime.now(UTC)
        with context.resources.warehouse.connect() as con:
            for check_key in sorted(context.selected_asset_check_keys,
                                    key=lambda k: k.asset_key.to_user_string()):
                table = check_key.asset_key.path[-1]
                f = freshness(con, table, settings.freshness_limit_hours(table), now)
                if not f.ok:
                    context.log.warning(f"raw.{table}: {freshness_result(f).description}")
                yield freshness_result(f)

    return _freshness
