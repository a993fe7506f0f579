"""The SQL catalogue: ``sql/<layer>/<name>.sql`` files as checked, bound definitions.

No Dagster here and no warehouse: a catalogue loads on a fresh clone.

* :mod:`~crm_assets.catalog.definition`: :class:`Definition`, :class:`Catalog`, :class:`Problem`.
* :mod:`~crm_assets.catalog.loader`: :func:`load_catalog`, the one entry point.
* :mod:`~crm_assets.catalog.header`: the YAML comment header.
* :mod:`~crm_assets.catalog.checks`: one file on its own (statement, allow-list, dependencies).
* :mod:`~crm_assets.catalog.query` and :mod:`~crm_assets.catalog.parse_tree`: what sqlglot and
  DuckDB's parser say of a query.
* :mod:`~crm_assets.catalog.graph`: duplicates, unknown tables, layers, cycles, order.
* :mod:`~crm_assets.catalog.binder`: output schemas from DuckDB over empty typed tables.
* :mod:`~crm_assets.catalog.cache`: what earlier loads found, in memory and on disk (JSON).
* :mod:`~crm_assets.catalog.data_tests`: the data tests a header declares.
"""

from crm_assets.catalog.cache import clear as clear_parse_cache
from crm_assets.catalog.definition import Catalog, CatalogError, Definition, Problem, Schema
from crm_assets.catalog.loader import load_catalog
from crm_assets.catalog.query import fingerprint

__all__ = ["Catalog", "CatalogError", "Definition", "Problem", "Schema", "clear_parse_cache",
           "fingerprint", "load_catalog"]
