"""Turning catalogue definitions into Dagster assets; the factory owns every DDL statement.

Three kinds of materialisation, chosen by the file's folder or its header's ``kind``:

* **model**: ``CREATE OR REPLACE TABLE <layer>.<name> AS <query>``. In ``staging``, a model that
  outputs a ``_problem`` column (why a row is unusable, or NULL) keeps, of each ``grain`` key, the
  latest version (:func:`staging_query`): a valid row beats an invalid one, then the latest load,
  then the last row of the file; older versions are rejected as ``superseded``. Rows with a
  problem or superseded go to ``staging.rejects`` with the raw row as JSON, the others to the
  table (without the reject columns). A model that outputs ``_reject_reason`` instead decides on
  its own which rows are rejected.
* **segment**: the current members as of a date (``as_of_date()`` in the SQL) replace
  ``segments.<name>``, and ``marts.segment_membership_history`` records who entered and who left
  (SCD2: ``valid_from`` inclusive, ``valid_to`` exclusive).
* **event**: day-partitioned. The file selects *every* occurrence; the factory keeps those inside
  the run's partition window (``occurred_at`` in ``[start, end)`` of business-zone days) and
  replaces exactly that window in one transaction, so a re-run or a backfill of any range of days is
  two statements, whatever its length.
"""


from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from crm_assets.data_tests import TestSpec, parse_tests
from crm_assets.functions import set_as_of_date, set_business_timezone
from crm_assets.lineage import lineage_metadata
from crm_assets.quality import staging_python_checks
from crm_assets.settings import Settings
from crm_assets.sql_catalog import Catalog, Definition, Schema
from crm_assets.warehouse import ensure_schemas, prepare_connection, transaction

POOL = "duckdb_writer"
"""Every asset that opens the warehouse for writing is in this pool; dagster.yaml limits it to 1."""

AS_OF_TAG = "crm/as_of_date"
"""Run tag carrying the as-of date of segments (``YYYY-MM-DD``); default: yesterday (business)."""

REJECTS_DDL = """CREATE TABLE IF NOT EXISTS staging.rejects (
    table_name VARCHAR NOT NULL,
    _source_file VARCHAR,
    _file_sha256 VARCHAR,
    _row_number BIGINT,
    reason VARCHAR NOT NULL,
    raw_row JSON,
    rejected_at TIMESTAMPTZ NOT NULL
)"""


class Warehouse(DuckDBResource):
    """The DuckDB warehouse file, opened read-write with the project's session settings.

    ``DuckDBResource`` retries a lock held by another process (~100 s) before failing.
    """

    business_timezone: str = "Europe/Moscow"

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        from pathlib import Path

        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        # DuckDBResource.get_connection does not close on an exception; an open handle would make
        # the next open of the same file in this process fail ("different configuration").
        with self.get_connection() as con:
            try:
                prepare_connection(con)
                set_business_timezone(con, self.business_timezone)
                ensure_schemas(con)
                con.execute(REJECTS_DDL)
                yield con
            finally:
                con.close()


def asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(table.split("."))


def resolve_as_of(context: dg.AssetExecutionContext, settings: Settings) -> date:
    tag = context.run.tags.get(AS_OF_TAG)
    if tag:
        try:
            return date.fromisoformat(tag)
        except ValueError as err:
            raise dg.Failure(f"run tag {AS_OF_TAG}={tag!r} is not a YYYY-MM-DD date") from err
    return settings.yesterday()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table_schema(schema: list[tuple[str, str]], docs: Mapping[str, str]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name=n, type=t, description=docs.get(n))
                                   for n, t in schema])


def _record_version(con: duckdb.DuckDBPyConnection, d: Definition, run_id: str) -> None:
    con.execute(
        """INSERT INTO meta.definition_versions
           SELECT ?, ?, ?, ?, now(), ?
           WHERE NOT EXISTS (SELECT 1 FROM meta.definition_versions
                             WHERE layer = ? AND name = ? AND version = ?)""",
        [d.name, d.layer, d.version, d.body, run_id, d.layer, d.name, d.version])


