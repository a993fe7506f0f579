"""Runs whose process died: marked failed, their pool slots given back, with nobody's help.

Every step that writes the warehouse holds the one slot of the ``duckdb_writer`` pool while it
runs (``dagster.yaml``). A run killed with its step (SIGKILL, the out-of-memory killer, a reboot)
never gives the slot back and stays STARTED: every later run, the schedule's included, would then
wait for that slot forever. Dagster's daemon frees the slots of *finished* runs
(``run_monitoring.free_slots_after_run_end_seconds``), but nothing finishes a run executed in a
process that is gone: a ``crm`` command runs its job in its own process (``execute_in_process``),
which no daemon watches.

So each run records which process executes it (:data:`PROCESS_TAG`: host, pid and the process's
start time, so a recycled pid is not mistaken for it): ``crm`` when it launches a run, and the
warehouse resource when a run starts in a process Dagster launched. :func:`recover_dead_runs`
marks failed every unfinished run whose process on this host no longer exists and frees the pool
slots of every finished run. ``crm`` calls it before each run it launches, and the ``dead_runs``
sensor (running by default) every minute under ``dagster dev`` or the daemon. The data needs no
repair: every step writes in one transaction and the next run takes in what the dead one missed
(:mod:`crm_assets.warehouse.state`).
"""

import os
import socket
from pathlib import Path

import dagster as dg

PROCESS_TAG = "crm/process"
"""Run tag: ``host:pid:start`` of the process executing the run."""

_UNFINISHED = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
               dg.DagsterRunStatus.CANCELING]


def this_process() -> str:
    """``host:pid:start`` of this process (``start``: its start time in clock ticks, Linux)."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_started(pid)}"


def _started(pid: int) -> str:
    """When process ``pid`` started (field 22 of ``/proc/<pid>/stat``); '' where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]  # fields after "(comm)"; 22nd field overall


def is_gone(process: str) -> bool:
    """Whether the process a :data:`PROCESS_TAG` names is known to no longer exist.

    A process on another host cannot be checked from here: it counts as alive.
    """
    host, _, rest = process.partition(":")
    pid_text, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's process: it exists
        pass
    return bool(started) and _started(pid) not in ("", started)  # the pid now names another one


def recover_dead_runs(instance: dg.DagsterInstance, by: str) -> list[str]:
    """Mark failed the unfinished runs whose process is gone, free the pool slots of finished
    runs; the ids of the runs marked failed. ``by`` says who noticed (for the run's log)."""
    recovered = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=_UNFINISHED)):
        process = run.tags.get(PROCESS_TAG)
        if not process or not is_gone(process):
            continue
        instance.report_run_failed(
            run, message=f"The process running it ({process}) is gone (killed, out of memory, "
                         f"or the machine restarted). Marked failed by {by}; its pool slots are "
                         "freed and the next run takes in what it missed.")
        recovered.append(run.run_id)
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        for run_id in storage.get_concurrency_run_ids():
            run = instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                storage.free_concurrency_slots_for_run(run_id)
    return recovered


def build_dead_runs_sensor(minimum_interval_seconds: int = 60) -> dg.SensorDefinition:
    """``dead_runs``: :func:`recover_dead_runs` every minute (ships running: it only repairs)."""

    @dg.sensor(name="dead_runs", minimum_interval_seconds=minimum_interval_seconds,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Marks failed the runs whose process died and frees their pool "
                           "slots, so that later runs do not wait for them forever.")
    def dead_runs(context: dg.SensorEvaluationContext):
        recovered = recover_dead_runs(context.instance, by="the dead_runs sensor")
        if recovered:
            context.log.warning(f"marked failed, their process gone: {', '.join(recovered)}")
        return dg.SkipReason(f"{len(recovered)} dead run(s) marked failed")

    return dead_runs
