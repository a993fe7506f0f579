"""Which files feed which source table, and which of them are new.

A source table ``<table>`` is fed, in the input folder and in the landing folder alike, by
``<table>.csv``, by ``<table>_<anything>.csv`` (``orders_2026-07-01.csv``) and by any
``<table>/*.csv`` (see :func:`table_of`). Input files load first, then landing files, each group in
name order; ``_source_file`` records the path relative to its folder, prefixed ``landing/`` for the
landing folder. A landing file modified less than :data:`LANDING_SETTLE_SECONDS` ago is left for the
next run, so a file still being copied in is never read half-written.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from crm_assets.ingest.contracts import SOURCES

LANDING_PREFIX = "landing/"
"""What ``_source_file`` of a landing-folder file starts with, to tell it from an input file."""

LANDING_SETTLE_SECONDS = 5.0
"""A landing file younger than this (by mtime) may still be being written: left for a later run."""


@dataclass(frozen=True)
class SourceFile:
    """One file feeding a source table, and the name ``_source_file`` records for it."""

    table: str
    path: Path
    name: str


def table_of(relative: str | PurePosixPath) -> str | None:
    """The source table a file feeds, from its path relative to the input or landing folder.

    ``orders.csv``, ``orders_2026-07.csv`` and ``orders/anything.csv`` feed ``orders``; the longest
    table name wins (``order_items_1.csv`` feeds ``order_items``). Hidden and editor lock files
    (``.x.csv``, ``~$x.csv``), other extensions and deeper folders feed nothing.
    """
    parts = PurePosixPath(relative).parts
    if not parts or not parts[-1].lower().endswith(".csv") or parts[-1][0] in ".~":
        return None
    if len(parts) == 2:
        return parts[0] if parts[0] in SOURCES else None
    if len(parts) != 1:
        return None
    stem = parts[0][:-4]
    if stem in SOURCES:
        return stem
    prefixed = [t for t in SOURCES if stem.startswith(t + "_")]
    return max(prefixed, key=len) if prefixed else None


def _sort_key(relative: str) -> tuple[int, str]:
    # the base file first, then increments in name order
    return (0 if "/" not in relative and relative[:-4] in SOURCES else 1, relative)


def folder_files(folder: Path | None) -> dict[str, list[str]]:
    """Paths (relative, POSIX) of the CSV files in ``folder`` per table they feed, in load order."""
    out: dict[str, list[str]] = {}
    if folder is None or not folder.is_dir():
        return out
    candidates = [*folder.glob("*"), *folder.glob("*/*")]  # any case of ".csv"
    for path in candidates:
        if not path.is_file():
            continue
        relative = path.relative_to(folder).as_posix()
        table = table_of(relative)
        if table:
            out.setdefault(table, []).append(relative)
    return {t: sorted(files, key=_sort_key) for t, files in out.items()}


def source_files(input_dir: Path, table: str, landing_dir: Path | None = None,
                 *, now: float | None = None) -> list[SourceFile]:
    """The files feeding ``table``: input folder first, then landing folder, each in load order.

    Landing files modified within :data:`LANDING_SETTLE_SECONDS` of ``now`` are left out.
    """
    files = [SourceFile(table, input_dir / rel, rel)
             for rel in folder_files(input_dir).get(table, [])]
    if landing_dir is not None and landing_dir.resolve() != input_dir.resolve():
        now = time.time() if now is None else now
        for rel in folder_files(landing_dir).get(table, []):
            path = landing_dir / rel
            try:
                settled = now - path.stat().st_mtime >= LANDING_SETTLE_SECONDS
            except FileNotFoundError:  # moved away since the listing
                continue
            if settled:
                files.append(SourceFile(table, path, LANDING_PREFIX + rel))
    return files


def file_sha256(path: Path) -> str:
    """Hex sha256 of the file's bytes: its identity for "loaded once"."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
