"""One rollout per stack: a lease with a heartbeat, kept in the journal database.

The engine acquires the lease before touching a target, renews it while it works and waits, and
releases it at the end. A second rollout on the stack gets ``StackLocked`` (exit code 3) naming the
holder, its host and pid and when the lease expires. An expired lease can be taken over, and so can
one whose holder is provably dead (same host, pid gone): a SIGKILLed run cannot heartbeat, and
making ``resume`` wait out its lease would buy nothing. "Provably dead" means: the pid is gone, or it
now belongs to another process (a reused pid: its boot id and start time differ from the ones the
lease recorded). A holder on another host cannot be checked from here: only its lease's expiry
decides. The lock shares the process's one journal connection (see ``infra.rollout.journal``).
"""

from __future__ import annotations

import os
import socket
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from infra.rollout.errors import StackLocked
from infra.rollout.journal import _Handle
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
    process: str = ""
    """The holder's boot id and start time (``process_identity``); empty when unknown."""
    token: int = 0
    """The fencing token (shared backends): greater for every new holder of the stack; 0 on SQLite."""


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


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return ""


def process_identity(pid: int) -> str:
    """``<boot id>:<start time>`` of a live process on this host, or "" when it is gone or unknowable.

    A pid is reused once its process has died; the pair (boot, start time in clock ticks since boot)
    is not, so a lease can tell its holder from a stranger that got the same pid.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""
    # Field 22 (starttime); the command name (field 2) may contain spaces and parentheses.
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) < 20:
        return ""
    return f"{_boot_id()}:{fields[19]}"


def holder_alive(lease: Lease) -> bool:
    """Whether the process that took ``lease`` on this host still runs (a reused pid does not count)."""
    if not pid_alive(lease.pid):
        return False
    if not lease.process:
        return True  # recorded without an identity (older gantry, no /proc): a live pid must be trusted
    current = process_identity(lease.pid)
    return current == "" or current == lease.process


class SqliteLock:
    """Leases in the ``leases`` table of the journal database; atomic through BEGIN IMMEDIATE."""

    def __init__(self, path: Path, clock: Clock, *, ttl: float = DEFAULT_TTL, holder: str | None = None,
                 host: str | None = None, pid: int | None = None) -> None:
        # The journal's connection in this process (never a second handle): see infra.rollout.journal.
        self._handle = _Handle(self, path)
        self.db = self._handle.db
        self.clock = clock
        self.ttl = ttl
        self.holder_name = holder or os.environ.get("USER") or "gantry"
        self.host = host or socket.gethostname()
        self.pid = pid if pid is not None else os.getpid()
        self.process = process_identity(self.pid)

    @property
    def conn(self) -> sqlite3.Connection:
        """The process's shared journal connection (tests inspect it; code goes through ``self.db``)."""
        return self.db.conn

    _COLUMNS = "stack, rollout_id, holder, host, pid, acquired_at, expires_at, process"

    def _lease(self, row: tuple[object, ...]) -> Lease:
        return Lease(StackName(str(row[0])), RolloutId(str(row[1])), str(row[2]), str(row[3]), int(str(row[4])),
                     float(str(row[5])), float(str(row[6])), str(row[7]))

    def holder(self, stack: StackName) -> Lease | None:
        rows = self.db.read(f"SELECT {self._COLUMNS} FROM leases WHERE stack=?", (stack,))
        return self._lease(rows[0]) if rows else None

    def _takeable(self, lease: Lease, now: float) -> bool:
        if lease.expires_at <= now:
            return True  # the only test that means anything for a holder on another host
        if lease.host != self.host:
            return False
        if lease.pid == self.pid and lease.process in ("", self.process):
            return True  # our own process re-entering (resume in the same process)
        return not holder_alive(lease)  # dead, or its pid now belongs to another process

    def acquire(self, stack: StackName, rollout_id: RolloutId) -> Lease:
        now = self.clock.now()
        with self.db.write() as c:
            row = c.execute(f"SELECT {self._COLUMNS} FROM leases WHERE stack=?", (stack,)).fetchone()
            if row is not None:
                current = self._lease(row)
                if not self._takeable(current, now):
                    raise StackLocked(stack, f"{current.holder} (rollout {current.rollout_id})", current.host,
                                      current.pid, iso(current.expires_at), rollout_id=current.rollout_id)
            lease = Lease(stack, rollout_id, self.holder_name, self.host, self.pid, now, now + self.ttl,
                          self.process)
            c.execute(f"INSERT OR REPLACE INTO leases ({self._COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
                      (lease.stack, lease.rollout_id, lease.holder, lease.host, lease.pid, lease.acquired_at,
                       lease.expires_at, lease.process))
        return lease

    def heartbeat(self, lease: Lease) -> Lease:
        now = self.clock.now()
        with self.db.write() as c:
            row = c.execute(f"SELECT {self._COLUMNS} FROM leases WHERE stack=?", (lease.stack,)).fetchone()
            current = None if row is None else self._lease(row)
            if current is None or (current.host, current.pid, current.rollout_id) != (
                    lease.host, lease.pid, lease.rollout_id):
                # Someone took the lease over (ours expired): acting on the stack now would race them.
                if current is None:
                    raise StackLocked(lease.stack, "nobody (our lease was released)", lease.host, None, None)
                raise StackLocked(lease.stack, f"{current.holder} (rollout {current.rollout_id})", current.host,
                                  current.pid, iso(current.expires_at), rollout_id=current.rollout_id)
            renewed = Lease(lease.stack, lease.rollout_id, lease.holder, lease.host, lease.pid,
                            lease.acquired_at, now + self.ttl, lease.process)
            c.execute("UPDATE leases SET expires_at=? WHERE stack=?", (renewed.expires_at, lease.stack))
        return renewed

    def release(self, lease: Lease) -> None:
        with self.db.write() as c:
            c.execute("DELETE FROM leases WHERE stack=? AND host=? AND pid=? AND rollout_id=?",
                      (lease.stack, lease.host, lease.pid, lease.rollout_id))

    def close(self) -> None:
        """Done with the lock; the process's journal connection closes with its last user."""
        self._handle.close()
