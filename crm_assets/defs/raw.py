"""The raw assets: each source table's new files appended to ``raw.<table>``, each file once.

The loading itself is :mod:`crm_assets.ingest`; an asset reports what it loaded, the table's row
count and freshness, and fails naming every refused file (the good files still load).
"""

import dagster as dg

from crm_assets.defs.resources import POOL, Warehouse
from crm_assets.ingest.contracts import SOURCES, SourceFileError
from crm_assets.ingest.freshness import freshness
from crm_assets.ingest.loader import load_source
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
