"""The rollout journal: an append-only record of every rollout, written before each action it leads to.

The engine appends an entry (intent, hook result, analysis, decision, checkpoint, phase) and only
then acts, so a crashed run can be replayed to its exact state and resumed or rolled back. The CLI
reads it for ``status`` and ``history`` and writes operator actions (pause, abort, promote) into it.
The embedded backend is SQLite in WAL mode at ``<project>/.gantry/journal.db`` with file mode 0600;
the shared one (DynamoDB and S3, ``infra.rollout.state.dynamodb``) implements the same ``Journal``
protocol, and ``infra.rollout.state`` picks one per stack (``gantry:rollout.state``).

Multi-process design: ONE SQLite connection per process and database file, opened once and shared
(``Database``, from ``open_database``) by the journal, the lease lock and every other user in the
process. SQLite locks the file with POSIX advisory locks, which belong to the process, and closing
*any* descriptor of the file drops every lock the process holds on it, including those of another
handle (sqlite.org/howtocorrupt.html, section 2.2). The earlier code opened and closed a raw
descriptor in each ``connect()`` and the engine connected twice (journal, then lock): the second
call silently dropped the first connection's locks, so another process's close-time checkpoint
deleted the WAL under the running engine and its writes (an operator's abort, entries already shown)
were lost. So: the process never opens the file outside SQLite except to create it (``O_EXCL``,
when no connection to it can exist yet); the one connection is closed only when its last user
closes it (it then holds no lock another handle needs); a forked child never uses or closes the
connections it inherited (SQLite forbids carrying a connection across ``fork``) and opens its own.
One connection per process is simpler to reason about than relying on SQLite's in-process lock
sharing, and it also serialises the engine and its heartbeat thread through one mutex.

Writes are ``BEGIN IMMEDIATE`` transactions (the write lock is taken up front, so read-check-write
is atomic and the busy timeout, 30 s, applies instead of a deadlock error) with ``synchronous=FULL``:
an append is on disk when it returns, so the CLI acknowledges an operator action only after commit.
Checkpoints are SQLite's own: automatic (passive) ones after commits, and one when a process's last
connection closes, which deletes the WAL only when no other process has the database open; the POSIX
locks above are what tells it, so they must stay intact.

``append(..., expect_last=seq)`` is a compare-and-append: it commits only if the rollout's newest
entry is still ``seq``. The engine writes its decisions that way, so an operator entry written by
another process between the engine's read and its write is never overtaken: the engine re-reads and
decides again (an acknowledged abort is always honoured). The schema is versioned with
``PRAGMA user_version``: add a migration by appending a step to ``MIGRATIONS``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from components.spec import Strategy
from infra.errors import InputError, TemporaryError
from infra.rollout.provenance import UNKNOWN, Provenance, Source
from infra.rollout.seams import Clock, JSONObject, Phase, RolloutId, StackName

if TYPE_CHECKING:
    from infra.rollout.lock import Lock

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
    """One journal line. ``seq`` strictly increases within a rollout (SQLite: across the whole file; DynamoDB:
    1, 2, 3... per rollout); ``at`` is the engine clock's time."""

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


class JournalConflict(TemporaryError):
    """The rollout got a newer entry than the one a compare-and-append expected: re-read, decide again."""


class Journal(Protocol):
    """Where rollouts are recorded. Every method is atomic; ``append`` is durable when it returns."""

    def create(self, record: RolloutRecord, started: JSONObject) -> Entry:
        """Record a new rollout and its STARTED entry atomically (a rollout never exists without its plan)."""
        ...

    def append(self, rollout_id: RolloutId, kind: EntryKind, data: JSONObject, at: float,
               *, phase: Phase | None = None, quarantine: Quarantine | None = None,
               expect_last: int | None = None) -> Entry:
        """Append one entry; ``phase`` also updates the summary row, ``quarantine`` records a bad version,
        both in the same transaction so a crash cannot split them. With ``expect_last``, raise
        ``JournalConflict`` and write nothing unless the rollout's newest entry has that seq."""
        ...

    def entries(self, rollout_id: RolloutId, after: int = 0) -> list[Entry]: ...

    def get(self, rollout_id: RolloutId) -> RolloutRecord: ...

    def history(self, stack: StackName | None = None, limit: int = 50) -> list[RolloutRecord]: ...

    def active(self, stack: StackName) -> list[RolloutRecord]:
        """Rollouts on the stack whose phase is not terminal."""
        ...

    def quarantined(self, stack: StackName, service: str, image: str) -> Quarantine | None: ...

    def close(self) -> None: ...