def _run_checks(con: duckdb.DuckDBPyConnection, specs: list[TestSpec], relation: str,
                key: dg.AssetKey) -> list[dg.AssetCheckResult]:
    results = []
    for spec in specs:
        failing = con.execute(spec.failing_count_sql(relation)).fetchone()[0]
        results.append(dg.AssetCheckResult(
            asset_key=key, check_name=spec.name, passed=failing == 0,
            severity=dg.AssetCheckSeverity.ERROR if spec.blocking else dg.AssetCheckSeverity.WARN,
            metadata={"failing_rows": int(failing), "sql": dg.MetadataValue.md(
                f"```sql\n{spec.failing_count_sql(relation)}\n```")}))
    return results


def _common_metadata(d: Definition, rows: int) -> dict:
    return {
        "dagster/row_count": int(rows),
        "dagster/column_schema": _table_schema(d.published_schema, d.column_docs),
        "dagster/table_name": d.table,
        "sql": dg.MetadataValue.md(f"```sql\n{d.body.strip()}\n```"),
        "upstream_tables": dg.MetadataValue.json(d.deps),
        "definition_version": d.version,
        "path": dg.MetadataValue.path(d.display_path),
    }


# --------------------------------------------------------------------------------------------
# materialisations (plain functions of a connection, so the CLI and tests can call them too)


def staging_query(d: Definition) -> str:
    """The query of a staging model with one ``_reject_reason`` per row (NULL: the row is kept).

    With ``_problem``, the latest version of each ``grain`` key is kept: per key, rows without a
    problem first, then the latest load, then the last row of a file (then the file name, so ties
    are broken the same way on every run). Every other version is ``superseded``, naming the
    file and row of the one kept.
    """
    if "_problem" not in {n for n, _ in d.schema}:
        return d.body
    key = " || ', ' || ".join(f"'{k} ' || CAST({_q(k)} AS VARCHAR)" for k in d.grain)
    return f"""SELECT * EXCLUDE (_problem, _version_rank, _latest_version),
       coalesce(_problem, CASE WHEN _version_rank > 1
           THEN 'superseded: ' || {key} || ' again in ' || _latest_version END) AS _reject_reason
FROM (
    SELECT *,
        row_number() OVER latest AS _version_rank,
        first_value(_source_file || ' row ' || _row_number) OVER latest AS _latest_version
    FROM (\n{d.body}\n) AS _judged
    WINDOW latest AS (
        PARTITION BY {", ".join(_q(k) for k in d.grain)}
        ORDER BY _problem IS NULL DESC, _loaded_at DESC, _row_number DESC, _source_file DESC
    )
)"""


def materialize_model(con: duckdb.DuckDBPyConnection, d: Definition, run_id: str) -> int:
    """Replace ``<layer>.<name>`` by the query's result; split rejects in staging."""
    columns = [n for n, _ in d.schema]
    if d.splits_rejects:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _staged AS {staging_query(d)}\n")
        kept = ", ".join(_q(n) for n, _ in d.published_schema)
        raw_table = f"raw.{d.name}"
        has_raw = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'raw' AND table_name = ?",
            [d.name]).fetchone()[0]
        # The raw row by a join, not a correlated subquery: DuckDB then builds the hash table on
        # the few rejects and turns only matched raw rows into JSON (5x faster at 8M orders).
        raw_join = ""
        if has_raw and {"_file_sha256", "_row_number"} <= set(columns):
            raw_json = "to_json(r)"
            raw_join = (f" LEFT JOIN {raw_table} r ON r._file_sha256 = s._file_sha256 "
                        "AND r._row_number = s._row_number")
        else:
            raw_json = "to_json(s)"
        file_col = "s._source_file" if "_source_file" in columns else "NULL"
        sha_col = "s._file_sha256" if "_file_sha256" in columns else "NULL"
        row_col = "s._row_number" if "_row_number" in columns else "NULL"
        with transaction(con):
            con.execute(f"CREATE OR REPLACE TABLE {d.table} AS SELECT {kept} FROM _staged "
                        "WHERE _reject_reason IS NULL")
            con.execute("DELETE FROM staging.rejects WHERE table_name = ?", [d.name])
            con.execute(
                f"INSERT INTO staging.rejects SELECT ?, {file_col}, {sha_col}, {row_col}, "
                f"s._reject_reason, {raw_json}, now() FROM _staged s{raw_join} "
                "WHERE s._reject_reason IS NOT NULL", [d.name])
            _record_version(con, d, run_id)
        con.execute("DROP TABLE _staged")
    else:
        with transaction(con):
            con.execute(f"CREATE OR REPLACE TABLE {d.table} AS {d.body}\n")
            _record_version(con, d, run_id)
    return con.execute(f"SELECT count(*) FROM {d.table}").fetchone()[0]


