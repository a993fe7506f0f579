"""The Spark run path: a definition transpiled by sqlglot and run on Spark over the BI snapshot.

For users who outgrow one machine, the SQL files stay the only definitions (DuckDB dialect). Here
a definition's macros (``as_of_date()``, ``as_of_end()``) are bound to literals, the tables it
reads become Spark views over the Parquet files the BI snapshot lists (``manifest.json`` of
:mod:`crm_assets.serving.snapshot`, the same layout), and the query's result is written as
Parquet to ``<out>/<layer>/<name>/``. What runs is the definition's query; what the DuckDB
materialisation adds around it (a segment's history, an event's day partitions, staging's
rejects) does not. A definition that calls a project UDF, or reads a table the snapshot does not
hold (raw, staging, meta), is refused with the reason.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from crm_assets.catalog import Definition
from crm_assets.serving.snapshot import MANIFEST_FILE
from crm_assets.tools.dialects import compile_definition


class SparkRunError(ValueError):
    pass


@dataclass(frozen=True)
class SparkRun:
    table: str
    sql: str
    path: Path
    rows: int


def spark_session(master: str = "local[*]"):
    """A Spark session without the web UI (each run sets its time zone: the business's)."""
    with warnings.catch_warnings():  # pyspark 4.3 on pandas 3: this path uses no pandas
        warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas")
        from pyspark.sql import SparkSession

        session = (SparkSession.builder.master(master).appName("crm-assets")
                   .config("spark.sql.session.timeZone", "UTC")
                   .config("spark.ui.enabled", "false")
                   .config("spark.sql.shuffle.partitions", "4")
                   .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    return session


def run_definition(spark, d: Definition, snapshot_dir: Path, out_dir: Path, *, as_of: date,
                   business_timezone: str) -> SparkRun:
    """Run ``d`` on ``spark`` over the snapshot in ``snapshot_dir``; its result to Parquet."""
    manifest = json.loads((snapshot_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    missing = [dep for dep in d.deps if dep not in manifest["tables"]]
    if missing:
        raise SparkRunError(f"{d.table} reads {', '.join(missing)}, which the BI snapshot does "
                            "not hold (it serves core, segments, events and marts)")
    views = {dep: dep.replace(".", "__") for dep in d.deps}
    compiled = compile_definition(d, "spark", as_of=as_of, business_timezone=business_timezone,
                                  tables=views)
    if not compiled.portable:
        raise SparkRunError(f"{d.table} does not run on Spark: "
                            + "; ".join(compiled.non_portable.values()))
    # as in the warehouse, a definition runs in the business time zone: a date cast of an instant
    # is its business day, a day cast to an instant its business midnight
    spark.conf.set("spark.sql.session.timeZone", business_timezone)
    for dep, view in views.items():
        spark.read.parquet(*manifest["tables"][dep]).createOrReplaceTempView(view)
    result = spark.sql(compiled.sql.strip().rstrip(";"))
    path = out_dir / d.layer / d.name
    result.write.mode("overwrite").parquet(str(path))
    rows = spark.read.parquet(str(path)).count()
    return SparkRun(d.table, compiled.sql, path, rows)