class StateJournal(Journal, Protocol):
    """A backend's journal together with the lease lock that lives beside it (and fences its writes)."""

    def lease_lock(self, clock: Clock, *, ttl: float | None = None, pid: int | None = None,
                   host: str | None = None) -> Lock:
        """The stack lease lock of this backend; on a shared backend it shares the journal's fences."""
        ...


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
# database is created at version 0 by _SCHEMA and brought forward by the same steps. Append a step here.
MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: commit provenance of each rollout (lead time).
    "ALTER TABLE rollouts ADD COLUMN commit_sha TEXT;"
    "ALTER TABLE rollouts ADD COLUMN committed_at REAL;"
    "ALTER TABLE rollouts ADD COLUMN commit_source TEXT;",
    # 1 -> 2: the lease holder's process identity (boot id and start time), so a reused pid is not the holder.
    "ALTER TABLE leases ADD COLUMN process TEXT NOT NULL DEFAULT '';",
)
SCHEMA_VERSION = len(MIGRATIONS)
BUSY_TIMEOUT = 30.0
"""Seconds a statement waits for another process's write lock before failing."""

_ROLLOUT_COLUMNS = ("id, stack, service, image, strategy, phase, created_at, updated_at, commit_sha, committed_at, "
                    "commit_source")

AppendHook = Callable[[str, EntryKind, int], None]
"""Called as ("before"|"after", kind, n) around the n-th append of this process (crash drills)."""


def journal_path(project: Path) -> Path:
    return project / DEFAULT_DIR / DB_NAME


class Database:
    """This process's one connection to a journal file, shared by every user in the process.

    ``read`` and ``write`` serialise users (the engine, its heartbeat thread, the lock) through one
    mutex, so one thread's transaction never absorbs another thread's statements.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, identity: tuple[int, int]) -> None:
        self.path = path
        self.conn = conn
        self.identity = identity
        self.mutex = threading.RLock()
        self.users = 0
        self.pid = os.getpid()

    def _check_process(self) -> None:
        if self.pid != os.getpid():
            # SQLite: a connection must not be carried across fork(); the child opens its own.
            raise RuntimeError(f"the journal connection to {self.path} was opened in process {self.pid}, "
                               "not in this forked child; open the journal again in the child")

    def read(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self.mutex:
            self._check_process()
            return list(self.conn.execute(sql, tuple(params)).fetchall())

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A ``transaction``: BEGIN IMMEDIATE ... COMMIT, one thread at a time."""
        with self.mutex:
            self._check_process()
            with transaction(self.conn) as c:
                yield c


_registry: dict[str, Database] = {}
_registry_mutex = threading.RLock()
_deferred: list[Database] = []
"""Releases that arrived while this thread was inside the registry (a user collected by the GC mid-open)."""
_inside = threading.local()
_inherited: list[Database] = []
"""Connections a forked child inherited: kept referenced so they are never closed (or checkpointed) here."""


