"""The layers of the warehouse, in data-flow order: one DuckDB schema each, plus ``meta``.

``raw -> staging -> core -> segments -> events -> marts``; a definition may read only its own or
earlier layers. ``meta`` holds the framework's records (loaded files, versions, runs, merges).
"""

LAYERS: tuple[str, ...] = ("raw", "staging", "core", "segments", "events", "marts")
"""Schemas in data-flow order; a definition may read only its own or earlier layers."""

SCHEMAS: tuple[str, ...] = (*LAYERS, "meta")
"""Every schema of the warehouse."""
