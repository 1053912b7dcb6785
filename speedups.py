"""Where the project trades plain Dagster for speed: every such trick is here, each with what it measured.

The default path reads as plain Dagster; each trick below is one name a reader can look up, with its gain as
measured (on this project's 2-core machine, December 2026) and what would undo it. Remove one whose gain no longer
pays for it, and say so in docs/architecture.md (Performance).

- `PooledSqliteStorage`: Dagster's SQLite storages with one pooled engine per database file, named in the state
  dir's dagster.yaml (`governance.state`). About 2 s off every candidate run (a 20k-row run went from 4.4 s to
  2.5 s). It overrides private pieces of Dagster's SQLite storages: tests/test_storage.py names each one and fails
  on a Dagster upgrade that changes them.
- `spare_the_collector`: the code location's imports frozen out of Python's garbage collections, when it loads.
  1.4-2 s of a fresh 1M-row candidate run.
- `importing_meanwhile`: Great Expectations imported on a second thread while `applications` generates its data,
  so that its seconds of import overlap the generator's vectorised work in a fresh run process. Measured again
  (December 2026, 1M rows, three alternating pairs of fresh processes, generating then importing GX): at a load
  average of 2-4 on the 2 cores, 3.85 s (3.13-5.31) with the thread against 4.40 s (4.33-5.46) without, 0.55 s
  saved (1.14x); at a load of about 8, where no core is idle for the thread, 16.1 s against 13.2 s (1.22x
  slower). Kept: a run worker normally has its core to itself.

Removed (December 2026): the shared snapshot parse, which kept validation's parse of a snapshot for training in
the same run process. Measured again at a million rows (five alternating pairs): the second read took 0.030 s with
the kept parse against 0.147 s parsing again, 0.12 s of a candidate run that takes tens of seconds, which did not
pay for a module-level cache shared across steps.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from dagster._core.storage.event_log.base import EventLogCursor
from dagster._core.storage.event_log.polling_event_watcher import SqlPollingEventWatcher
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClassData
from sqlalchemy import Connection, Engine, create_engine

# --- the pooled SQLite storage ----------------------------------------------------------------------------------


class _Engines:
    """One pooled engine per SQLite file; the least recently used are closed beyond `limit` (the event
    log has a file per run). A forked child drops its parent's connections and opens its own."""

    def __init__(self, limit: int = 8, **connect_args) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._connect_args = {"check_same_thread": False, **connect_args}
        self._limit = limit
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def get(self, conn_string: str) -> Engine:
        with self._lock:
            self._forget_if_forked()
            engine = self._engines.pop(conn_string, None)
            if engine is None:
                # No overflow limit: a burst of threads gets extra connections (closed when returned)
                # rather than waiting on the pool, as NullPool would have served them.
                engine = create_engine(conn_string, max_overflow=-1, connect_args=self._connect_args)
            self._engines[conn_string] = engine
            while len(self._engines) > self._limit:
                self._engines.popitem(last=False)[1].dispose()
            return engine

    def dispose(self) -> None:
        with self._lock:
            self._forget_if_forked()
            while self._engines:
                self._engines.popitem()[1].dispose()

    def _forget_if_forked(self) -> None:
        if self._pid != os.getpid():  # the parent's connections: not ours to use or to close
            for engine in self._engines.values():
                engine.dispose(close=False)
            self._engines.clear()
            self._pid = os.getpid()


