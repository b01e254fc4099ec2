"""The store: one DuckDB file that many processes share by taking turns.

DuckDB lets one process open a file read-write, or many open it read-only, never both at once. So no
process holds the file for long: a writer opens it for one short transaction (one chunk of an ingest,
one step's decisions) and closes it; readers open it read-only for one query. Both wait, with backoff,
while another process holds it, up to ``lock_timeout`` seconds. Long work happens outside the
connection (decoding, parsing in an in-memory DuckDB), so a reader never waits for more than one
chunk's write.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from curation.errors import StoreBusyError, StoreError
from curation.settings import Settings
from curation.store.migrations import LATEST_VERSION, MIGRATIONS

if TYPE_CHECKING:
    import duckdb

# A read-only connection for people and scripts: no file access outside the store, no extensions.
SAFE_READ_CONFIG: dict[str, object] = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "lock_configuration": True,
}


def _is_lock_conflict(exc: Exception) -> bool:
    """Another process holds the file, or (in this process: the service's threads) a connection with another
    configuration is open: a read-write one while a reader opens, or read-only ones while a writer opens."""
    text = str(exc)
    return ("Could not set lock" in text or "Conflicting lock" in text
            or "same database file with a different configuration" in text)


def utcnow() -> datetime:
    """Naive UTC timestamp, as stored in TIMESTAMP columns."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Store:
    """A handle on one store file. Holds no connection between calls."""

    def __init__(self, path: str | os.PathLike[str], lock_timeout: float = 120.0) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self._current = False  # the schema was found current by a reader of this handle

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    @property
    def exists(self) -> bool:
        """Whether the store file exists."""
        return self.path.exists()

    def _check_is_store(self) -> None:
        """Refuse a path that holds something other than a DuckDB database (DuckDB would open a CSV or
        Parquet file as an empty in-memory database, and everything written would be lost)."""
        try:
            with open(self.path, "rb") as f:
                head = f.read(12)
        except FileNotFoundError:
            return
        except IsADirectoryError as e:
            raise StoreError(f"{self.path} is a folder, not a store file: pass the file's path (e.g. "
                             f"{self.path / 'curate.duckdb'})") from e
        except OSError as e:
            raise StoreError(f"cannot read store {self.path}: {e}") from e
        if head and head[8:12] != b"DUCK":
            raise StoreError(f"{self.path} is not a DuckDB store (it holds other data: a CSV, Parquet or other file?); "
                             f"--db / CURATE_DB must name the store file, and the inputs go after `curate ingest`")

    @property
    def _gate_path(self) -> Path:
        return self.path.with_name(self.path.name + ".gate")

    @contextmanager
    def _turnstile(self, writer: bool, deadline: float) -> Iterator[None]:
        """Writers before new readers: a writer holds the gate (an exclusive lock on ``<store>.gate``)
        while it waits for the store; a reader passes the gate (a shared lock, let go at once) before it
        opens the store. So a stream of short readers, each overlapping the next, cannot keep a writer
        out: once a writer waits, new readers wait behind it, and the writer gets in as soon as the
        readers already in have finished. Without ``fcntl`` (Windows) or a writable folder there is no gate.
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            yield
            return
        try:
            fd = os.open(self._gate_path, (os.O_RDWR | os.O_CREAT) if writer else os.O_RDONLY, 0o644)
        except OSError:
            yield
            return
        try:
            mode = fcntl.LOCK_EX if writer else fcntl.LOCK_SH
            delay = 0.005
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreBusyError(
                            f"store {self.path}: a writer waited for the store for {self.lock_timeout:.0f} s and "
                            "readers could not pass it; retry later or raise CURATE_LOCK_TIMEOUT") from None
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 1.6, 0.1)
            if not writer:
                fcntl.flock(fd, fcntl.LOCK_UN)
            yield
        finally:
            os.close(fd)  # lets the gate go

    def _connect(self, read_only: bool, config: dict[str, object] | None = None):  # noqa: ANN202
        import duckdb

        self._check_is_store()
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.02
        with self._turnstile(not read_only, deadline):
            while True:
                try:
                    return duckdb.connect(str(self.path), read_only=read_only, config=dict(config or {}))
                except (duckdb.IOException, duckdb.ConnectionException) as e:
                    if not _is_lock_conflict(e):
                        raise StoreError(f"cannot open store {self.path}: {e}") from e
                    if time.monotonic() >= deadline:
                        raise StoreBusyError(
                            f"store {self.path} stayed locked by another process for {self.lock_timeout:.0f} s "
                            f"({str(e).splitlines()[0]}){self._service_hint()}; retry later or raise CURATE_LOCK_TIMEOUT"
                        ) from e
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 1.6, 0.5)

    @property
    def service_marker(self) -> Path:
        """The file ``curate api`` writes beside the store while it holds it open (its pid and URL)."""
        return self.path.with_name(self.path.name + ".service")

    def _service_hint(self) -> str:
        """What holds the store when it is the HTTP API (``curate api`` keeps it open while it runs)."""
        import json

        try:
            info = json.loads(self.service_marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return ""
        return (f"; the HTTP API (curate api, pid {info.get('pid')}) holds it while it runs: work through the API, "
                "or stop the service")

    def init(self) -> int:
        """Create the store (and its folder) if needed and apply pending migrations; returns the schema version."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.writer() as con:
            return self._schema_version(con)

    @property
    def store_id(self) -> str:
        """The store's own id: a uuid made when the store was created (or migrated to schema 6)."""
        with self.reader() as con:
            return str(con.execute("SELECT store_id FROM store_info").fetchall()[0][0])

    @contextmanager
    def writer(self) -> Iterator["duckdb.DuckDBPyConnection"]:
        """A read-write connection for one short transaction; committed on success, rolled back on error."""
        if not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self._connect(read_only=False)
        try:
            self._migrate(con)
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            con.close()

    @contextmanager
    def reader(self, safe: bool = True, config: dict[str, object] | None = None) -> Iterator["duckdb.DuckDBPyConnection"]:
        """A read-only connection; with ``safe`` it cannot touch other files or load extensions.

        ``config`` adds DuckDB settings to the connection's (they are locked with the safe ones).
        """
        if not self.path.exists():
            raise StoreError(f"no store at {self.path}: run `curate init` or `curate ingest` first")
        merged = {**(SAFE_READ_CONFIG if safe else {}), **(config or {})}
        con = self._connect(read_only=True, config=merged or None)
        try:
            # checked once per handle: a store's schema only moves forward, and a newer one is refused by writers
            version = LATEST_VERSION if self._current else self._schema_version(con)
            if version > LATEST_VERSION:
                raise StoreError(
                    f"store {self.path} has schema version {version}, newer than this code ({LATEST_VERSION}): upgrade"
                )
            if version < LATEST_VERSION:
                raise StoreError(
                    f"store {self.path} has schema version {version}; run `curate init` to migrate it to {LATEST_VERSION}"
                )
            self._current = True
            yield con
        finally:
            con.close()

    @staticmethod
    def _schema_version(con) -> int:  # noqa: ANN001
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
        ).fetchall()[0][0]
        if not exists:
            return 0
        return int(con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchall()[0][0])

    def _migrate(self, con) -> None:  # noqa: ANN001
        version = self._schema_version(con)
        if version > LATEST_VERSION:
            raise StoreError(
                f"store {self.path} has schema version {version}, newer than this code ({LATEST_VERSION}): upgrade"
            )
        if version == LATEST_VERSION:
            return
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMP)"
        )
        for m in MIGRATIONS:
            if m.version <= version:
                continue
            con.execute("BEGIN TRANSACTION")
            try:
                for stmt in m.statements:
                    con.execute(stmt)
                con.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)", [m.version, m.description, utcnow()]
                )
            except Exception as e:
                con.execute("ROLLBACK")
                raise StoreError(f"migration {m.version} ({m.description}) failed on {self.path}: {e}") from e
            con.execute("COMMIT")


def open_store(db: str | os.PathLike[str] | None = None) -> Store:
    """The store named by ``db``, ``CURATE_DB`` or the default data dir."""
    settings = Settings.from_env(db)
    return Store(settings.db_path, lock_timeout=settings.lock_timeout)
