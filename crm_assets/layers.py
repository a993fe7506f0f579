"""The layers of the warehouse, in data-flow order: one DuckDB schema each, plus ``meta``.

``raw -> staging -> core -> segments -> events -> marts``; a definition may read only its own or
earlier layers. ``meta`` holds the framework's records (loaded files, versions, runs, merges).
"""

LAYERS: tuple[str, ...] = ("raw", "staging", "core", "segments", "events", "marts")
"""Schemas in data-flow order; a definition may read only its own or earlier layers."""

SCHEMAS: tuple[str, ...] = (*LAYERS, "meta")
"""Every schema of the warehouse."""

READABLE_FROM: dict[str, str] = {"marts.segment_membership_history": "events"}
"""Tables in a later schema than the earliest layer that may read them. The membership history
lives in ``marts`` for BI, but each segment writes it as it runs, before any event: events may read
it (``segment_entered``), segments may not (a segment would then wait for itself)."""