@contextmanager
def _transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn, conn.begin():
        yield conn


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines = _Engines(timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
        self._polling: SqlPollingEventWatcher | None = None
        super().__init__(base_dir, inst_data)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engines.get(self.conn_string_for_shard(shard))
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with _transaction(engine) as conn:
                yield conn

    def has_table(self, table_name: str) -> bool:
        engine = self._engines.get(self.conn_string_for_shard(INDEX_SHARD_NAME))
        with engine.connect() as conn:
            return bool(engine.dialect.has_table(conn, table_name))

    def watch(self, run_id: str, cursor: str | None, callback) -> None:
        """The UI's live run log, polled as Dagster's PostgreSQL storage does (see the module's docstring)."""
        if cursor and EventLogCursor.parse(cursor).is_offset_cursor():
            raise ValueError("a run's events are watched from a storage-id cursor, not an offset")
        if self._polling is None:
            self._polling = SqlPollingEventWatcher(self)
        self._polling.watch_run(run_id, cursor, callback)

    def end_watch(self, run_id: str, handler) -> None:
        if self._polling is not None:
            self._polling.unwatch_run(run_id, handler)

    def wipe(self) -> None:
        self._engines.dispose()  # before the run shards' files are deleted
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        if self._polling is not None:
            self._polling.close()
            self._polling = None
        self._engines.dispose()


class _PooledFile:
    """`connect()` over a pooled engine, for the storages kept in one SQLite file (runs, schedules)."""

    _conn_string: str

    def __init__(self, conn_string: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines = _Engines()
        super().__init__(conn_string, inst_data)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with _transaction(self._engines.get(self._conn_string)) as conn:
            yield conn

    def dispose(self) -> None:
        super().dispose()
        self._engines.dispose()


class PooledSqliteRunStorage(_PooledFile, SqliteRunStorage):
    pass


class PooledSqliteScheduleStorage(_PooledFile, SqliteScheduleStorage):
    pass


class PooledSqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage (same directories under `base_dir`) over the pooled storages above; configured in
    the state dir's dagster.yaml as `storage: custom:` with this module and class.

    Dagster's SQLite storages create a new SQLAlchemy engine, and so open a new SQLite connection, for every query
    and every event they store (`NullPool`). A governed candidate run stores about 150 events and makes several
    hundred queries, and those connects cost about 2 s per run: most of what Dagster adds to a run (measured with
    `bench/pipeline_overhead.py`). These subclasses keep one pooled engine per database file in each process
    instead. Files, tables, migrations, WAL mode and the event log's per-run shards and lock are Dagster's own, so a
    state dir reads the same with either storage. The production configuration uses Dagster's PostgreSQL storage,
    which pools already.

    The UI's live run log polls, as it does on PostgreSQL (Dagster's `SqlPollingEventWatcher`: every 250 ms while a
    run's events keep coming, backing off to 16 s while they do not). Dagster's SQLite watch waits for a file change
    instead, and with pooled connections that is not enough: a commit goes to the run's WAL, whose write comes
    before the commit is visible to readers, so a watcher woken by it can read too early and then wait for the next
    write, which after a run's last event never comes.
    """

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self.base_dir = base_dir
        self._run_storage = PooledSqliteRunStorage.from_local(os.path.join(base_dir, "history"))
        self._event_log_storage = PooledSqliteEventLogStorage(os.path.join(base_dir, "history", "runs"))
        self._schedule_storage = PooledSqliteScheduleStorage.from_local(os.path.join(base_dir, "schedules"))
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()  # not its __init__: that opens unpooled storages

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value) -> PooledSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)


# --- the collector freeze ---------------------------------------------------------------------------------------


def spare_the_collector() -> None:
    """Keep what the process has imported so far out of Python's garbage collections.

    A run process holds several hundred thousand objects from its imports (Dagster, pandas,
    scikit-learn, later MLflow, Great Expectations, SHAP) for its whole life, and each full collection
    re-scans every one of them. In a fresh process running a 1M-row candidate, the full collections
    after the code location loaded took 1.4-2 s (0.4-0.5 s apiece). Frozen, these objects are skipped, and a
    larger young generation lets a step's temporaries die before a collection sees them: in the same
    run, no full collection ran before the run ended. The pipeline benchmark calls it too, so that its
    runs are collected as a run process's are. Call it once, after the imports: a frozen object is never
    collected, even once it is garbage.
    """
    gc.collect()  # what is garbage now is not frozen with the rest
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


# --- the import thread ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def importing_meanwhile(*modules: str) -> Iterator[None]:
    """Import `modules` on a second thread while the body runs; wait for them when it ends.

    A run process is fresh, and Great Expectations takes seconds to import in the step that first needs
    it; started a step early, around vectorised work that leaves a core idle (generating data), the import
    mostly overlaps it. Wrap only code that imports nothing and leaves warning filters alone (imports
    change them process-wide), and that hands the GIL back rarely: an estimator's fit hands it back
    thousands of times and can stall behind an importing thread. A failed import is left to fail again,
    with its error, where the module is really used.
    """
    thread = threading.Thread(target=_import_quietly, args=(modules,), name="importing-meanwhile", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()


def _import_quietly(modules: tuple[str, ...]) -> None:
    for name in modules:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