def _after_fork_in_child() -> None:
    global _registry_mutex
    _registry_mutex = threading.RLock()  # another thread may have held it at the fork
    _deferred.clear()
    _inside.active = False
    _inherited.extend(_registry.values())
    _registry.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _create_private(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    try:
        # Create the file ourselves so it is never world-readable, not even for an instant (SQLite gives its
        # -wal and -shm files the database file's mode). O_EXCL: only a file that did not exist is opened
        # here, so no SQLite connection of this process can have locks on it that this close would drop.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        os.close(fd)
    os.chmod(path, 0o600)


class NewerJournal(InputError):
    """The journal was written by a newer Gantry than this one."""


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


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: an entry the engine acted on must survive power loss, not just a process crash.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.executescript(_SCHEMA)
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def open_database(path: Path) -> Database:
    """This process's connection to the journal at ``path``: opened (0700 directory, 0600 file, WAL,
    synchronous FULL, schema migrated) on first use, then shared. Pair every call with ``release``."""
    with _registry_section():
        _create_private(path)
        st = os.stat(path)
        identity = (st.st_dev, st.st_ino)
        key = os.path.realpath(path)
        db = _registry.get(key)
        if db is None or db.identity != identity:
            # A replaced file (same path, new inode) gets a new connection; the old one stays with its users.
            db = Database(path, _connect(key), identity)
            _registry[key] = db
        db.users += 1
        return db


@contextmanager
def _registry_section() -> Iterator[bool]:
    """The registry, held by this thread; yields False when re-entered (a GC finalizer inside a section)."""
    with _registry_mutex:
        if getattr(_inside, "active", False):
            yield False
            return
        _inside.active = True
        try:
            yield True
        finally:
            try:
                while _deferred:
                    _release(_deferred.pop())
            finally:
                _inside.active = False


def release(db: Database) -> None:
    """One user is done; the connection closes with its last user (it then holds no lock anyone needs)."""
    with _registry_section() as outermost:
        if not outermost:
            _deferred.append(db)  # finish the section in progress first (it may be handing this db out)
            return
        _release(db)


def _release(db: Database) -> None:
    if db.pid != os.getpid() or db.users == 0:
        return  # inherited across fork, or already closed: never close it here
    db.users -= 1
    if db.users:
        return
    key = os.path.realpath(db.path)
    if _registry.get(key) is db:
        del _registry[key]
    with db.mutex:
        db.conn.close()


def open_connections() -> int:
    """How many journal connections this process has open (tests check there is one per file)."""
    with _registry_mutex:
        return len(_registry)


class _Handle:
    """One user's claim on a ``Database``; released once, by ``close`` or when the user is collected."""

    def __init__(self, owner: object, path: Path) -> None:
        self.db = open_database(path)
        self._finalizer = weakref.finalize(owner, release, self.db)

    def close(self) -> None:
        self._finalizer()


class SqliteJournal:
    """The embedded journal backend (one file per project, shared by every gantry process)."""

    def __init__(self, path: Path, *, on_append: AppendHook | None = None) -> None:
        self.path = path
        self._handle = _Handle(self, path)
        self.db = self._handle.db
        self._on_append = on_append
        self._appends = 0

    @property
    def conn(self) -> sqlite3.Connection:
        """The process's shared connection (tests inspect it; code goes through ``self.db``)."""
        return self.db.conn

    @classmethod
    def for_project(cls, project: Path) -> SqliteJournal:
        return cls(journal_path(project))

    def __str__(self) -> str:
        return str(self.path)

    def lease_lock(self, clock: Clock, *, ttl: float | None = None, pid: int | None = None,
                   host: str | None = None) -> Lock:
        """The lease lock kept in this journal's database (the process's same connection)."""
        from infra.rollout.lock import DEFAULT_TTL, SqliteLock

        return SqliteLock(self.path, clock, ttl=DEFAULT_TTL if ttl is None else ttl, pid=pid, host=host)

    def create(self, record: RolloutRecord, started: JSONObject) -> Entry:
        self._appends += 1
        if self._on_append is not None:
            self._on_append("before", EntryKind.STARTED, self._appends)
        text = json.dumps(started, sort_keys=True, separators=(",", ":"))
        p = record.provenance
        with self.db.write() as c:
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
               *, phase: Phase | None = None, quarantine: Quarantine | None = None,
               expect_last: int | None = None) -> Entry:
        self._appends += 1
        if self._on_append is not None:
            self._on_append("before", kind, self._appends)
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        with self.db.write() as c:
            if expect_last is not None:
                (last,) = c.execute("SELECT MAX(seq) FROM entries WHERE rollout_id=?", (rollout_id,)).fetchone()
                if last != expect_last:
                    raise JournalConflict(f"rollout {rollout_id} has entry {last} newer than {expect_last}; "
                                          "read it again")
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
        rows = self.db.read(
            "SELECT seq, rollout_id, kind, data, at FROM entries WHERE rollout_id=? AND seq>? ORDER BY seq",
            (rollout_id, after),
        )
        return [Entry(int(cast(int, r[0])), RolloutId(str(r[1])), EntryKind(str(r[2])),
                      cast(JSONObject, json.loads(str(r[3]))), float(cast(float, r[4]))) for r in rows]

    def get(self, rollout_id: RolloutId) -> RolloutRecord:
        rows = self.db.read(f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts WHERE id=?", (rollout_id,))
        if not rows:
            raise UnknownRollout(f"rollout id must be one recorded in {self.path}, but {rollout_id!r} was given"
                                 "; list them with `gantry rollout history`")
        return _record(rows[0])

    def history(self, stack: StackName | None = None, limit: int = 50) -> list[RolloutRecord]:
        if stack is None:
            rows = self.db.read(f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts ORDER BY created_at DESC, rowid DESC LIMIT ?",
                                (limit,))
        else:
            rows = self.db.read(
                f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts WHERE stack=? ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (stack, limit))
        return [_record(r) for r in rows]

    def active(self, stack: StackName) -> list[RolloutRecord]:
        terminal = tuple(p.value for p in Phase if p.terminal)
        rows = self.db.read(
            f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts WHERE stack=? "
            f"AND phase NOT IN ({','.join('?' * len(terminal))}) ORDER BY created_at", (stack, *terminal))
        return [_record(r) for r in rows]

    def quarantined(self, stack: StackName, service: str, image: str) -> Quarantine | None:
        rows = self.db.read("SELECT * FROM quarantine WHERE stack=? AND service=? AND image=?",
                            (stack, service, image))
        if not rows:
            return None
        row = rows[0]
        return Quarantine(StackName(str(row[0])), str(row[1]), str(row[2]), RolloutId(str(row[3])),
                          float(cast(float, row[4])), str(row[5]))

    def close(self) -> None:
        """Done with the journal; the process's connection closes with its last user."""
        self._handle.close()


def _record(row: Sequence[object]) -> RolloutRecord:
    return RolloutRecord(
        id=RolloutId(str(row[0])), stack=StackName(str(row[1])), service=str(row[2]), image=str(row[3]),
        strategy=Strategy(str(row[4])), phase=Phase(str(row[5])), created_at=float(cast(float, row[6])),
        updated_at=float(cast(float, row[7])),
        provenance=Provenance(commit=None if row[8] is None else str(row[8]),
                              committed_at=None if row[9] is None else float(cast(float, row[9])),
                              source=None if row[10] is None else Source(str(row[10]))),
    )

