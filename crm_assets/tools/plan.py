"""What a change on disk invalidates in the warehouse, and the runs that rebuild it (``crm plan``).

Dagster marks only the edited asset as code-stale; what reads it is not flagged until it rebuilds.
:func:`make_plan` answers "what must be rebuilt": it compares every definition on disk with what the
warehouse last built and adds everything downstream in the asset graph (Python assets included:
identity reads staging, ``marts.event_daily_counts`` reads every event table, and the segment
history that marts read is written by the segment assets), with the day partitions of events.
:func:`apply_plan` launches exactly that.

What "last built" means, per kind:

* **event**: the versions present per day in ``events.<name>`` (``event_date``,
  ``definition_version``), so a half-finished backfill of a new version is planned for the days that
  still carry another one. Days without any row cannot say which version built them: inside the
  span of built days they are rebuilt together with the stale days next to them.
* **segment**: the version of the latest run in ``meta.segment_runs`` (the ``definition_version``
  column of the table, then ``meta.definition_versions``, when there is none).
* **model**: the version of its most recent materialisation: the latest of the Dagster instance's
  last materialisation (``dagster/code_version``) when an instance is given, and the version first
  materialised last in ``meta.definition_versions``. Without an instance, a model reverted to a
  version it had before is not recognised as already built (that table records first times only).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import duckdb

from crm_assets.defs.partitions import AS_OF_TAG, partition_range_tags
from crm_assets.defs.runs import BuildResult, run_job
from crm_assets.settings import Settings
from crm_assets.tools.versions import short
from crm_assets.warehouse.connection import table_exists
from crm_assets.warehouse.tables import DEFINITION_VERSIONS, SEGMENT_RUNS


def compress_days(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted days as maximal ranges of consecutive days, ``[(first, last), ...]``."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if ranges and day == ranges[-1][1] + timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def format_range(first: date, last: date) -> str:
    return first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass
class BuiltState:
    """What the warehouse holds of one asset: ``exists`` False when never built (or dropped).

    ``version`` is the version of its last build (models, segments); ``days`` the versions present
    per day (events); ``built_days`` the days known to be built, rows or not (events).
    """

    exists: bool
    version: str | None = None
    days: dict[date, frozenset[str]] = field(default_factory=dict)
    built_days: set[date] = field(default_factory=set)


def _latest_recorded(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, datetime]]:
    if not table_exists(con, DEFINITION_VERSIONS.name):
        return {}
    rows = con.execute(
        f"""SELECT layer || '.' || name, definition_version, first_materialized_at
            FROM {DEFINITION_VERSIONS.name}
            QUALIFY row_number() OVER (
                PARTITION BY layer, name
                ORDER BY first_materialized_at DESC, definition_version) = 1"""
    ).fetchall()
    return {table: (version, at) for table, version, at in rows}


def _instance_version(instance: dg.DagsterInstance | None, key: dg.AssetKey
                      ) -> tuple[str, datetime] | None:
    if instance is None:
        return None
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return None
    version = (event.asset_materialization.tags or {}).get("dagster/code_version")
    if not version:
        return None
    return version, datetime.fromtimestamp(event.timestamp, tz=UTC)


def built_state(con: duckdb.DuckDBPyConnection, table: str, kind: str,
                recorded: Mapping[str, tuple[str, datetime]],
                instance: dg.DagsterInstance | None = None) -> BuiltState:
    """What the warehouse (and, if given, the Dagster instance) says was last built of ``table``."""
    key = dg.AssetKey(table.split("."))
    if not table_exists(con, table):
        return BuiltState(exists=False)
    if kind == "event":
        rows = con.execute(
            f"SELECT event_date, list(DISTINCT definition_version) FROM {table} GROUP BY 1"
        ).fetchall()
        days = {day: frozenset(versions) for day, versions in rows}
        built = set(_days(min(days), max(days))) if days else set()
        if instance is not None:
            built |= {date.fromisoformat(k) for k in instance.get_materialized_partitions(key)}
        version = recorded.get(table, (None, None))[0]
        return BuiltState(exists=True, version=version, days=days, built_days=built)
    if kind == "segment":
        segment = table.split(".", 1)[1]
        row = None
        if table_exists(con, SEGMENT_RUNS.name):
            row = con.execute(f"SELECT definition_version FROM {SEGMENT_RUNS.name} "
                              "WHERE segment = ? ORDER BY computed_at DESC LIMIT 1",
                              [segment]).fetchone()
        if row is None:
            row = con.execute(f"SELECT any_value(definition_version) FROM {table}").fetchone()
        version = row[0] if row and row[0] else recorded.get(table, (None, None))[0]
        return BuiltState(exists=True, version=version)
    candidates = [c for c in (recorded.get(table), _instance_version(instance, key)) if c]
    version = max(candidates, key=lambda c: c[1])[0] if candidates else None
    return BuiltState(exists=True, version=version)


# --------------------------------------------------------------------------------------------
# the plan


@dataclass
class PlannedAsset:
    """One asset to rebuild, and why.

    ``reason`` is ``new`` (never built), ``changed`` (its version on disk is not the one built) or
    ``downstream`` (it reads, directly or not, an asset in ``because_of``). ``ranges`` are the
    inclusive day ranges to rebuild of a partitioned event (empty for the others).
    """

    asset: str
    kind: str
    reason: str
    disk_version: str | None = None
    built_versions: list[str] = field(default_factory=list)
    because_of: list[str] = field(default_factory=list)
    ranges: list[tuple[date, date]] = field(default_factory=list)

    @property
    def partitioned(self) -> bool:
        return self.kind == "event"

    def to_json(self) -> dict:
        return {"asset": self.asset, "kind": self.kind, "reason": self.reason,
                "disk_version": self.disk_version, "built_versions": self.built_versions,
                "because_of": self.because_of,
                "ranges": [[a.isoformat(), b.isoformat()] for a, b in self.ranges]}


@dataclass
class PlannedRun:
    """One run of :func:`apply_plan`: ``assets``, over ``first_day..last_day`` if partitioned."""

    assets: list[str]
    first_day: date | None = None
    last_day: date | None = None

    def to_json(self) -> dict:
        return {"assets": self.assets,
                "first_day": self.first_day.isoformat() if self.first_day else None,
                "last_day": self.last_day.isoformat() if self.last_day else None}


@dataclass
class Plan:
    """Every asset to rebuild, in dependency order, and the runs that rebuild exactly them."""

    as_of: date
    assets: list[PlannedAsset]
    runs: list[PlannedRun]

    @property
    def empty(self) -> bool:
        return not self.assets

    def asset(self, name: str) -> PlannedAsset | None:
        return next((a for a in self.assets if a.asset == name), None)

    def to_json(self) -> dict:
        return {"as_of": self.as_of.isoformat(), "assets": [a.to_json() for a in self.assets],
                "runs": [r.to_json() for r in self.runs]}

    def format(self) -> str:
        """Readable text: one line per asset, then the runs ``--apply`` launches."""
        if self.empty:
            return "Nothing to rebuild: the warehouse was built from the definitions on disk."
        changed = sum(a.reason != "downstream" for a in self.assets)
        out = [f"{len(self.assets)} asset(s) to rebuild: {changed} changed or new, "
               f"{len(self.assets) - changed} downstream of them (segments as of {self.as_of})"]
        width = max(len(a.asset) for a in self.assets)
        for a in self.assets:
            if a.reason == "downstream":
                why = f"reads {', '.join(a.because_of)}"
            elif a.reason == "new":
                why = f"never built; version {short(a.disk_version)}"
            else:
                built = ", ".join(short(v) for v in a.built_versions) or "-"
                why = f"{built} -> {short(a.disk_version)}"
            days = (" days " + ", ".join(format_range(*r) for r in a.ranges)) if a.ranges else ""
            out.append(f"  {a.asset:<{width}}  {a.reason:<10}  {why}{days}")
        out.append("")
        out.append("`crm plan --apply` launches:")
        for i, run in enumerate(self.runs, 1):
            scope = (f"days {format_range(run.first_day, run.last_day)}" if run.first_day
                     else f"as of {self.as_of}")
            out.append(textwrap.fill(f"{scope}: {', '.join(run.assets)}", width=100,
                                     initial_indent=f"  {i}. ", subsequent_indent="       ",
                                     break_on_hyphens=False))
        return "\n".join(out)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)


def _event_ranges(state: BuiltState, disk_version: str, downstream: bool,
                  default: tuple[date, date]) -> list[tuple[date, date]]:
    """Day ranges of an event to rebuild; empty when its days are all built by ``disk_version``."""
    if not state.exists:
        return [default]
    if downstream:
        return compress_days(state.built_days) or [default]
    if not state.days:  # built, but no occurrence on any day: the recorded version decides
        if state.version == disk_version:
            return []
        return compress_days(state.built_days) or [default]
    stale = {day for day, versions in state.days.items() if versions != {disk_version}}
    if not stale:
        return []
    empty = state.built_days - set(state.days)
    return [r for r in compress_days(stale | empty)
            if any(r[0] <= day <= r[1] for day in stale)]


def make_plan(defs: dg.Definitions, con: duckdb.DuckDBPyConnection, *, as_of: date,
              partition_start: date, instance: dg.DagsterInstance | None = None) -> Plan:
    """Compare the SQL assets of ``defs`` (the definitions on disk) with the warehouse ``con``.

    Args:
        defs: the project's definitions, built from the files on disk; a SQL asset is one with a
            ``code_version`` and a ``kind`` in its metadata
            (:func:`crm_assets.defs.sql_assets.build_sql_asset`).
        con: the warehouse, read-only is enough.
        as_of: the as-of date segments are rebuilt for, and the last day of a never-built event.
        partition_start: the first day of a never-built event.
        instance: the Dagster instance, if any: adds its materialised partitions and the code
            version of each model's last materialisation.

    Returns:
        The assets to rebuild (changed or new ones and everything downstream of them in the asset
        graph) in dependency order, and the runs that rebuild them: unpartitioned assets upstream
        of the events first (one run), then one run per distinct day range of events, then the
        unpartitioned assets that read the events (one run).
    """
    graph = defs.resolve_asset_graph()
    order = list(graph.toposorted_asset_keys)
    recorded = _latest_recorded(con)
    default = (partition_start, as_of)

    direct: dict[dg.AssetKey, PlannedAsset] = {}
    states: dict[dg.AssetKey, BuiltState] = {}
    for key in order:
        node = graph.get(key)
        kind = str((node.metadata or {}).get("kind") or "")
        if not node.code_version or not kind:
            continue  # not a SQL definition: its code has no version to compare
        table = ".".join(key.path)
        state = built_state(con, table, kind, recorded, instance)
        states[key] = state
        built = (sorted({v for vs in state.days.values() for v in vs}) if kind == "event"
                 and state.days else [state.version] if state.version else [])
        if not state.exists or (not built and state.version is None):
            reason = "new"
        elif kind == "event":
            reason = "changed" if _event_ranges(state, node.code_version, False, default) else ""
        else:
            reason = "changed" if state.version != node.code_version else ""
        if reason:
            direct[key] = PlannedAsset(table, kind, reason, node.code_version, built)

    reach = {k: dg.AssetSelection.assets(k).downstream().resolve(graph) for k in direct}
    hit = set().union(*reach.values())
    assets: list[PlannedAsset] = []
    for key in order:
        if key not in hit:
            continue
        table = ".".join(key.path)
        node = graph.get(key)
        kind = str((node.metadata or {}).get("kind") or ("event" if node.is_partitioned
                                                         else "python"))
        planned = direct.get(key)
        if planned is None:
            causes = [".".join(k.path) for k in direct if key in reach[k]]
            planned = PlannedAsset(table, kind, "downstream", node.code_version,
                                   because_of=causes)
        if node.is_partitioned:
            state = states.get(key) or BuiltState(exists=False)
            planned.ranges = _event_ranges(state, node.code_version or "",
                                           planned.reason == "downstream", default)
        assets.append(planned)
    return Plan(as_of=as_of, assets=assets, runs=_runs(assets, graph))


def _runs(assets: list[PlannedAsset], graph) -> list[PlannedRun]:
    events = [a for a in assets if a.ranges]
    event_keys = [dg.AssetKey(a.asset.split(".")) for a in events]
    after_events = (dg.AssetSelection.assets(*event_keys).downstream().resolve(graph)
                    if event_keys else set())
    before = [a.asset for a in assets if not a.ranges
              and dg.AssetKey(a.asset.split(".")) not in after_events]
    after = [a.asset for a in assets if not a.ranges
             and dg.AssetKey(a.asset.split(".")) in after_events]
    by_range: dict[tuple[date, date], list[str]] = {}
    for a in events:
        for r in a.ranges:
            by_range.setdefault(r, []).append(a.asset)
    runs = [PlannedRun(before)] if before else []
    # in order of first appearance: dependency order of events, then days (an event may read one)
    runs += [PlannedRun(names, first, last) for (first, last), names in by_range.items()]
    if after:
        runs.append(PlannedRun(after))
    return runs


@dataclass
class AppliedRun:
    run: PlannedRun
    result: BuildResult


def apply_plan(plan: Plan, defs: dg.Definitions, instance: dg.DagsterInstance, *,
               log_level: str = "WARNING", settings: Settings | None = None
               ) -> list[AppliedRun]:
    """Launch the plan's runs in order, in-process on ``instance``; stop at the first failure.

    Each run executes the ``build_all`` job restricted to the run's assets. Partitioned runs carry
    the partition range tags (one run for the whole range, as ``BackfillPolicy.single_run()``
    wants), and every run carries the as-of tag that segments read.
    """
    applied: list[AppliedRun] = []
    for run in plan.runs:
        tags = {AS_OF_TAG: plan.as_of.isoformat()}
        if run.first_day is not None and run.last_day is not None:
            tags.update(partition_range_tags(run.first_day, run.last_day))
        result = run_job(defs, "build_all", instance=instance, tags=tags, log_level=log_level,
                         asset_selection=[dg.AssetKey(a.split(".")) for a in run.assets],
                         settings=settings)
        applied.append(AppliedRun(run, result))
        if not result.success:
            break
    return applied