class SegmentHistoryError(RuntimeError):
    pass


def materialize_segment(con: duckdb.DuckDBPyConnection, d: Definition, as_of: date,
                        run_id: str) -> dict:
    """Replace the current members and move the membership history forward to ``as_of``.

    A re-run for the same date is idempotent. History only moves forward: a date before the last
    recorded one is refused rather than rewriting what was already published (to rebuild it, see
    :func:`rebuild_segment_history`).
    """
    last = _last_as_of(con, d)
    if last is not None and as_of < last:
        raise SegmentHistoryError(
            f"segment {d.name}: history is recorded up to {last}; refusing to compute it as of "
            f"the earlier date {as_of} (history only moves forward; `crm segment-history` "
            "rebuilds it from a past date)")
    with transaction(con):
        stats = _segment_day(con, d, as_of, run_id)
        _publish_members(con, d, as_of)
        _record_version(con, d, run_id)
    con.execute("DROP TABLE _members")
    return stats


def as_of_models(catalog: Catalog, segments: list[Definition]) -> list[Definition]:
    """The models ``segments`` read, directly or not, whose rows depend on the as-of date (they
    call ``as_of_date()``/``as_of_end()`` or read such a model), in dependency order."""
    by_table = catalog.by_table()
    upstream: set[str] = set()
    todo = [dep for d in segments for dep in d.deps]
    while todo:
        table = todo.pop()
        if table not in upstream and table in by_table:
            upstream.add(table)
            todo.extend(by_table[table].deps)
    dependent: set[str] = set()
    for d in catalog.definitions:  # dependency order: one pass
        if d.table in upstream and d.kind == "model" and (
                dependent.intersection(d.deps) or d.uses_as_of):
            dependent.add(d.table)
    return [d for d in catalog.definitions if d.table in dependent]


def rebuild_segment_history(con: duckdb.DuckDBPyConnection, segments: list[Definition],
                            models: list[Definition], first: date, last: date | None,
                            run_id: str, every_days: int = 1) -> list[dict]:
    """Recompute the membership history as of every ``every_days``-th day, ``first`` to ``last``.

    What was recorded before ``first`` is kept; from ``first`` on, the history and the run log of
    each segment are replaced by what its definition *on disk* says about each day (a backfill
    after adding a segment, or after changing one). ``models`` (:func:`as_of_models`) are
    recomputed as of each day first, so a segment over ``core.customer_features`` sees the
    features of that day, not today's. ``last`` defaults to the last recorded day and may not be
    before any segment's, so the rebuilt history reaches the current members, which are then
    those as of ``last`` (and the models are as of ``last`` again). All in one transaction:
    readers see the old history or the whole new one.
    """
    recorded = {d.name: _last_as_of(con, d) for d in segments}
    known = [day for day in recorded.values() if day is not None]
    last = last or (max(known) if known else None)
    if last is None:
        raise SegmentHistoryError(
            f"segment {segments[0].name}: nothing recorded yet; give the last day")
    for name, day in recorded.items():
        if day is not None and last < day:
            raise SegmentHistoryError(
                f"segment {name}: history is recorded up to {day}; a rebuild must reach it "
                f"(last day {last} is earlier)")
    if first > last or every_days < 1:
        raise SegmentHistoryError(f"no day from {first} to {last} every {every_days} day(s)")
    days = [first + timedelta(days=i) for i in range(0, (last - first).days + 1, every_days)]
    if days[-1] != last:
        days.append(last)  # always end on the current day
    h = "marts.segment_membership_history"
    stats = []
    with transaction(con):
        for d in segments:
            con.execute(f"DELETE FROM {h} WHERE segment = ? AND valid_from >= ?", [d.name, first])
            con.execute(f"UPDATE {h} SET valid_to = NULL WHERE segment = ? AND valid_to >= ?",
                        [d.name, first])
            con.execute("DELETE FROM meta.segment_runs WHERE segment = ? AND as_of_date >= ?",
                        [d.name, first])
        for day in days:
            set_as_of_date(con, day)
            for model in models:
                con.execute(f"CREATE OR REPLACE TABLE {model.table} AS {model.body}\n")
            for d in segments:
                stats.append({"segment": d.name, "as_of_date": day,
                              **_segment_day(con, d, day, run_id)})
                if day == last:
                    _publish_members(con, d, last)
                    _record_version(con, d, run_id)
    con.execute("DROP TABLE _members")
    return stats


