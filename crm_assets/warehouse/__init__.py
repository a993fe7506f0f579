"""The DuckDB warehouse: connections, the framework's own tables, and materialisations.

No Dagster here: every materialisation is a plain function of a DuckDB connection, so assets, the
command line, benchmarks and tests call the same code.

* :mod:`~crm_assets.warehouse.connection`: opening the file the same way everywhere.
* :mod:`~crm_assets.warehouse.tables`: every framework table, declared once.
* :mod:`~crm_assets.warehouse.models`, :mod:`~crm_assets.warehouse.segments`,
  :mod:`~crm_assets.warehouse.events`: the three kinds of SQL definition.
* :mod:`~crm_assets.warehouse.marts`: marts over every event table.
* :mod:`~crm_assets.warehouse.accounting`: every raw row staged or rejected, once.
"""

from crm_assets.warehouse.connection import connect, prepare_connection, table_exists, transaction
from crm_assets.warehouse.tables import ensure_framework_tables

__all__ = ["connect", "ensure_framework_tables", "prepare_connection", "table_exists",
           "transaction"]
