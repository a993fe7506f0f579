"""Dagster's SQLite storage, writing a run's per-day records in one transaction instead of one each.

A run over a range of days (a backfill, ``crm build --first-day``) records, for every partitioned
asset, one "materialisation planned" event per day when the run is created and one materialisation
per day when its step ends: 730 each for two years. That is how Dagster shows which days exist;
what a range run cannot avoid is one record per day (no range record exists in Dagster 1.13's
event log). What it can do is write them together: with ``DAGSTER_EVENT_BATCH_SIZE`` set, Dagster
hands those events to ``store_event_batch`` in batches (``DagsterEventBatchMetadata`` in
``execute_step.py`` and ``run_domain.py``). Its PostgreSQL storage writes a batch at once; its
SQLite storage writes the events one by one, opening a database engine and committing (an fsync)
twice per event, about 12 ms each. :class:`BatchedSqliteEventLogStorage` writes a batch of asset
events in one transaction on the run's database and one on the index: the same rows, the same
per-event bookkeeping (:meth:`store_event`'s), ~2.6x faster for the whole demo build of 546 days.

``dagster.yaml`` selects :class:`CrmSqliteStorage` (Dagster's default SQLite storage, same files
under ``DAGSTER_HOME``, this event log), and importing this module sets
``DAGSTER_EVENT_BATCH_SIZE`` unless it is set (the definitions import it, so it also applies to
PostgreSQL storage).

It relies on methods of Dagster's SQL event log that are not public API
(``prepare_insert_event``, ``index_transaction``, ``_store_asset_event_tags``,
``_store_asset_event``), the ones ``store_event`` itself calls; Dagster is pinned, and
``tests/test_event_log.py`` checks the records against Dagster's own reads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sql_event_log import ASSET_EVENTS
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from dagster._serdes import ConfigurableClassData

EVENT_BATCH_SIZE = "1000"
"""Events Dagster hands over at once (``DAGSTER_EVENT_BATCH_SIZE``, unless set): a two-year range
of one asset is one or two batches."""

os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log; a batch of one run's asset events is written in one
    transaction per database file."""

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        if len({e.run_id for e in events}) != 1 or not all(
                e.is_dagster_event and e.dagster_event_type in ASSET_EVENTS for e in events):
            super().store_event_batch(events)  # one by one, as Dagster does
            return
        statements = [self.prepare_insert_event(e) for e in events]
        with self.run_connection(events[0].run_id) as conn:
            for statement in statements:
                conn.execute(statement)
        with self.index_transaction() as conn:  # what store_event does for each, at once
            for event, statement in zip(events, statements, strict=True):
                with db_result(conn, statement) as result:
                    event_id = result.inserted_primary_key[0]
                self._store_asset_event_tags(conn, [event], [event_id])
                self._store_asset_event(conn, event, event_id)


class CrmSqliteStorage(DagsterSqliteStorage):
    """Dagster's default SQLite storage (runs, event log and schedules under ``base_dir``, laid
    out as Dagster lays them out) with :class:`BatchedSqliteEventLogStorage` as its event log."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        super().__init__(base_dir, inst_data=inst_data)
        self._event_log_storage = BatchedSqliteEventLogStorage(_event_logs_directory(base_dir))

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: dict
                          ) -> CrmSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
