"""The demo-data generator: realistic dirty CRM source files with their ground truth.

A tool beside the product, not part of it: nothing the warehouse runs (assets, checks, serving)
imports this package, which stays out of the product's import graph; ``crm generate`` imports it
when called. It reads the input contract (:mod:`crm_assets.ingest.contracts`) so that what it
writes is what the product ingests. See :mod:`crm_assets.demo.generator` for what it writes, and
the modules beside it for how: ``reference`` (the fixed lists), ``keyed_random`` and
``sql_literals`` (the SQL building blocks), ``run`` (one run's parameters and COPY),
``persons``, ``records``, ``activity``, ``orders``, ``interactions``, ``sessions`` and
``fixed_tables`` (one table or file each).
"""

from crm_assets.demo.generator import generate

__all__ = ["generate"]
