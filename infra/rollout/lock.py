"""One rollout per stack: a lease with a heartbeat, kept in the journal database.

The engine acquires the lease before touching a target, renews it while it works and waits, and
releases it at the end. A second rollout on the stack gets ``StackLocked`` (exit code 3) naming the
holder, its host and pid and when the lease expires. An expired lease can be taken over, and so can
one whose holder is provably dead (same host, pid gone): a SIGKILLed run cannot heartbeat, and
making ``resume`` wait out its lease would buy nothing.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from infra.rollout.errors import StackLocked
from infra.rollout.journal import connect, transaction
from infra.rollout.seams import Clock, RolloutId, StackName

DEFAULT_TTL = 60.0
"""Seconds a lease lives without a heartbeat. The engine renews every ttl/3."""


@dataclass(frozen=True, slots=True)
class Lease:
    stack: StackName
    rollout_id: RolloutId
    holder: str
    host: str
    pid: int
    acquired_at: float
    expires_at: float


class Lock(Protocol):
    """A per-stack lease. ``acquire`` raises ``StackLocked``; ``heartbeat`` raises it if the lease was lost."""

    ttl: float

    def acquire(self, stack: StackName, rollout_id: RolloutId) -> Lease: ...

    def heartbeat(self, lease: Lease) -> Lease: ...

    def release(self, lease: Lease) -> None: ...

    def holder(self, stack: StackName) -> Lease | None: ...


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


class SqliteLock:
    """Leases in the ``leases`` table of the journal database; atomic through BEGIN IMMEDIATE."""

    def __init__(self, path: Path, clock: Clock, *, ttl: float = DEFAULT_TTL, holder: str | None = None,
                 host: str | None = None, pid: int | None = None) -> None:
        self.conn: sqlite3.Connection = connect(path)
        # The engine's heartbeat thread shares this connection: one transaction at a time.
        self._mutex = threading.RLock()
        self.clock = clock
        self.ttl = ttl
        self.holder_name = holder or os.environ.get("USER") or "gantry"
        self.host = host or socket.gethostname()
        self.pid = pid if pid is not None else os.getpid()

    def _lease(self, row: tuple[str, str, str, str, int, float, float]) -> Lease:
        return Lease(StackName(row[0]), RolloutId(row[1]), row[2], row[3], int(row[4]), float(row[5]),
                     float(row[6]))

    def holder(self, stack: StackName) -> Lease | None:
        with self._mutex:
            row = self.conn.execute("SELECT * FROM leases WHERE stack=?", (stack,)).fetchone()
        return None if row is None else self._lease(row)

    def _takeable(self, lease: Lease, now: float) -> bool:
        if lease.expires_at <= now:
            return True
        # Our own process re-entering (resume in the same process) or a dead holder on this host.
        if lease.host == self.host:
            return lease.pid == self.pid or not pid_alive(lease.pid)
        return False

    def acquire(self, stack: StackName, rollout_id: RolloutId) -> Lease:
        now = self.clock.now()
        with self._mutex, transaction(self.conn) as c:
            row = c.execute("SELECT * FROM leases WHERE stack=?", (stack,)).fetchone()
            if row is not None:
                current = self._lease(row)
                if not self._takeable(current, now):
                    raise StackLocked(stack, f"{current.holder} (rollout {current.rollout_id})", current.host,
                                      current.pid, iso(current.expires_at))
            lease = Lease(stack, rollout_id, self.holder_name, self.host, self.pid, now, now + self.ttl)
            c.execute("INSERT OR REPLACE INTO leases VALUES (?,?,?,?,?,?,?)",
                      (lease.stack, lease.rollout_id, lease.holder, lease.host, lease.pid, lease.acquired_at,
                       lease.expires_at))
        return lease

    def heartbeat(self, lease: Lease) -> Lease:
        now = self.clock.now()
        with self._mutex, transaction(self.conn) as c:
            row = c.execute("SELECT * FROM leases WHERE stack=?", (lease.stack,)).fetchone()
            current = None if row is None else self._lease(row)
            if current is None or (current.host, current.pid, current.rollout_id) != (
                    lease.host, lease.pid, lease.rollout_id):
                # Someone took the lease over (ours expired): acting on the stack now would race them.
                if current is None:
                    raise StackLocked(lease.stack, "nobody (our lease was released)", lease.host, None, None)
                raise StackLocked(lease.stack, f"{current.holder} (rollout {current.rollout_id})", current.host,
                                  current.pid, iso(current.expires_at))
            renewed = Lease(lease.stack, lease.rollout_id, lease.holder, lease.host, lease.pid,
                            lease.acquired_at, now + self.ttl)
            c.execute("UPDATE leases SET expires_at=? WHERE stack=?", (renewed.expires_at, lease.stack))
        return renewed

    def release(self, lease: Lease) -> None:
        with self._mutex, transaction(self.conn) as c:
            c.execute("DELETE FROM leases WHERE stack=? AND host=? AND pid=? AND rollout_id=?",
                      (lease.stack, lease.host, lease.pid, lease.rollout_id))

    def close(self) -> None:
        self.conn.close()
