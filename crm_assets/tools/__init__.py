"""Tools around the definitions: versions, what a change invalidates, lineage, other engines.

* :mod:`~crm_assets.tools.versions`: versions ever materialised, and their SQL diffs.
* :mod:`~crm_assets.tools.plan`: what to rebuild after an edit, and the runs that do it.
* :mod:`~crm_assets.tools.lineage`: column-level lineage, down to raw.
* :mod:`~crm_assets.tools.dialects`: definitions transpiled to Spark, BigQuery, Snowflake, Postgres.
* :mod:`~crm_assets.tools.spark`: definitions run on Spark over the BI snapshot's Parquet.

Library code: functions return values and raise; the command line prints.
"""
