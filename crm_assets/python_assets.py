"""The assets written in Python rather than SQL: raw ingest, identity resolution, framework marts.

Each declares the schema of what it writes (:func:`external_tables`), so the SQL catalogue can be
validated against empty typed tables on a fresh clone, before anything was built.
"""



import dagster as dg

from crm_assets.contracts import SOURCES
from crm_assets.factory import POOL, Warehouse, asset_key
from crm_assets.ingest import SourceFileError, load_source, raw_schema
from crm_assets.quality import freshness
from crm_assets.settings import Settings
from crm_assets.sql_catalog import Catalog, Schema

IDENTITY_TABLES: dict[str, Schema] = {
    "core.customer_identity": [("source_customer_id", "VARCHAR"), ("customer_id", "BIGINT"),
                               ("first_seen_at", "TIMESTAMP WITH TIME ZONE"),
                               ("match_rule", "VARCHAR")],
    "meta.customer_merges": [("from_customer_id", "BIGINT"), ("to_customer_id", "BIGINT"),
                             ("merged_at", "TIMESTAMP WITH TIME ZONE"), ("reason", "VARCHAR")],
    "core.customer_id_redirects": [("from_customer_id", "BIGINT"), ("to_customer_id", "BIGINT")],
}

FRAMEWORK_TABLES: dict[str, Schema] = {
    "marts.segment_membership_history": [("segment", "VARCHAR"), ("customer_id", "BIGINT"),
                                         ("valid_from", "DATE"), ("valid_to", "DATE"),
                                         ("version", "VARCHAR")],
    "meta.segment_runs": [("segment", "VARCHAR"), ("as_of_date", "DATE"), ("version", "VARCHAR"),
                          ("members", "BIGINT"), ("entered", "BIGINT"), ("exited", "BIGINT"),
                          ("run_id", "VARCHAR"), ("computed_at", "TIMESTAMP WITH TIME ZONE")],
}


def external_tables() -> dict[str, Schema]:
    """Every table SQL definitions may read that no SQL file defines, with its columns."""
    tables: dict[str, Schema] = {f"raw.{name}": raw_schema(src) for name, src in SOURCES.items()}
    tables.update(IDENTITY_TABLES)
    tables.update(FRAMEWORK_TABLES)
    return tables


def producers(catalog: Catalog) -> dict[str, list[dg.AssetKey]]:
    """Which asset(s) write each external table, so a SQL file reading it depends on them."""
    out: dict[str, list[dg.AssetKey]] = {f"raw.{n}": [asset_key(f"raw.{n}")] for n in SOURCES}
    for table in IDENTITY_TABLES:
        out[table] = [asset_key("core.customer_identity")]
    segments = [asset_key(d.table) for d in catalog.definitions if d.kind == "segment"]
    out["marts.segment_membership_history"] = segments
    out["meta.segment_runs"] = segments
    return out


def build_raw_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    assets = []
    for name, source in SOURCES.items():
        assets.append(_raw_asset(name, source.description, settings))
    return assets


def _raw_asset(name: str, description: str, settings: Settings) -> dg.AssetsDefinition:
    source = SOURCES[name]
    columns = dg.TableSchema(columns=[
        dg.TableColumn(c.name, "VARCHAR", description=f"declared {c.type}"
                       + (", required" if c.required else "") + (f". {c.description}"
                                                                 if c.description else ""))
        for c in source.columns])

    @dg.asset(key=["raw", name], group_name="raw", kinds={"duckdb", "csv"}, pool=POOL,
              description=f"{description} Append-only landing of {name} CSV files "
                          "(input and landing folders), each file once.",
              metadata={"dagster/column_schema": columns, "required": source.required})
    def _raw(context: dg.AssetExecutionContext, warehouse: Warehouse):
        with warehouse.connect() as con:
            try:
                load = load_source(con, name, settings.input_dir,
                                   landing_dir=settings.landing_dir, run_id=context.run.run_id)
            except SourceFileError as err:
                raise dg.Failure(str(err)) from err
            total = con.execute(f"SELECT count(*) FROM raw.{name}").fetchone()[0]
            fresh = freshness(con, name, settings.freshness_limit_hours(name))
        loaded = load.loaded
        for r in loaded:
            context.log.info(f"loaded {r.rows} rows from {r.source_file} ({r.encoding}, "
                             f"{r.delimiter!r})"
                             + (f", {r.parse_errors} malformed" if r.parse_errors else "")
                             + (f"; ignored columns {r.ignored_columns}" if r.ignored_columns
                                else ""))
        metadata = {
            "dagster/row_count": int(total),
            "dagster/table_name": f"raw.{name}",
            "files_loaded": dg.MetadataValue.json([r.source_file for r in loaded]),
            "files_already_loaded": len(load.results) - len(loaded),
            "files_refused": len(load.refused),
            "rows_appended": sum(r.rows for r in loaded),
            "malformed_records": sum(r.parse_errors for r in loaded),
            "freshness_limit_hours": fresh.limit_hours,
        }
        if fresh.age_hours is not None:
            metadata["hours_since_new_file"] = round(fresh.age_hours, 2)
        if load.refused:
            raise dg.Failure(
                description=f"{len(load.refused)} file(s) of {name} refused, nothing of them "
                            "loaded (other files were); fix and drop them again:\n"
                            + "\n".join(load.refused),
                metadata=metadata)
        return dg.MaterializeResult(metadata=metadata)

    return _raw


