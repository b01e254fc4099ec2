"""Leases: which process owns a batch being loaded or a run in progress, and whether it still lives.

A batch left ``loading`` or a run left ``running`` is either being worked on by a live process or was
left behind by one that died (kill -9, a power cut). The two must never be confused: taking a live
process's batch for a crashed one loads the same file twice. So each such row names its owner: host,
pid and the process's start time (a pid alone is reused by later processes), and a heartbeat that the
owner refreshes with every write.

On the owner's host the answer is exact: the owner lives while a process with that pid and that start
time exists. From another host (a store on a shared disk) only the heartbeat can tell: the owner is
taken for dead once it is older than ``CURATE_LEASE_SECONDS`` (default 600). Every write of the owner
checks, in its own transaction, that it still holds the lease, so a process that was taken for dead
stops at its next write instead of writing beside its successor.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from curation.errors import StoreBusyError, UsageError

DEFAULT_LEASE_SECONDS = 600.0


def lease_seconds() -> float:
    """How old a heartbeat from another host may be before its owner is taken for dead."""
    raw = os.environ.get("CURATE_LEASE_SECONDS", str(DEFAULT_LEASE_SECONDS))
    try:
        value = float(raw)
    except ValueError as e:
        raise UsageError(f"CURATE_LEASE_SECONDS must be a number of seconds, got {raw!r}") from e
    if value <= 0:
        raise UsageError(f"CURATE_LEASE_SECONDS must be > 0, got {value}")
    return value


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` as the kernel gives it (Linux: clock ticks since boot); None if gone.

    On systems without /proc the start time is unknown ("?") and a live pid counts as the owner.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return None
    except OSError:
        return "?"
    # the command name (field 2) is in parentheses and may hold spaces: split after its closing one
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else "?"


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Owner:
    """A process that holds a lease: ``host:pid:start``."""

    host: str
    pid: int
    start: str

    @classmethod
    def parse(cls, token: str | None) -> "Owner | None":
        if not token:
            return None
        host, _, rest = token.rpartition(":")
        host, _, pid = host.rpartition(":")
        try:
            return cls(host, int(pid), rest)
        except ValueError:
            return None

    def token(self) -> str:
        return f"{self.host}:{self.pid}:{self.start}"

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"

    def alive(self, heartbeat_at: datetime | None, now: datetime) -> bool:
        """Whether this owner may still be working (see the module's doc)."""
        if self.host == _host():
            if os.name == "posix" and os.path.isdir("/proc/self"):
                start = _start_time(self.pid)
                return start is not None and (start == self.start or "?" in (start, self.start))
            return _pid_exists(self.pid)
        if heartbeat_at is None:
            return False
        return now - heartbeat_at < timedelta(seconds=lease_seconds())


@lru_cache(maxsize=1)
def _host() -> str:
    return socket.gethostname()


def current_owner() -> Owner:
    """This process as a lease owner (computed per call: a forked child is another owner)."""
    pid = os.getpid()
    return Owner(_host(), pid, _start_time(pid) or "?")


class LeaseLost(StoreBusyError):
    """Another process took over a batch or run that this process was working on."""


def check_lease(con, table: str, key: str, value: int, owner: Owner, now: datetime) -> None:  # noqa: ANN001
    """In a write transaction: fail unless ``owner`` still holds the row's lease; refresh its heartbeat."""
    row = con.execute(f"SELECT owner FROM {table} WHERE {key} = ?", [value]).fetchall()
    holder = row[0][0] if row else None
    if holder != owner.token():
        other = Owner.parse(holder)
        who = other.describe() if other else "no process"
        what = "batch" if table == "batches" else "run"
        raise LeaseLost(
            f"{what} {value} is now held by {who}: this process ({owner.describe()}) was taken for dead "
            f"(its heartbeat was older than CURATE_LEASE_SECONDS) and stops here without writing"
        )
    con.execute(f"UPDATE {table} SET heartbeat_at = ? WHERE {key} = ?", [now, value])