def _last_as_of(con: duckdb.DuckDBPyConnection, d: Definition) -> date | None:
    return con.execute("SELECT max(as_of_date) FROM meta.segment_runs WHERE segment = ?",
                       [d.name]).fetchone()[0]


def _segment_day(con: duckdb.DuckDBPyConnection, d: Definition, as_of: date, run_id: str) -> dict:
    """The members as of ``as_of`` into ``_members``; the history and the run log moved to it.

    The history must be recorded up to ``as_of`` at most (the caller's transaction).
    """
    set_as_of_date(con, as_of)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _members AS {d.body}\n")
    h = "marts.segment_membership_history"
    params = [d.name, as_of]
    # leavers that entered today (a same-day re-run) vanish; earlier ones are closed today
    con.execute(
        f"""DELETE FROM {h} WHERE segment = ? AND valid_to IS NULL AND valid_from = ?
            AND customer_id NOT IN (SELECT customer_id FROM _members)""", params)
    con.execute(
        f"""UPDATE {h} SET valid_to = $2 WHERE segment = $1 AND valid_to IS NULL
            AND valid_from < $2 AND customer_id NOT IN (SELECT customer_id FROM _members)""",
        params)
    con.execute(
        f"""INSERT INTO {h} SELECT DISTINCT ?, m.customer_id, ?::DATE, NULL, ? FROM _members m
            WHERE m.customer_id NOT IN (SELECT customer_id FROM {h}
                                        WHERE segment = ? AND valid_to IS NULL)""",
        [d.name, as_of, d.version, d.name])
    members = con.execute("SELECT count(*) FROM _members").fetchone()[0]
    # the day's net change, from the history itself: a re-run of the same day reports the
    # same numbers as the first run (not "nothing changed since the previous run")
    entered, exited = con.execute(
        f"""SELECT count(*) FILTER (WHERE valid_from = $2),
                   count(*) FILTER (WHERE valid_to = $2)
            FROM {h} WHERE segment = $1""", params).fetchone()
    con.execute("DELETE FROM meta.segment_runs WHERE segment = ? AND as_of_date = ?", params)
    con.execute("INSERT INTO meta.segment_runs VALUES (?, ?, ?, ?, ?, ?, ?, now())",
                [d.name, as_of, d.version, members, entered, exited, run_id])
    return {"members": members, "entered": entered, "exited": exited}


def _publish_members(con: duckdb.DuckDBPyConnection, d: Definition, as_of: date) -> None:
    """``segments.<name>`` := the members in ``_members``, as of ``as_of``."""
    con.execute(f"CREATE OR REPLACE TABLE {d.table} AS SELECT *, DATE '{as_of}' AS as_of_date, "
                f"'{d.version}' AS definition_version FROM _members")


def event_columns(d: Definition) -> list[tuple[str, str]]:
    return [*d.schema, ("event_date", "DATE"), ("definition_version", "VARCHAR")]


