"""The factory: one Dagster asset per SQL definition, by its kind (model, segment, event).

What each kind does to the warehouse is in :mod:`crm_assets.warehouse` (plain functions of a
connection); this module only wires them: dependencies (the producers of the tables a definition
reads), the definition's data tests as asset checks, the pool, partitions, and metadata.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC

import dagster as dg

from crm_assets.catalog import Catalog, Definition, Schema
from crm_assets.defs.checks import DataTest, data_tests, run_data_tests, staging_python_checks
from crm_assets.defs.jobs import NIGHTLY
from crm_assets.defs.metadata import (
    asset_key,
    common_metadata,
    definition_metadata,
    lineage_metadata,
    report_days,
)
from crm_assets.defs.partitions import is_full_refresh, resolve_as_of
from crm_assets.defs.resources import POOL, Warehouse
from crm_assets.functions.registry import set_as_of_date
from crm_assets.ingest.contracts import SOURCES
from crm_assets.quoting import literal
from crm_assets.settings import Settings
from crm_assets.warehouse.events import EventSchemaError, materialize_event_window
from crm_assets.warehouse.incremental import materialize_incremental
from crm_assets.warehouse.models import materialize_model
from crm_assets.warehouse.segments import SegmentHistoryError, materialize_segment
from crm_assets.warehouse.staging import materialize_staging
from crm_assets.warehouse.state import unchanged_since_built
from crm_assets.warehouse.tables import FRAMEWORK_TABLES

IDENTITY_KEY = dg.AssetKey(["core", "customer_identity"])
"""The asset that writes the identity tables (:mod:`crm_assets.defs.identity`)."""


@dataclass(frozen=True)
class _Asset:
    """What the three kinds share: the definition, its checks, settings and lineage."""

    d: Definition
    key: dg.AssetKey
    tests: list[DataTest]
    settings: Settings
    lineage: Callable[[dg.AssetExecutionContext], dict]


def build_catalog_assets(catalog: Catalog, producers: Mapping[str, list[dg.AssetKey]],
                         settings: Settings, partitions_def: dg.PartitionsDefinition
                         ) -> list[dg.AssetsDefinition]:
    """One asset per definition of ``catalog``, in dependency order; the variants of one segment
    file are one step that materialises the selected ones (each its own asset), so a file of 11
    variants costs one step of a run, not 11."""
    out: list[dg.AssetsDefinition] = []
    grouped: dict[str, list[Definition]] = {}
    for d in catalog.definitions:
        if d.kind == "segment" and d.variant is not None:
            grouped.setdefault(d.display_path, []).append(d)
    for d in catalog.definitions:
        group = grouped.get(d.display_path) if d.kind == "segment" else None
        if group is None:
            out.append(build_sql_asset(d, producers, settings, partitions_def,
                                       {dep: catalog.schema_of(dep) for dep in d.deps}))
        elif d is group[0]:
            out.append(_segment_variants_asset(
                [_parts(v, producers, settings, {dep: catalog.schema_of(dep) for dep in v.deps})
                 for v in group]))
    return out


def build_sql_asset(d: Definition, producers: Mapping[str, list[dg.AssetKey]], settings: Settings,
                    partitions_def: dg.PartitionsDefinition,
                    upstream_schemas: Mapping[str, Schema] | None = None) -> dg.AssetsDefinition:
    """One asset for one definition; its deps are the producers of the tables it reads.

    With ``upstream_schemas`` (the columns of each table in ``d.deps``), every materialisation
    also records its column lineage (``dagster/column_lineage``), computed then, never at load.
    """
    spec, common = _parts(d, producers, settings, upstream_schemas)
    python_checks = staging_python_checks(d.layer, d.name, d.splits_rejects, settings)
    if python_checks:
        common["check_specs"] = [*(common["check_specs"] or []), *(c.spec for c in python_checks)]
    if d.kind == "event":
        return _event_asset(spec, partitions_def, common)
    if d.kind == "segment":
        return _segment_asset(spec, common)
    return _model_asset(spec, python_checks, common)


def _parts(d: Definition, producers: Mapping[str, list[dg.AssetKey]], settings: Settings,
           upstream_schemas: Mapping[str, Schema] | None) -> tuple[_Asset, dict]:
    """What an asset of ``d`` is made of, and the arguments of its decorator."""
    key = asset_key(d.table)

    def lineage(context: dg.AssetExecutionContext) -> dict:
        def key_of(table: str) -> dg.AssetKey | None:  # only tables that are assets of their own
            own = asset_key(table)
            return own if list(producers.get(table, [own])) == [own] else None

        return lineage_metadata(d, upstream_schemas, key_of, context.log)

    deps = sorted({k for dep in d.deps for k in producers.get(dep, [asset_key(dep)])},
                  key=lambda k: k.to_user_string())
    tests = data_tests(d, key)
    common = dict(
        key=key, deps=deps, group_name=d.layer, description=d.description or None,
        code_version=d.version, kinds={"duckdb", "sql"}, pool=POOL,
        tags={t: "" for t in d.tags if t.replace("_", "").isalnum()},
        owners=[d.owner] if d.owner and "@" in str(d.owner) else None,
        check_specs=[t.spec for t in tests] or None,
        metadata={"path": d.display_path, "kind": d.kind, "grain": ", ".join(d.grain),
                  **({"variant": d.variant} if d.variant else {}),
                  **({"params": dg.MetadataValue.json(
                      {k: str(v) if not isinstance(v, (int, float, bool, list)) else v
                       for k, v in d.params.items()})} if d.params else {}),
                  # a day's materialisation records only that day's rows (Dagster copies a
                  # step's metadata onto every day of its range): what is static is said here
                  **(definition_metadata(d) if d.kind == "event" else {})},
    )
    return _Asset(d, key, tests, settings, lineage), common


def _event_asset(a: _Asset, partitions_def: dg.PartitionsDefinition, common: dict
                 ) -> dg.AssetsDefinition:
    d = a.d

    @dg.asset(partitions_def=partitions_def, backfill_policy=dg.BackfillPolicy.single_run(),
              **common)
    def _event(context: dg.AssetExecutionContext, warehouse: Warehouse):
        window = context.partition_time_window
        start, end = window.start.astimezone(UTC), window.end.astimezone(UTC)
        with warehouse.connect() as con:
            try:
                run = materialize_event_window(con, d, start, end, a.settings.business_timezone,
                                               context.run.run_id,
                                               full_refresh=is_full_refresh(context),
                                               keep_unchanged=context.run.job_name == NIGHTLY,
                                               catch_up=context.run.job_name == NIGHTLY,
                                               first_day=a.settings.partition_start)
            except EventSchemaError as err:
                raise dg.Failure(str(err)) from err
            days = ", ".join(f"DATE {literal(day.isoformat())}" for day in run.rows_by_day)
            checks = run_data_tests(con, a.tests, f"(SELECT * FROM {d.table} "
                                                  f"WHERE event_date IN ({days}))")
        if run.unchanged:
            context.log.info(f"nothing {d.table} reads changed since these days were built: "
                             "left as they are")
        report_days(context, run.rows_by_day, run.late_days, a.lineage(context),
                    caught_up=run.caught_up)
        return dg.MaterializeResult(check_results=checks or None)

    return _event


def _segment_asset(a: _Asset, common: dict) -> dg.AssetsDefinition:
    @dg.asset(**common)
    def _segment(context: dg.AssetExecutionContext, warehouse: Warehouse):
        as_of = resolve_as_of(context, a.settings)
        with warehouse.connect() as con:
            return _materialize_segment(context, con, a, as_of)

    return _segment


def _segment_variants_asset(parts: list[tuple[_Asset, dict]]) -> dg.AssetsDefinition:
    """The variants of one segment file as one step (a multi-asset): each selected variant is
    materialised in turn, each with its own metadata and checks."""
    by_key = {a.key: a for a, _ in parts}
    specs = [dg.AssetSpec(key=c["key"], deps=c["deps"], group_name=c["group_name"],
                          description=c["description"], code_version=c["code_version"],
                          kinds=c["kinds"], tags=c["tags"], owners=c["owners"],
                          metadata=c["metadata"]) for _, c in parts]
    checks = [spec for _, c in parts for spec in c["check_specs"] or []]
    first = parts[0][0]

    @dg.multi_asset(name=f"{first.d.layer}__{first.d.path.stem}", specs=specs,
                    check_specs=checks or None, can_subset=True, pool=POOL)
    def _variants(context: dg.AssetExecutionContext, warehouse: Warehouse):
        as_of = resolve_as_of(context, first.settings)
        with warehouse.connect() as con:
            for key in sorted(context.selected_asset_keys, key=lambda k: k.to_user_string()):
                yield _materialize_segment(context, con, by_key[key], as_of)

    return _variants


def _materialize_segment(context: dg.AssetExecutionContext, con, a: _Asset, as_of
                         ) -> dg.MaterializeResult:
    d = a.d
    try:
        stats = materialize_segment(con, d, as_of, context.run.run_id,
                                    full_refresh=is_full_refresh(context))
    except SegmentHistoryError as err:
        raise dg.Failure(str(err)) from err
    checks = run_data_tests(con, a.tests, d.table)
    meta = common_metadata(d, stats["members"])
    meta.update({"as_of_date": as_of.isoformat(), "members": stats["members"],
                 "entered": stats["entered"], "exited": stats["exited"],
                 "unchanged": stats["unchanged"]})
    if stats["unchanged"]:
        context.log.info(f"nothing {d.table} reads changed since it was computed as of {as_of}: "
                         "left as it is")
    meta.update(a.lineage(context))
    return dg.MaterializeResult(asset_key=a.key, metadata=meta, check_results=checks or None)


def _model_asset(a: _Asset, python_checks: list, common: dict) -> dg.AssetsDefinition:
    d = a.d

    @dg.asset(**common)
    def _model(context: dg.AssetExecutionContext, warehouse: Warehouse):
        full_refresh = is_full_refresh(context)
        with warehouse.connect() as con:
            set_as_of_date(con, resolve_as_of(context, a.settings))
            written = None  # a run that merged tests the rows it wrote, not the history
            if d.keeps_versions:
                staged = materialize_staging(con, d, context.run.run_id, full_refresh=full_refresh)
                rows, how = staged.rows, {
                    "judged_rows": staged.judged, "new_files": staged.new_files,
                    "written_keys": staged.written, "rejected_rows": staged.rejected,
                    "conflicting_versions": staged.conflicting, "full": staged.full}
                written = None if staged.full else f"_batch = {staged.batch}"
            elif d.incremental is not None:
                merged = materialize_incremental(con, d, context.run.run_id,
                                                 full_refresh=full_refresh)
                rows, how = merged.rows, {"merged_keys": merged.keys, "full": merged.full}
                written = None if merged.full else f"_batch = {merged.batch}"
            else:
                unchanged = not full_refresh and unchanged_since_built(con, d)
                rows = (con.execute(f"SELECT count(*) FROM {d.table}").fetchone()[0] if unchanged
                        else materialize_model(con, d, context.run.run_id,
                                               full_refresh=full_refresh))
                how = {"unchanged": unchanged}
                if unchanged:
                    context.log.info(f"nothing {d.table} reads changed since it was computed "
                                     "(the same tables, as-of date and settings): left as it is")
            checks = run_data_tests(con, a.tests, d.table, written)
            checks += [c.evaluate(con, context.run.run_id) for c in python_checks]
        meta = {**common_metadata(d, rows), **how, **a.lineage(context)}
        return dg.MaterializeResult(metadata=meta, check_results=checks or None)

    return _model


def producers(catalog: Catalog) -> dict[str, list[dg.AssetKey]]:
    """Which asset(s) write each table SQL may read that no SQL file defines, so a SQL file
    reading it depends on them: raw tables their raw asset, identity tables the identity asset,
    the segment history every segment."""
    segments = [asset_key(d.table) for d in catalog.definitions if d.kind == "segment"]
    writers = {"identity": [IDENTITY_KEY], "segments": segments}
    out: dict[str, list[dg.AssetKey]] = {f"raw.{n}": [asset_key(f"raw.{n}")] for n in SOURCES}
    out.update({t.name: writers.get(t.written_by, [asset_key(t.name)])
                for t in FRAMEWORK_TABLES if t.written_by})
    return out
