"""The raw assets: each source table's new files appended to ``raw.<table>``, each file once.

The loading itself is :mod:`crm_assets.ingest`; an asset reports what it loaded, the table's row
count and freshness. A refused file is set aside with its reason and reported by the red check
``no_refused_files``; the run goes on with the good files.
"""

import dagster as dg

from crm_assets.defs.checks import refused_result, refused_spec
from crm_assets.defs.resources import POOL, Warehouse
from crm_assets.ingest.contracts import SOURCES, SourceFileError
from crm_assets.ingest.freshness import freshness
from crm_assets.ingest.loader import load_source, refused_awaiting
from crm_assets.settings import Settings


def build_raw_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    """One asset per source table of the input contract."""
    return [_raw_asset(name, settings) for name in SOURCES]


def _raw_asset(name: str, settings: Settings) -> dg.AssetsDefinition:
    source = SOURCES[name]
    columns = dg.TableSchema(columns=[
        dg.TableColumn(c.name, "VARCHAR", description=f"declared {c.type}"
                       + (", required" if c.required else "") + (f". {c.description}"
                                                                 if c.description else ""))
        for c in source.columns])

    @dg.asset(key=["raw", name], group_name="raw", kinds={"duckdb", "csv"}, pool=POOL,
              description=f"{source.description} Append-only landing of {name} CSV files "
                          "(input and landing folders), each file once.",
              metadata={"dagster/column_schema": columns, "required": source.required},
              check_specs=[refused_spec(name)])
    def _raw(context: dg.AssetExecutionContext, warehouse: Warehouse):
        with warehouse.connect() as con:
            try:
                load = load_source(con, name, settings.input_dir,
                                   landing_dir=settings.landing_dir, run_id=context.run.run_id,
                                   set_refused_aside=True,
                                   suppression_key=settings.suppression_key_path)
            except SourceFileError as err:  # a required table with no file at all
                raise dg.Failure(str(err)) from err
            waiting = refused_awaiting(con, name, context.run.run_id)
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
        for r in load.refused_files:
            context.log.error(f"refused, nothing of it loaded: {r.reason}; "
                              + (f"moved to {r.set_aside_to}" if r.set_aside_to
                                 else "left in place"))
        return dg.MaterializeResult(metadata=metadata,
                                    check_results=[refused_result(name, waiting)])

    return _raw