def materialize_event_window(con: duckdb.DuckDBPyConnection, d: Definition, start: datetime,
                             end: datetime, business_timezone: str, run_id: str) -> int:
    """Replace the occurrences in ``[start, end)`` (instants) by the query's, atomically."""
    wanted = event_columns(d)
    cols = ", ".join(f"{_q(n)} {t}" for n, t in wanted)
    con.execute(f"CREATE TABLE IF NOT EXISTS {d.table} ({cols})")
    existing = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {d.table}").fetchall()]
    if [n for n, _ in existing] != [n for n, _ in wanted]:
        raise dg.Failure(
            f"{d.table} has columns {[n for n, _ in existing]} but {d.display_path} now outputs "
            f"{[n for n, _ in wanted]}; drop the table (`DROP TABLE {d.table}`) and backfill every "
            "partition to rebuild it with the new columns")
    select = ", ".join(f"src.{_q(n)}" for n, _ in d.schema)
    with transaction(con):
        con.execute(f"DELETE FROM {d.table} WHERE occurred_at >= ? AND occurred_at < ?",
                    [start, end])
        con.execute(
            f"""INSERT INTO {d.table}
                SELECT {select}, CAST(timezone('{business_timezone}', src.occurred_at) AS DATE),
                       '{d.version}'
                FROM (\n{d.body}\n) AS src
                WHERE src.occurred_at >= ? AND src.occurred_at < ?
                ORDER BY src.occurred_at, src.customer_id""",
            [start, end])
        _record_version(con, d, run_id)
    return con.execute(f"SELECT count(*) FROM {d.table} WHERE occurred_at >= ? AND occurred_at < ?",
                       [start, end]).fetchone()[0]


# --------------------------------------------------------------------------------------------
# Dagster assets


def build_sql_asset(d: Definition, producers: Mapping[str, list[dg.AssetKey]], settings: Settings,
                    partitions_def: dg.PartitionsDefinition,
                    upstream_schemas: Mapping[str, Schema] | None = None) -> dg.AssetsDefinition:
    """One asset for one definition; its deps are the producers of the tables it reads.

    With ``upstream_schemas`` (the columns of each table in ``d.deps``), every materialisation
    also records its column lineage (``dagster/column_lineage``), computed then, never at load.
    """
    key = asset_key(d.table)

    def column_lineage(context: dg.AssetExecutionContext) -> dict:
        def key_of(table: str) -> dg.AssetKey | None:  # only tables that are assets of their own
            own = asset_key(table)
            return own if list(producers.get(table, [own])) == [own] else None

        return lineage_metadata(d, upstream_schemas, key_of, context.log)

    deps = sorted({k for dep in d.deps for k in producers.get(dep, [asset_key(dep)])},
                  key=lambda k: k.to_user_string())
    specs = parse_tests(d, key)
    python_checks = staging_python_checks(d.layer, d.name, d.splits_rejects)
    kinds = {"duckdb", "sql"}
    tags = {t: "" for t in d.tags if t.replace("_", "").isalnum()}
    common = dict(
        key=key, deps=deps, group_name=d.layer, description=d.description or None,
        code_version=d.version, kinds=kinds, pool=POOL, tags=tags,
        owners=[d.owner] if d.owner and "@" in str(d.owner) else None,
        check_specs=[s.spec for s in specs] + [c.spec for c in python_checks] or None,
        metadata={"path": d.display_path, "kind": d.kind, "grain": ", ".join(d.grain)},
    )

    if d.kind == "event":
        @dg.asset(partitions_def=partitions_def, backfill_policy=dg.BackfillPolicy.single_run(),
                  **common)
        def _event(context: dg.AssetExecutionContext, warehouse: Warehouse):
            window = context.partition_time_window
            start = window.start.astimezone(UTC)
            end = window.end.astimezone(UTC)
            with warehouse.connect() as con:
                rows = materialize_event_window(con, d, start, end, settings.business_timezone,
                                                context.run.run_id)
                checks = _run_checks(
                    con, specs, f"(SELECT * FROM {d.table} WHERE occurred_at >= TIMESTAMPTZ "
                                f"'{start.isoformat()}' AND occurred_at < TIMESTAMPTZ "
                                f"'{end.isoformat()}')", key)
            days = len(context.partition_keys)
            meta = _common_metadata(d, rows)
            meta.update({"window_start": start.isoformat(), "window_end": end.isoformat(),
                         "days": days})
            meta.update(column_lineage(context))
            return dg.MaterializeResult(metadata=meta, check_results=checks or None)

        return _event

    if d.kind == "segment":
        @dg.asset(**common)
        def _segment(context: dg.AssetExecutionContext, warehouse: Warehouse):
            as_of = resolve_as_of(context, settings)
            with warehouse.connect() as con:
                try:
                    stats = materialize_segment(con, d, as_of, context.run.run_id)
                except SegmentHistoryError as err:
                    raise dg.Failure(str(err)) from err
                checks = _run_checks(con, specs, d.table, key)
            meta = _common_metadata(d, stats["members"])
            meta.update({"as_of_date": as_of.isoformat(), "entered": stats["entered"],
                         "exited": stats["exited"]})
            meta.update(column_lineage(context))
            return dg.MaterializeResult(metadata=meta, check_results=checks or None)

        return _segment

    @dg.asset(**common)
    def _model(context: dg.AssetExecutionContext, warehouse: Warehouse):
        with warehouse.connect() as con:
            set_as_of_date(con, resolve_as_of(context, settings))
            rows = materialize_model(con, d, context.run.run_id)
            checks = _run_checks(con, specs, d.table, key)
            checks += [c.evaluate(con) for c in python_checks]
            meta = _common_metadata(d, rows)
            if d.layer == "staging":
                meta["rejected_rows"] = con.execute(
                    "SELECT count(*) FROM staging.rejects WHERE table_name = ?", [d.name]
                ).fetchone()[0]
        meta.update(column_lineage(context))
        return dg.MaterializeResult(metadata=meta, check_results=checks or None)

    return _model