def build_identity_asset(settings: Settings) -> dg.AssetsDefinition:
    @dg.asset(key=["core", "customer_identity"], group_name="core", deps=[["staging", "customers"]],
              kinds={"duckdb", "python"}, pool=POOL,
              description="Every source customer record mapped to one stable customer_id; merges "
                          "of existing people are recorded in meta.customer_merges.",
              metadata={"dagster/column_schema": dg.TableSchema(columns=[
                  dg.TableColumn(n, t) for n, t in IDENTITY_TABLES["core.customer_identity"]])})
    def _identity(context: dg.AssetExecutionContext, warehouse: Warehouse):
        from crm_assets.identity import resolve_identity

        truth = settings.input_dir / "_truth" / "customers.csv"
        quality: dict = {}
        with warehouse.connect() as con:
            stats = resolve_identity(con)
            if truth.exists():
                # demo and generated data carry ground truth: record how good the matching is
                from crm_assets.identity import dedupe_report

                report = dedupe_report(con, truth)
                overall = report[0]
                quality = {
                    "pairwise_precision": overall["precision"],
                    "pairwise_recall": overall["recall"],
                    "dedupe_report": dg.MetadataValue.md(_report_markdown(report)),
                }
        return dg.MaterializeResult(metadata={
            "dagster/row_count": int(stats.get("records", 0)),
            **{k: v for k, v in stats.items() if isinstance(v, (int, float, str))},
            **{k: v for k, v in quality.items() if v is not None}})

    return _identity


