"""The service's store: one read-write DuckDB database held open for the service's life, each reader and writer a
cursor of it.

Opening the store per request cost ~30 ms of CPU and made every read wait for the writer's transactions (DuckDB
lets a file be open read-write by one process, or read-only by many, never both). Held open, reads run beside
the job worker's transactions (DuckDB's MVCC: a cursor's read sees the last committed state), writes of this
process take turns on a lock, and nothing else opens the file while the service runs: CLI commands wait for
the store's lock as for any other process, and their message names the service (``<store>.service``).

The database is opened with external access off (no query reaches a file: DuckDB refuses it, and it cannot be
turned back on while the database is open) and extensions not loaded; the SQL route's cursors run in a
READ ONLY transaction, so that even a statement the parse check let through could not write.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from curation.store import Store

HELD_CONFIG: dict[str, object] = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
}


class HeldStore(Store):
    """A :class:`Store` whose database is held open between :meth:`hold` and :meth:`release`; before and after,
    it opens the file per call as a plain Store does."""

    held = False

    def __init__(self, path, lock_timeout: float = 120.0) -> None:  # noqa: ANN001
        super().__init__(path, lock_timeout)
        self._db = None
        self._sealed = False
        self._write = threading.RLock()
        self._append = threading.Lock()

    def hold(self, url: str | None = None) -> None:
        self.init()
        self._db = self._connect(read_only=False, config=HELD_CONFIG)
        # checked once: DuckDB cannot turn external access back on while the database is open
        self._sealed = self._db.execute("SELECT current_setting('enable_external_access')").fetchall()[0][0] is False
        self._migrate(self._db)
        self.held = True
        self.service_marker.write_text(json.dumps({"pid": os.getpid(), "url": url}), encoding="utf-8")

    def release(self) -> None:
        with self._write:
            self.held = False
            if self._db is not None:
                self._db.close()
                self._db = None
        self.service_marker.unlink(missing_ok=True)

    @contextmanager
    def writer(self) -> Iterator["duckdb.DuckDBPyConnection"]:  # noqa: F821
        if not self.held:
            with super().writer() as con:
                yield con
            return
        with self._write:
            cur = self._db.cursor()
            try:
                cur.execute("BEGIN TRANSACTION")
                try:
                    yield cur
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            finally:
                cur.close()

    @contextmanager
    def appender(self) -> Iterator["duckdb.DuckDBPyConnection"]:  # noqa: F821
        """A cursor for rows appended to a table no job writes (the audit log), committed on their own: such an
        insert cannot conflict with a job's transaction (DuckDB's MVCC), so it takes a lock of its own instead of
        waiting for the job's write lock (an audited read waited for a pipeline step's writes: seconds)."""
        if not self.held:
            with super().writer() as con:
                yield con
            return
        with self._append, self.reader() as cur:
            yield cur

    @contextmanager
    def reader(self, safe: bool = True, config: dict[str, object] | None = None) -> Iterator["duckdb.DuckDBPyConnection"]:  # noqa: F821
        if not self.held:
            with super().reader(safe, config) as con:
                yield con
            return
        cur = self._db.cursor()
        try:
            yield cur
        finally:
            cur.close()

    @contextmanager
    def sql_reader(self) -> Iterator["duckdb.DuckDBPyConnection"]:  # noqa: F821
        """A cursor in a READ ONLY transaction of the held database (external access is off in it)."""
        with self.reader() as cur:
            if self.held and not self._sealed:
                raise RuntimeError("the held store allows external access")
            cur.execute("BEGIN TRANSACTION READ ONLY")
            try:
                yield cur
            finally:
                cur.execute("ROLLBACK")