class SegmentHistoryConfig(dg.Config):
    """Which segments to rebuild the history of, from which day, to which, how often."""

    segments: list[str]
    first_day: str
    last_day: str | None = None
    every_days: int = 1


def build_history_job(catalog: Catalog, settings: Settings) -> dg.JobDefinition:
    """``rebuild_segment_history``: :func:`rebuild_segment_history` for named segments, one run.

    Launch it from the UI's launchpad or ``crm segment-history``; what reads the history (marts,
    the BI snapshot) is refreshed by the next run, or at once by ``crm segment-history``.
    """
    segments = {d.name: d for d in catalog.definitions if d.kind == "segment"}

    @dg.op(name="rebuild_history", pool=POOL)
    def _rebuild(context: dg.OpExecutionContext, config: SegmentHistoryConfig,
                 warehouse: Warehouse) -> None:
        unknown = sorted(set(config.segments) - set(segments))
        if unknown:
            raise dg.Failure(f"unknown segment(s): {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(segments))}")
        first = date.fromisoformat(config.first_day)
        last = date.fromisoformat(config.last_day) if config.last_day else None
        chosen = [segments[name] for name in config.segments]
        models = as_of_models(catalog, chosen)
        with warehouse.connect() as con:
            try:
                stats = rebuild_segment_history(con, chosen, models, first, last,
                                                context.run.run_id, config.every_days)
            except SegmentHistoryError as err:
                raise dg.Failure(str(err)) from err
        days = sorted({s["as_of_date"] for s in stats})
        context.log.info(
            f"history of {', '.join(config.segments)} rebuilt as of {len(days)} day(s), "
            f"{days[0]} to {days[-1]}; recomputed per day: "
            f"{', '.join(m.table for m in models) or 'nothing'}")

    @dg.job(name="rebuild_segment_history", executor_def=dg.in_process_executor,
            description="Recompute segments' membership history from a past day (backfill).")
    def _job():
        _rebuild()

    return _job


def build_catalog_assets(catalog: Catalog, producers: Mapping[str, list[dg.AssetKey]],
                         settings: Settings, partitions_def: dg.PartitionsDefinition
                         ) -> list[dg.AssetsDefinition]:
    return [build_sql_asset(d, producers, settings, partitions_def,
                            {dep: catalog.schema_of(dep) for dep in d.deps})
            for d in catalog.definitions]