def _report_markdown(rows: list[dict]) -> str:
    lines = ["| label | records | true pairs | predicted | correct | precision | recall |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        def f(v):
            return "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))
        lines.append(f"| {r['label']} | {f(r.get('records'))} | {f(r.get('true_pairs'))} | "
                     f"{f(r.get('predicted_pairs'))} | {f(r.get('correct_pairs'))} | "
                     f"{f(r.get('precision'))} | {f(r.get('recall'))} |")
    return "\n".join(lines)


def event_daily_counts_sql(event_tables: list[str]) -> str:
    """One query over every event table: rows and distinct customers per event and day."""
    if not event_tables:
        return ("SELECT NULL::VARCHAR AS event, NULL::DATE AS event_date, 0::BIGINT AS occurrences,"
                " 0::BIGINT AS customers WHERE false")
    parts = [f"SELECT '{t.split('.')[1]}' AS event, event_date, count(*) AS occurrences, "
             f"count(DISTINCT customer_id) AS customers FROM {t} GROUP BY event_date"
             for t in event_tables]
    return " UNION ALL ".join(parts) + " ORDER BY event, event_date"


def build_event_daily_counts(catalog: Catalog) -> dg.AssetsDefinition:
    events = [d.table for d in catalog.definitions if d.kind == "event"]

    @dg.asset(key=["marts", "event_daily_counts"], group_name="marts",
              deps=[asset_key(t) for t in events], kinds={"duckdb", "sql"}, pool=POOL,
              description="Occurrences and distinct customers per event and business day.")
    def _counts(warehouse: Warehouse):
        with warehouse.connect() as con:
            # an event with no partition built yet has no table: it has no occurrence either
            built = {f"events.{t}" for (t,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'events'").fetchall()}
            sql = event_daily_counts_sql([t for t in events if t in built])
            con.execute(f"CREATE OR REPLACE TABLE marts.event_daily_counts AS {sql}")
            rows = con.execute("SELECT count(*) FROM marts.event_daily_counts").fetchone()[0]
        return dg.MaterializeResult(metadata={
            "dagster/row_count": int(rows), "sql": dg.MetadataValue.md(f"```sql\n{sql}\n```"),
            "events_not_built_yet": dg.MetadataValue.json(sorted(set(events) - built))})

    return _counts


SERVING_KEY = dg.AssetKey(["serving", "snapshot"])


def build_serving_asset(settings: Settings, assets: list[dg.AssetsDefinition]
                        ) -> dg.AssetsDefinition:
    """The snapshot BI reads (:mod:`crm_assets.serving`), after every table it publishes."""
    from crm_assets.serving import SERVED_SCHEMAS, VIEWS_FILE, publish

    served = sorted({k for a in assets for k in a.keys if k.path[0] in SERVED_SCHEMAS},
                    key=lambda k: k.to_user_string())

    @dg.asset(key=SERVING_KEY, group_name="serving", deps=served, kinds={"duckdb", "parquet"},
              pool=POOL,
              description=f"What BI tools read: {settings.serving_path / VIEWS_FILE} (read-only, "
                          "views over Parquet), swapped in atomically; no run ever opens it.")
    def _snapshot(context: dg.AssetExecutionContext, warehouse: Warehouse):
        with warehouse.connect() as con:
            result = publish(con, settings.serving_path)
        context.log.info(f"published {result.tables} tables to {result.path}: "
                         f"{result.files_written} Parquet files written, "
                         f"{result.files_reused} unchanged, {result.files_removed} removed")
        return dg.MaterializeResult(metadata={
            "path": dg.MetadataValue.path(str(result.path)),
            "tables": result.tables, "dagster/row_count": result.rows,
            "files_written": result.files_written, "files_reused": result.files_reused,
            "files_removed": result.files_removed})

    return _snapshot


TRIGGER_TAG = "trigger"
"""An event whose header ``tags`` hold this feeds a trigger chain: its people are exported daily."""


def build_trigger_exports(catalog: Catalog, settings: Settings,
                          partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """``exports/<event>`` for each event tagged ``trigger``: one CSV per day of who met it and may
    be e-mailed (:mod:`crm_assets.audiences`), for the e-mail tool's trigger chain."""
    return [_trigger_export(d, settings, partitions_def) for d in catalog.definitions
            if d.kind == "event" and TRIGGER_TAG in d.tags]


def _trigger_export(d, settings: Settings, partitions_def: dg.PartitionsDefinition
                    ) -> dg.AssetsDefinition:
    from datetime import timedelta

    from crm_assets.audiences import audience_sql

    folder = settings.serving_path / "exports" / d.name

    @dg.asset(key=["exports", d.name], group_name="exports", partitions_def=partitions_def,
              deps=[asset_key(d.table), dg.AssetKey(["core", "customers"])],
              backfill_policy=dg.BackfillPolicy.single_run(), kinds={"duckdb", "csv"}, pool=POOL,
              description=f"Who met {d.table} each day and may be e-mailed (a contact and e-mail "
                          f"consent): {folder}/<day>.csv, for the trigger chain it feeds.")
    def _export(context: dg.AssetExecutionContext, warehouse: Warehouse):
        window = context.partition_time_window
        day, days = window.start.date(), []
        while day < window.end.date():
            days.append(day)
            day += timedelta(days=1)
        folder.mkdir(parents=True, exist_ok=True)
        with warehouse.connect() as con:
            for day in days:  # one small COPY per day of the window (~15 ms each)
                sql = audience_sql(con, d.name, channel="email", seed=d.name, day=day)
                tmp = folder / f".{day}.csv.tmp"
                con.execute(f"COPY ({sql}) TO '{tmp}' (HEADER)")
                tmp.replace(folder / f"{day}.csv")
            paths = [str(folder / f"{day}.csv") for day in days]
            rows = con.execute("SELECT count(*) FROM read_csv(?, header = true, "
                               "columns = {'customer_id': 'BIGINT', 'audience_group': 'VARCHAR', "
                               "'first_name': 'VARCHAR', 'contact': 'VARCHAR'})",
                               [paths]).fetchone()[0]
        return dg.MaterializeResult(metadata={
            "dagster/row_count": rows, "days": len(days),
            "path": dg.MetadataValue.path(str(folder / f"{days[-1]}.csv"))})

    return _export
