"""The rollout journal: an append-only record of every rollout, written before each action it leads to.

The engine appends an entry (intent, hook result, analysis, decision, checkpoint, phase) and only
then acts, so a crashed run can be replayed to its exact state and resumed or rolled back. The CLI
reads it for ``status`` and ``history`` and writes operator actions (pause, abort, promote) into it.
The embedded backend is SQLite in WAL mode at ``<project>/.gantry/journal.db`` with file mode 0600;
a shared backend implements the same ``Journal`` protocol.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol, cast

from components.spec import Strategy
from infra.errors import InputError
from infra.rollout.provenance import UNKNOWN, Provenance, Source
from infra.rollout.seams import JSONObject, Phase, RolloutId, StackName

DEFAULT_DIR = ".gantry"
DB_NAME = "journal.db"


class EntryKind(StrEnum):
    """What one journal entry records."""

    STARTED = "started"
    """The plan, the image, the baseline traffic: everything replay needs."""
    CHECKPOINT = "checkpoint"
    """The target's last good state, taken before the first mutation."""
    HOOK = "hook"
    INTENT = "intent"
    """An effect on the target is about to happen. An intent without APPLIED/ERROR is ambiguous."""
    APPLIED = "applied"
    ERROR = "error"
    """The effect of the preceding intent raised; ``data.action`` names it."""
    ANALYSIS = "analysis"
    DECISION = "decision"
    OPERATOR = "operator"
    """pause, resume, abort or promote (with skip_analysis), written by the CLI of any process."""
    PHASE = "phase"
    VERIFIED = "verified"
    """The target's live state was compared with the journal (after a resume and at the end)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One journal line. ``seq`` is global and strictly increasing; ``at`` is the engine clock's time."""

    seq: int
    rollout_id: RolloutId
    kind: EntryKind
    data: JSONObject
    at: float

    def as_json(self) -> JSONObject:
        return {"seq": self.seq, "rollout": self.rollout_id, "kind": self.kind.value, "at": self.at,
                "data": self.data}


@dataclass(frozen=True, slots=True)
class RolloutRecord:
    """The summary row of one rollout; its phase is kept in step with its PHASE entries."""

    id: RolloutId
    stack: StackName
    service: str
    image: str
    strategy: Strategy
    phase: Phase
    created_at: float
    updated_at: float
    provenance: Provenance = UNKNOWN
    """The commit deployed (schema version 1); rows written before it have none."""


@dataclass(frozen=True, slots=True)
class Quarantine:
    """A version that was rolled back on a stack's service; starting it again needs ``--force``."""

    stack: StackName
    service: str
    image: str
    rollout_id: RolloutId
    at: float
    reason: str


class UnknownRollout(InputError):
    """No rollout with that id is in the journal."""


