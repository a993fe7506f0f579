"""Asset checks: the data tests of SQL headers, raw rows accounted for, raw freshness.

* **Data tests** (:mod:`crm_assets.catalog.data_tests`): each declared test is an asset check of
  its definition, evaluated by the asset's own step right after it materialises; blocking unless
  the header says ``severity: warn``.
* **Accounting** (:mod:`crm_assets.warehouse.accounting`, check ``every_raw_row_accounted_for``
  on each ``staging.<table>`` fed by ``raw.<table>``), blocking: when rows go missing, nothing
  downstream is built on the table.
* **Reject rate** (:func:`~crm_assets.warehouse.accounting.reject_rate`, check ``reject_rate`` on
  the same tables), blocking: a run whose new raw rows are rejected above the limit
  (``[tool.crm.max_reject_rate]``, 20 %) builds nothing on the table, so "everything rejected" is
  never a green run.
* **Refused files** (check ``no_refused_files`` on each ``raw.<table>``, evaluated by the raw
  asset), not blocking: a refused file is set aside and the run goes on with the good ones; the
  check stays red while a refused file waits in a ``_refused/`` folder.
* **Freshness** (:mod:`crm_assets.ingest.freshness`, check ``freshness`` on each ``raw.<table>``),
  a warning. One op for all raw tables (:func:`build_freshness_checks`) in the writer pool: every
  run that loads raw tables runs it after them, and it can be run on its own (from the UI, or the
  ``check_freshness`` job and its schedule) at any time, since staleness grows while nothing runs.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg
import duckdb

from crm_assets.catalog import Definition
from crm_assets.catalog.data_tests import TestDeclaration
from crm_assets.ingest.contracts import SOURCES
from crm_assets.ingest.freshness import Freshness, freshness
from crm_assets.ingest.loader import Refused
from crm_assets.settings import Settings
from crm_assets.warehouse.accounting import account_rows, reject_rate
from crm_assets.warehouse.connection import table_exists
from crm_assets.warehouse.models import failing_rows
from crm_assets.warehouse.staging import TOUCHED

ACCOUNTING_CHECK = "every_raw_row_accounted_for"
FRESHNESS_CHECK = "freshness"
REJECT_RATE_CHECK = "reject_rate"
REFUSED_CHECK = "no_refused_files"


# --------------------------------------------------------------------------------------------
# data tests


@dataclass(frozen=True)
class DataTest:
    """One declared test of a definition bound to its asset: the check spec and the test."""

    spec: dg.AssetCheckSpec
    test: TestDeclaration


def data_tests(d: Definition, key: dg.AssetKey) -> list[DataTest]:
    """The grain's tests and the header's, as checks of ``key`` (validated when loaded)."""
    return [DataTest(dg.AssetCheckSpec(name=decl.name, asset=key, blocking=decl.blocking,
                                       description=f"{decl.kind} {decl.args}"
                                       + ("" if decl.blocking else " (warn)")), decl)
            for decl, _ in d.declarations]


def run_data_tests(con: duckdb.DuckDBPyConnection, tests: list[DataTest], relation: str,
                   written: str | None = None) -> list[dg.AssetCheckResult]:
    """Evaluate ``tests`` on ``relation`` (a table, or a subquery of a window of it); only on
    the rows ``written`` selects when given (what an incremental run wrote)."""
    results = []
    for t in tests:
        failing = failing_rows(con, t.test, relation, written)
        sql = t.test.failing_count_sql(relation, written)
        results.append(dg.AssetCheckResult(
            asset_key=t.spec.asset_key, check_name=t.spec.name, passed=failing == 0,
            severity=dg.AssetCheckSeverity.ERROR if t.test.blocking else dg.AssetCheckSeverity.WARN,
            description=f"{failing} row(s) fail {t.test.kind} {t.test.args}" if failing else None,
            metadata={"failing_rows": failing,
                      "sql": dg.MetadataValue.md(f"```sql\n{sql}\n```")}))
    return results


# --------------------------------------------------------------------------------------------
# accounting


def accounting_result(con: duckdb.DuckDBPyConnection, table: str) -> dg.AssetCheckResult:
    """:func:`account_rows` as the blocking check result of ``staging.<table>``."""
    key = dg.AssetKey(["staging", table])
    if not table_exists(con, f"raw.{table}"):
        return dg.AssetCheckResult(asset_key=key, check_name=ACCOUNTING_CHECK, passed=True,
                                   description=f"raw.{table} does not exist yet: nothing to "
                                               "account for")
    touched = con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary AND "
                          "table_name = ?", [TOUCHED]).fetchone()[0]
    try:
        a = account_rows(con, table, only=TOUCHED if touched else None)
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


def reject_rate_result(con: duckdb.DuckDBPyConnection, table: str, run_id: str,
                       limit: float) -> dg.AssetCheckResult:
    """:func:`reject_rate` of run ``run_id`` against ``limit`` as the blocking check result."""
    r = reject_rate(con, table, run_id)
    passed = r.rate <= limit
    reasons = ", ".join(f"{kind} {n}" for kind, n in r.reasons)
    text = (f"{r.rejected_rows} of {r.new_rows} new rows of raw.{table} rejected "
            f"({r.rate:.1%}; limit {limit:.0%})" + (f": {reasons}" if reasons else ""))
    if not passed:
        text += (f". Nothing downstream is built on staging.{table} this run: fix the source, "
                 f"or raise [tool.crm.max_reject_rate] {table} for a known-dirty source")
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(["staging", table]), check_name=REJECT_RATE_CHECK, passed=passed,
        severity=dg.AssetCheckSeverity.ERROR, description=text,
        metadata={"new_rows": r.new_rows, "rejected_rows": r.rejected_rows,
                  "reject_rate": round(r.rate, 4), "limit": limit,
                  "top_reasons": dg.MetadataValue.json(dict(r.reasons))})


@dataclass(frozen=True)
class PythonCheck:
    """A check the asset's own op evaluates after materialising: its spec and how to run it
    (given the connection and the run id)."""

    spec: dg.AssetCheckSpec
    evaluate: Callable[[duckdb.DuckDBPyConnection, str], dg.AssetCheckResult]


def staging_python_checks(layer: str, name: str, splits_rejects: bool,
                          settings: Settings) -> list[PythonCheck]:
    """The Python checks of the definition ``<layer>.<name>``: accounting and reject rate for
    staging tables.

    Only a staging table fed by a source table (``raw.<name>``) and splitting rejects (it outputs
    ``_problem`` or ``_reject_reason``) gets them.
    """
    if layer != "staging" or name not in SOURCES or not splits_rejects:
        return []
    key = dg.AssetKey(["staging", name])
    limit = settings.reject_rate_limit(name)
    accounting = dg.AssetCheckSpec(
        name=ACCOUNTING_CHECK, asset=key, blocking=True,
        description=f"Every row of raw.{name} (by _file_sha256, _row_number) is in "
                    f"staging.{name} or staging.rejects exactly once: no loss, no duplicate.")
    rate = dg.AssetCheckSpec(
        name=REJECT_RATE_CHECK, asset=key, blocking=True,
        description=f"At most {limit:.0%} of the raw rows of the files a run stages for the "
                    "first time are rejected (superseded versions not counted; "
                    "[tool.crm.max_reject_rate]).")
    return [PythonCheck(accounting, lambda con, run_id: accounting_result(con, name)),
            PythonCheck(rate, lambda con, run_id: reject_rate_result(con, name, run_id, limit))]


# --------------------------------------------------------------------------------------------
# refused files


def refused_spec(table: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name=REFUSED_CHECK, asset=dg.AssetKey(["raw", table]), blocking=False,
        description=f"No file of raw.{table} refused whole waits in a `_refused/` folder.")


def refused_result(table: str, waiting: list[Refused]) -> dg.AssetCheckResult:
    """The refused files waiting for a person (:func:`~crm_assets.ingest.loader.refused_awaiting`)
    as the check result of ``raw.<table>``: red (ERROR, not blocking) while there is one."""
    if not waiting:
        text = "no refused file waiting"
    else:
        text = (f"{len(waiting)} file(s) refused, nothing of them loaded (the other files "
                "were); fix and drop them again, or delete the set-aside copy:\n"
                + "\n".join(f"{r.reason} -> "
                            + (str(r.set_aside_to) if r.set_aside_to else "left in place")
                            for r in waiting))
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(["raw", table]), check_name=REFUSED_CHECK, passed=not waiting,
        severity=dg.AssetCheckSeverity.ERROR, description=text,
        metadata={"refused_files": dg.MetadataValue.json(
            [{"file": r.source_file, "reason": r.reason,
              "set_aside_to": str(r.set_aside_to) if r.set_aside_to else None}
             for r in waiting])})


# --------------------------------------------------------------------------------------------
# freshness


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
