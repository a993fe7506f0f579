"""Progress of a run on the terminal, as Dagster records it: each step's start and end, its
duration and rows, failed checks; then a summary line. Lines go to stderr (stdout stays what the
command answers), and ``--quiet`` turns them off."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

import dagster as dg

ROW_COUNT = "dagster/row_count"


@dataclass
class Progress:
    """Receives a run's events (:func:`crm_assets.defs.runs.watching`) and prints them."""

    out: TextIO = field(default_factory=lambda: sys.stderr)
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    failed: int = 0
    skipped: int = 0
    _rows: dict[str, list[int]] = field(default_factory=dict)

    def _line(self, step: str, text: str) -> None:
        print(f"{time.monotonic() - self.started:7.1f}s  {step:<40} {text}", file=self.out,
              flush=True)

    def __call__(self, entry: dg.EventLogEntry) -> None:
        event = entry.dagster_event
        if event is None:
            return
        if event.event_type == dg.DagsterEventType.RUN_START:
            self.started, self.done, self.failed, self.skipped = time.monotonic(), 0, 0, 0
            print(f"run {entry.run_id} of {entry.job_name} started", file=self.out, flush=True)
            return
        if event.event_type in (dg.DagsterEventType.RUN_SUCCESS,
                                dg.DagsterEventType.RUN_FAILURE):
            self.summary(entry.run_id, event.event_type == dg.DagsterEventType.RUN_SUCCESS)
            return
        if not entry.step_key:
            return
        step = entry.step_key.replace("__", "/")
        kind = event.event_type
        if kind == dg.DagsterEventType.STEP_START:
            self._rows[step] = []
            self._line(step, "started")
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
            rows = event.event_specific_data.materialization.metadata.get(ROW_COUNT)
            if rows is not None:
                self._rows.setdefault(step, []).append(int(rows.value))
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            check = event.asset_check_evaluation_data
            if not check.passed:
                self._line(step, f"check {check.check_name} FAILED: {check.description}")
        elif kind == dg.DagsterEventType.STEP_SUCCESS:
            self.done += 1
            seconds = event.event_specific_data.duration_ms / 1000
            self._line(step, f"done in {seconds:.1f} s" + self._rows_text(step))
        elif kind == dg.DagsterEventType.STEP_FAILURE:
            self.failed += 1
            self._line(step, "FAILED")
        elif kind == dg.DagsterEventType.STEP_SKIPPED:
            self.skipped += 1
            self._line(step, "skipped (what it reads was not built)")

    def _rows_text(self, step: str) -> str:
        counts = self._rows.get(step) or []
        if not counts:
            return ""
        if len(counts) == 1:
            return f", {counts[0]:,} rows"
        return f", {sum(counts):,} rows over {len(counts)} days"

    def summary(self, run_id: str, success: bool) -> None:
        """The last line: how the run ended, its steps, its time."""
        verdict = "succeeded" if success else "FAILED"
        parts = [f"{self.done} step{'' if self.done == 1 else 's'} done"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        print(f"run {run_id} {verdict}: {', '.join(parts)} in "
              f"{time.monotonic() - self.started:.1f} s", file=self.out, flush=True)