class Journal(Protocol):
    """Where rollouts are recorded. Every method is atomic; ``append`` is durable when it returns."""

    def create(self, record: RolloutRecord, started: JSONObject) -> Entry:
        """Record a new rollout and its STARTED entry atomically (a rollout never exists without its plan)."""
        ...

    def append(self, rollout_id: RolloutId, kind: EntryKind, data: JSONObject, at: float,
               *, phase: Phase | None = None, quarantine: Quarantine | None = None) -> Entry:
        """Append one entry; ``phase`` also updates the summary row, ``quarantine`` records a bad version,
        both in the same transaction so a crash cannot split them."""
        ...

    def entries(self, rollout_id: RolloutId, after: int = 0) -> list[Entry]: ...

    def get(self, rollout_id: RolloutId) -> RolloutRecord: ...

    def history(self, stack: StackName | None = None, limit: int = 50) -> list[RolloutRecord]: ...

    def active(self, stack: StackName) -> list[RolloutRecord]:
        """Rollouts on the stack whose phase is not terminal."""
        ...

    def quarantined(self, stack: StackName, service: str, image: str) -> Quarantine | None: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- SQLite backend

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rollouts (
    id TEXT PRIMARY KEY, stack TEXT NOT NULL, service TEXT NOT NULL, image TEXT NOT NULL,
    strategy TEXT NOT NULL, phase TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS rollouts_stack ON rollouts(stack, created_at);
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, rollout_id TEXT NOT NULL REFERENCES rollouts(id),
    kind TEXT NOT NULL, data TEXT NOT NULL, at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_rollout ON entries(rollout_id, seq);
CREATE TABLE IF NOT EXISTS quarantine (
    stack TEXT NOT NULL, service TEXT NOT NULL, image TEXT NOT NULL, rollout_id TEXT NOT NULL,
    at REAL NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (stack, service, image)
);
CREATE TABLE IF NOT EXISTS leases (
    stack TEXT PRIMARY KEY, rollout_id TEXT NOT NULL, holder TEXT NOT NULL, host TEXT NOT NULL,
    pid INTEGER NOT NULL, acquired_at REAL NOT NULL, expires_at REAL NOT NULL
);
"""

# Forward-only migrations: step N takes a journal from schema version N to N+1 (PRAGMA user_version).
# Each step only adds, so entries written by older versions stay readable and replay the same; a new
# database is created at version 0 by _SCHEMA and brought forward by the same steps.
MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: commit provenance of each rollout (lead time).
    "ALTER TABLE rollouts ADD COLUMN commit_sha TEXT;"
    "ALTER TABLE rollouts ADD COLUMN committed_at REAL;"
    "ALTER TABLE rollouts ADD COLUMN commit_source TEXT;",
)
SCHEMA_VERSION = len(MIGRATIONS)

_ROLLOUT_COLUMNS = ("id, stack, service, image, strategy, phase, created_at, updated_at, commit_sha, committed_at, "
                    "commit_source")


class NewerJournal(InputError):
    """The journal was written by a newer Gantry than this one."""


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the journal's schema to ``SCHEMA_VERSION``; returns the version it was at.

    One write transaction reads the version and applies the missing steps, so two processes opening
    an old journal at once migrate it exactly once, and a crash mid-step leaves it at the old version.
    """
    if int(conn.execute("PRAGMA user_version").fetchone()[0]) == SCHEMA_VERSION:
        return SCHEMA_VERSION
    with transaction(conn) as c:
        found = int(c.execute("PRAGMA user_version").fetchone()[0])
        if found > SCHEMA_VERSION:
            raise NewerJournal(f"journal schema version must be at most {SCHEMA_VERSION}, but {found} was found; "
                               "upgrade gantry to read it")
        for step in MIGRATIONS[found:]:
            for statement in filter(None, (part.strip() for part in step.split(";"))):
                c.execute(statement)
        c.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    return found


AppendHook = Callable[[str, EntryKind, int], None]
"""Called as ("before"|"after", kind, n) around the n-th append of this process (crash drills)."""


def journal_path(project: Path) -> Path:
    return project / DEFAULT_DIR / DB_NAME


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the journal database: directory 0700, file 0600, WAL mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    # Create the file ourselves so it is never world-readable, not even for an instant; SQLite gives
    # its -wal and -shm files the database file's mode.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: an entry the engine acted on must survive power loss, not just a process crash.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.executescript(_SCHEMA)
    migrate(conn)
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front, so read-check-write is atomic."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class SqliteJournal:
    """The embedded journal backend (one file per project, shared by every gantry process)."""

    def __init__(self, path: Path, *, on_append: AppendHook | None = None) -> None:
        self.path = path
        self.conn = connect(path)
        self._on_append = on_append
        self._appends = 0

    @classmethod
    def for_project(cls, project: Path) -> SqliteJournal:
        return cls(journal_path(project))

    def create(self, record: RolloutRecord, started: JSONObject) -> Entry:
        self._appends += 1
        if self._on_append is not None:
            self._on_append("before", EntryKind.STARTED, self._appends)
        text = json.dumps(started, sort_keys=True, separators=(",", ":"))
        p = record.provenance
        with transaction(self.conn) as c:
            c.execute(
                f"INSERT INTO rollouts ({_ROLLOUT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (record.id, record.stack, record.service, record.image, record.strategy.value,
                 record.phase.value, record.created_at, record.updated_at, p.commit, p.committed_at,
                 None if p.source is None else p.source.value),
            )
            cur = c.execute("INSERT INTO entries (rollout_id, kind, data, at) VALUES (?,?,?,?)",
                            (record.id, EntryKind.STARTED.value, text, record.created_at))
            seq = int(cast(int, cur.lastrowid))
        if self._on_append is not None:
            self._on_append("after", EntryKind.STARTED, self._appends)
        return Entry(seq, record.id, EntryKind.STARTED, cast(JSONObject, json.loads(text)), record.created_at)

    def append(self, rollout_id: RolloutId, kind: EntryKind, data: JSONObject, at: float,
               *, phase: Phase | None = None, quarantine: Quarantine | None = None) -> Entry:
        self._appends += 1
        if self._on_append is not None:
            self._on_append("before", kind, self._appends)
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        with transaction(self.conn) as c:
            cur = c.execute("INSERT INTO entries (rollout_id, kind, data, at) VALUES (?,?,?,?)",
                            (rollout_id, kind.value, text, at))
            seq = int(cast(int, cur.lastrowid))
            if phase is not None:
                c.execute("UPDATE rollouts SET phase=?, updated_at=? WHERE id=?", (phase.value, at, rollout_id))
            else:
                c.execute("UPDATE rollouts SET updated_at=? WHERE id=?", (at, rollout_id))
            if quarantine is not None:
                c.execute(
                    "INSERT OR REPLACE INTO quarantine VALUES (?,?,?,?,?,?)",
                    (quarantine.stack, quarantine.service, quarantine.image, quarantine.rollout_id,
                     quarantine.at, quarantine.reason),
                )
        if self._on_append is not None:
            self._on_append("after", kind, self._appends)
        return Entry(seq, rollout_id, kind, cast(JSONObject, json.loads(text)), at)

    def entries(self, rollout_id: RolloutId, after: int = 0) -> list[Entry]:
        rows = self.conn.execute(
            "SELECT seq, rollout_id, kind, data, at FROM entries WHERE rollout_id=? AND seq>? ORDER BY seq",
            (rollout_id, after),
        ).fetchall()
        return [Entry(int(r[0]), RolloutId(r[1]), EntryKind(r[2]), cast(JSONObject, json.loads(r[3])),
                      float(r[4])) for r in rows]

    def get(self, rollout_id: RolloutId) -> RolloutRecord:
        row = self.conn.execute(f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts WHERE id=?", (rollout_id,)).fetchone()
        if row is None:
            raise UnknownRollout(f"rollout id must be one recorded in {self.path}, but {rollout_id!r} was given"
                                 "; list them with `gantry rollout history`")
        return _record(row)

    def history(self, stack: StackName | None = None, limit: int = 50) -> list[RolloutRecord]:
        if stack is None:
            rows = self.conn.execute(
                f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (limit,)).fetchall()
        else:
            rows = self.conn.execute(
                f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts WHERE stack=? ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (stack, limit)).fetchall()
        return [_record(r) for r in rows]

    def active(self, stack: StackName) -> list[RolloutRecord]:
        terminal = tuple(p.value for p in Phase if p.terminal)
        rows = self.conn.execute(
            f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts WHERE stack=? "
            f"AND phase NOT IN ({','.join('?' * len(terminal))})"
            " ORDER BY created_at", (stack, *terminal)).fetchall()
        return [_record(r) for r in rows]

    def quarantined(self, stack: StackName, service: str, image: str) -> Quarantine | None:
        row = self.conn.execute("SELECT * FROM quarantine WHERE stack=? AND service=? AND image=?",
                                (stack, service, image)).fetchone()
        if row is None:
            return None
        return Quarantine(StackName(row[0]), row[1], row[2], RolloutId(row[3]), float(row[4]), row[5])

    def close(self) -> None:
        self.conn.close()


def _record(row: Sequence[object]) -> RolloutRecord:
    return RolloutRecord(
        id=RolloutId(str(row[0])), stack=StackName(str(row[1])), service=str(row[2]), image=str(row[3]),
        strategy=Strategy(str(row[4])), phase=Phase(str(row[5])), created_at=float(cast(float, row[6])),
        updated_at=float(cast(float, row[7])),
        provenance=Provenance(commit=None if row[8] is None else str(row[8]),
                              committed_at=None if row[9] is None else float(cast(float, row[9])),
                              source=None if row[10] is None else Source(str(row[10]))),
    )


def entries_json(entries: Sequence[Entry]) -> list[Mapping[str, object]]:
    """Entries as plain dicts (for ``--json`` and tests comparing journals)."""
    return [dict(e.as_json()) for e in entries]
