"""Definition versions: what was materialised when, and the SQL diffs between versions.

A definition's version is the fingerprint of its normalised SQL
(:func:`crm_assets.catalog.query.fingerprint`), the asset's ``code_version``. Every version is
recorded the first time it is materialised in ``meta.definition_versions`` (with its SQL and run
id), and segment and event rows carry the version that produced them. ``crm versions NAME`` prints
:func:`format_history`.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from crm_assets.warehouse.connection import table_exists
from crm_assets.warehouse.tables import DEFINITION_VERSIONS

SHORT = 12
"""Characters of a version shown to people (the full sha256 is stored)."""


def short(version: str | None) -> str:
    return (version or "-")[:SHORT]


@dataclass(frozen=True)
class VersionRecord:
    """One row of ``meta.definition_versions``."""

    version: str
    sql: str
    first_materialized_at: datetime
    run_id: str | None


def history(con: duckdb.DuckDBPyConnection, table: str) -> list[VersionRecord]:
    """Every version of ``table`` ever materialised, oldest first (empty if none or no table)."""
    if not table_exists(con, DEFINITION_VERSIONS.name):
        return []
    layer, name = table.split(".", 1)
    rows = con.execute(
        f"""SELECT definition_version, sql, first_materialized_at, run_id
            FROM {DEFINITION_VERSIONS.name}
            WHERE layer = ? AND name = ? ORDER BY first_materialized_at, definition_version""",
        [layer, name]).fetchall()
    return [VersionRecord(*row) for row in rows]


def sql_diff(old: str, new: str, old_label: str, new_label: str) -> str:
    """A unified diff of two SQL texts (empty when they are equal line for line)."""
    lines = difflib.unified_diff(old.strip().splitlines(), new.strip().splitlines(),
                                 fromfile=old_label, tofile=new_label, lineterm="")
    return "\n".join(lines)


def format_history(table: str, records: Sequence[VersionRecord], disk_version: str | None,
                   disk_sql: str | None) -> str:
    """The text ``crm versions`` prints: the versions, then a diff between consecutive ones.

    The version on disk is marked; when it was never materialised, a last diff shows what the next
    run will change relative to the last materialised version.
    """
    out: list[str] = []
    known = {r.version for r in records}
    if disk_version is None:
        state = "no file on disk (definition removed)"
    elif disk_version in known:
        state = f"on disk: {short(disk_version)}, already materialised"
    else:
        state = f"on disk: {short(disk_version)}, NOT materialised yet"
    out.append(f"{table}: {len(records)} materialised version(s); {state}")
    if records:
        out.append(f"  {'#':>3}  {'version':<{SHORT}}  {'first materialised at (UTC)':<27}  run")
        for i, r in enumerate(records, 1):
            mark = "  <- on disk" if r.version == disk_version else ""
            out.append(f"  {i:>3}  {short(r.version):<{SHORT}}  "
                       f"{_utc(r.first_materialized_at):<27}  {r.run_id or '-'}{mark}")
    pairs = [(records[i - 1], records[i]) for i in range(1, len(records))]
    for old, new in pairs:
        out.append("")
        out.append(f"diff {short(old.version)} -> {short(new.version)}:")
        out.append(sql_diff(old.sql, new.sql, f"{table}@{short(old.version)}",
                            f"{table}@{short(new.version)}")
                   or "(same text; the versions differ only in what the fingerprint ignores)")
    if disk_version is not None and disk_sql is not None and disk_version not in known and records:
        last = records[-1]
        out.append("")
        out.append(f"diff {short(last.version)} -> {short(disk_version)} "
                   "(on disk, not materialised):")
        out.append(sql_diff(last.sql, disk_sql, f"{table}@{short(last.version)}",
                            f"{table}@{short(disk_version)} (disk)"))
    return "\n".join(out)


def _utc(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")
