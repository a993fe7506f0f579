"""Dagster wiring only: assets, checks, jobs, schedules, sensors, the resource, launching runs.

What each asset does is a plain function elsewhere (:mod:`crm_assets.warehouse`,
:mod:`crm_assets.ingest`, :mod:`crm_assets.identity`, :mod:`crm_assets.serving`); the modules here
declare keys, dependencies, partitions, pools, checks and metadata, and
:mod:`~crm_assets.defs.definitions` gathers them.

Modules declaring assets, ops, checks, schedules or sensors do not use ``from __future__ import
annotations``: Dagster reads the type of a ``context`` parameter when the function is decorated.
"""
