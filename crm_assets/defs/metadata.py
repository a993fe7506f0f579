"""What every materialisation records, and what Dagster shows of a definition.

Static facts (the SQL, the path, the column schema, the version) belong to the asset definition;
a materialisation records what it found (rows, the as-of date, the window), and column lineage
(computed then, never when the project loads: ``sqlglot.lineage`` costs tens of milliseconds a
column).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import date

import dagster as dg

from crm_assets.catalog import Definition, Schema
from crm_assets.catalog.lineage import column_lineage

log = logging.getLogger(__name__)


def asset_key(table: str) -> dg.AssetKey:
    """``layer.name`` -> ``AssetKey([layer, name])``."""
    return dg.AssetKey(table.split("."))


def table_schema(schema: Schema, docs: Mapping[str, str] | None = None) -> dg.TableSchema:
    """Columns (and their descriptions) as Dagster's column schema."""
    docs = docs or {}
    return dg.TableSchema(columns=[dg.TableColumn(name=n, type=t, description=docs.get(n))
                                   for n, t in schema])


def definition_metadata(d: Definition) -> dict:
    """What does not change from one materialisation of ``d`` to the next."""
    return {
        "dagster/column_schema": table_schema(d.published_schema, d.column_docs),
        "dagster/table_name": d.table,
        "sql": dg.MetadataValue.md(f"```sql\n{d.body.strip()}\n```"),
        "upstream_tables": dg.MetadataValue.json(d.deps),
    }


def report_days(context: dg.AssetExecutionContext, rows_by_day: Mapping[date, int],
                late_days: list[date], last_day_metadata: dict | None = None, *,
                caught_up: list[date] = ()) -> None:
    """Each day of the run's range records its own row count; a day before the range rebuilt
    because its rows changed (late data, a merge), or built because its night did not run
    (``caught_up``), is recorded as a materialisation of its own; ``last_day_metadata`` (column
    lineage) goes on the range's last day only."""
    keys = context.partition_keys
    for key in keys:
        context.add_asset_metadata(
            {"dagster/row_count": int(rows_by_day.get(date.fromisoformat(key), 0))},
            partition_key=key)
    if last_day_metadata and keys:
        context.add_asset_metadata(last_day_metadata, partition_key=keys[-1])
    for day in late_days:
        context.log_event(dg.AssetMaterialization(
            asset_key=context.asset_key, partition=day.isoformat(),
            description="rebuilt: its rows changed since it was built (late data or a merge)",
            metadata={"dagster/row_count": int(rows_by_day.get(day, 0)),
                      "rebuilt_late": True}))
    for day in caught_up:
        context.log_event(dg.AssetMaterialization(
            asset_key=context.asset_key, partition=day.isoformat(),
            description="built by a later night: the night of this day did not run",
            metadata={"dagster/row_count": int(rows_by_day.get(day, 0)), "caught_up": True}))
    if caught_up:
        context.log.info(f"{len(caught_up)} day(s) whose night did not run built too: "
                         f"{caught_up[0].isoformat()} to {caught_up[-1].isoformat()}")
    if late_days:
        context.log.info(f"{len(late_days)} earlier day(s) rebuilt: "
                         f"{', '.join(d.isoformat() for d in late_days[:20])}")


def common_metadata(d: Definition, rows: int) -> dict:
    """What every materialisation of a SQL definition records."""
    return {
        "dagster/row_count": int(rows),
        "dagster/column_schema": table_schema(d.published_schema, d.column_docs),
        "dagster/table_name": d.table,
        "sql": dg.MetadataValue.md(f"```sql\n{d.body.strip()}\n```"),
        "upstream_tables": dg.MetadataValue.json(d.deps),
        "definition_version": d.version,
        "path": dg.MetadataValue.path(d.display_path),
    }


def lineage_metadata(d: Definition, upstream_schemas: Mapping[str, Schema] | None,
                     asset_key_of: Callable[[str], dg.AssetKey | None],
                     logger: logging.Logger | None = None) -> dict:
    """``{"dagster/column_lineage": TableColumnLineage}`` for the table the factory writes.

    Never raises: any failure is logged and gives fewer columns, or ``{}``. A table that is not an
    asset of its own (``asset_key_of`` returns None, e.g. the segment history written by segment
    assets) is left out. An event's ``event_date`` is derived from ``occurred_at``.
    """
    logger = logger or log
    if upstream_schemas is None:
        return {}
    try:
        traced = column_lineage(d, upstream_schemas,
                                [n for n, _ in d.published_schema if n != "_batch"])
        for column, reason in traced.errors.items():
            logger.warning(f"column lineage of {d.table}.{column} skipped: {reason}")
        deps = dict(traced.deps)
        if d.kind == "event" and "occurred_at" in deps:
            deps["event_date"] = deps["occurred_at"]
        by_column: dict[str, list[dg.TableColumnDep]] = {}
        for column, upstream in deps.items():
            cols = []
            for table, name in upstream:
                key = asset_key_of(table)
                if key is not None:
                    cols.append(dg.TableColumnDep(asset_key=key, column_name=name))
            if cols:
                by_column[column] = cols
        if not by_column:
            return {}
        return {"dagster/column_lineage": dg.TableColumnLineage(deps_by_column=by_column)}
    except Exception as err:  # noqa: BLE001 - lineage is informative; never fail a run for it
        logger.warning(f"column lineage of {d.table} skipped: {type(err).__name__}: {err}")
        return {}
