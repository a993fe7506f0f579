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
Within the batch, the tags of every event are one insert, and the asset's own row (its last
materialisation, which each event overwrites) is written once per kind of event, by the last: a
further 9 s of the demo build's 37.

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
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sql_event_log import ASSET_EVENTS
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

EVENT_BATCH_SIZE = "1000"
"""Events Dagster hands over at once (``DAGSTER_EVENT_BATCH_SIZE``, unless set): a two-year range
of one asset is one or two batches."""

os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)


ENGINES_KEPT = 8
"""Database files (the index and the latest runs' shards) whose SQLAlchemy engine is kept."""


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log; a batch of one run's asset events is written in one
    transaction per database file, and each file's engine is kept between writes.

    Dagster's ``_connect`` creates a SQLAlchemy engine for every read and write and disposes of it
    afterwards, so each of a run's ~10 records per step also pays for a new engine, a new SQLite
    connection, compiling its statement again (an engine's statement cache dies with it) and, on
    closing the file's last connection, a WAL checkpoint. Here the engine of each of the last
    :data:`ENGINES_KEPT` database files is kept, with one SQLite connection open between uses
    (``_db_lock``, Dagster's, serialises them; the connection may move between threads). Each use
    is still its own transaction with its own commit, so what other processes see and the
    locking are Dagster's; an idle connection holds no lock. The project's worker processes are
    spawned, not forked, so none inherits an open connection.

    The files are in WAL mode (Dagster sets it); each connection also sets ``synchronous=NORMAL``,
    SQLite's advice for WAL: a commit is no longer flushed to the disk (an fsync each, ~1 ms, ~3,000
    per night), and a killed process still loses nothing it committed. Only a power cut or an
    OS crash can lose the last records; the file stays consistent, and the warehouse (whose own
    bookkeeping decides what a run does next) is unaffected.
    """

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        super().__init__(base_dir, inst_data=inst_data)
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._tables: set[str] = set()

    def has_table(self, table_name: str) -> bool:
        """Dagster asks, for every asset event it stores with tags (each day of a range run),
        whether the index holds a table, and its SQLite storage opens a new engine to answer
        (~1 ms; 8 s of the demo build's 46 s). A table found is remembered: none is dropped but
        by :meth:`wipe`."""
        if table_name not in self._tables and super().has_table(table_name):
            self._tables.add(table_name)
        return table_name in self._tables

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engines.pop(shard, None)
            if engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard), poolclass=QueuePool, pool_size=1,
                    max_overflow=2, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                                                  "check_same_thread": False})
                sqlalchemy_event.listen(engine, "connect", _sync_normal)
            self._engines[shard] = engine  # the most recently used last
            while len(self._engines) > ENGINES_KEPT:
                self._engines.popitem(last=False)[1].dispose()
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def wipe(self) -> None:
        with self._db_lock:  # no connection stays open on a file about to be deleted
            while self._engines:
                self._engines.popitem()[1].dispose()
            self._tables.clear()
        super().wipe()

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
            ids = []
            for statement in statements:
                with db_result(conn, statement) as result:
                    ids.append(result.inserted_primary_key[0])
            self._store_asset_event_tags(conn, list(events), ids)  # one insert of all tags
            # The asset's row (its last materialisation, run, timestamp) is overwritten by each
            # event of a kind in turn: the last of each kind, in order, leaves what all would.
            last = {(e.dagster_event.asset_key, e.dagster_event_type): i
                    for i, e in enumerate(events)}
            for i in sorted(last.values()):
                self._store_asset_event(conn, events[i], ids[i])


def _sync_normal(dbapi_connection, _record) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


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
