"""Multi-process journal stress: engines, operators and readers on one journal.db while writers are SIGKILLed.

Used by ``tests/rollout/test_journal_stress.py`` and ``bench/journal_stress.py``. Each role is a separate
process (``python tests/rollout/stress.py <role> <dir> <index>``) with its own journal connection:

- an engine runs the real ``Engine`` (real journal and lease, a ``JsonFileTarget`` per stack, a clock
  whose waits take milliseconds) over one stack: it resumes whatever its killed predecessor left
  unfinished, then starts rollout after rollout;
- an operator journals pause, resume and abort through ``engine.request``, exactly as the CLI does;
- a reader opens the journal, reads history and entries, replays them and closes, as ``status`` does.

Writers log every acknowledged write to a side file, fsynced after the commit returned. The parent
SIGKILLs random writers and restarts them, then stops everyone, resumes what is unfinished and checks:
``PRAGMA integrity_check``, every acknowledged write present, every acknowledged abort honoured (the
rollout rolled back), every rollout finished and verified against its target.

``run(..., state=URL)`` runs the same crowd on a shared backend (``infra.rollout.state``, e.g. DynamoDB
on a moto server): every process opens its own client; the integrity check there is that each rollout's
sequence numbers are exactly 1..n and its summary row agrees with its entries.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from drills import StepAnalysis
from fakes import JsonFileTarget

from components.spec import Strategy
from infra.errors import InputError
from infra.rollout.clock import SystemClock
from infra.rollout.engine import Engine, OperatorAction, request
from infra.rollout.entries import Verified, of, read
from infra.rollout.errors import StackLocked
from infra.rollout.journal import (
    Entry,
    EntryKind,
    JournalConflict,
    Quarantine,
    RolloutRecord,
    SqliteJournal,
    StateJournal,
)
from infra.rollout.lock import Lock
from infra.rollout.scheduler import canary_plan, mismatches, replay
from infra.rollout.seams import JSONObject, Phase, RolloutId, StackName

ROLES = ("engine", "operator", "reader")
WRITERS = ("engine", "operator")


class QuickClock:
    """Engine time that runs ahead of the wall clock: each wait really takes at most ``nap`` seconds."""

    def __init__(self, nap: float = 0.004) -> None:
        self._now = time.time()
        self.nap = nap

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._now += seconds
            time.sleep(min(seconds, self.nap))


class AckLog:
    """A side file of acknowledged operations: one line each, fsynced (writes only after their commit)."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def write(self, record: JSONObject, *, sync: bool) -> None:
        os.write(self.fd, (json.dumps(record, sort_keys=True) + "\n").encode())
        if sync:
            os.fsync(self.fd)


class AckJournal:
    """The engine's journal, logging each append it was acknowledged (committed) to the side file."""

    def __init__(self, inner: StateJournal, log: AckLog) -> None:
        self.inner = inner
        self.log = log
        self.entries = inner.entries
        self.get = inner.get
        self.history = inner.history
        self.active = inner.active
        self.quarantined = inner.quarantined
        self.close = inner.close

    def lease_lock(self, clock: QuickClock | SystemClock, *, ttl: float | None = None, pid: int | None = None,
                   host: str | None = None) -> Lock:
        return self.inner.lease_lock(clock, ttl=ttl, pid=pid, host=host)

    def create(self, record: RolloutRecord, started: JSONObject) -> Entry:
        entry = self.inner.create(record, started)
        self.log.write({"op": "write", "seq": entry.seq, "rollout": entry.rollout_id, "kind": entry.kind.value},
                       sync=True)
        return entry

    def append(self, rollout_id: RolloutId, kind: EntryKind, data: JSONObject, at: float,
               *, phase: Phase | None = None, quarantine: Quarantine | None = None,
               expect_last: int | None = None) -> Entry:
        entry = self.inner.append(rollout_id, kind, data, at, phase=phase, quarantine=quarantine,
                                  expect_last=expect_last)
        self.log.write({"op": "write", "seq": entry.seq, "rollout": entry.rollout_id, "kind": entry.kind.value},
                       sync=True)
        return entry


def _db(root: Path) -> Path:
    return root / "journal.db"


def _open(root: Path, state: str) -> StateJournal:
    """This process's journal: the SQLite file in ``root``, or its own client of the shared backend."""
    if state == "sqlite":
        return SqliteJournal(_db(root))
    from infra.rollout.state import open_state

    return open_state(state, root)


def _stack(index: int) -> StackName:
    return StackName(f"s{index}")


def _target(root: Path, index: int) -> JsonFileTarget:
    return JsonFileTarget(root / f"target-{index}.json", Strategy.CANARY, "app:0")


def _stopped(root: Path) -> bool:
    return (root / "stop").exists()


def _log(root: Path, role: str, index: int) -> AckLog:
    (root / "acks").mkdir(exist_ok=True)
    return AckLog(root / "acks" / f"{role}-{index}-{os.getpid()}.log")


def _engine(root: Path, index: int, journal: StateJournal | AckJournal, clock: QuickClock | SystemClock) -> Engine:
    return Engine(target=_target(root, index), analysis=StepAnalysis(), journal=journal,
                  lock=journal.lease_lock(clock), clock=clock, poll=30.0)


def run_engine(root: Path, index: int, state: str = "sqlite") -> None:
    clock = QuickClock()
    journal = AckJournal(_open(root, state), _log(root, "engine", index))
    engine = _engine(root, index, journal, clock)
    stack = _stack(index)
    plan = canary_plan([10, 25, 50, 100], interval=30.0, threshold=1)
    n = 0
    while not _stopped(root):
        try:
            unfinished = _unfinished(journal, stack)
            if unfinished:  # a killed predecessor's rollout: finish it first, as `gantry rollout resume` does
                engine.resume(unfinished[0])
                continue
            n += 1
            engine.start(stack=stack, service="web", image=f"app:{os.getpid()}.{n}", plan=plan, force=True)
        except StackLocked:
            time.sleep(0.01)  # the predecessor's lease is being taken over by the final sweep or a reader


def _unfinished(journal: StateJournal | AckJournal, stack: StackName) -> list[RolloutId]:
    """Rollouts not ended, or ended but never verified (killed in between): `resume` finishes both."""
    return [r.id for r in journal.history(stack, limit=1_000_000)
            if not r.phase.terminal or replay(read(journal, r.id)).verified is None]


def _last_rollout(journal: StateJournal, stack: StackName) -> RolloutId | None:
    """The rollout that acted on the stack's target last."""
    if not isinstance(journal, SqliteJournal):
        from infra.rollout.state.dynamodb import DynamoLock

        # The last holder of the stack's lease (release keeps its rollout id): every effect is fenced by it.
        lock = journal.lease_lock(SystemClock())
        return lock.last_holder(stack) if isinstance(lock, DynamoLock) else None
    # By journal order, not created_at: each engine process's QuickClock starts afresh.
    rows = journal.db.read("SELECT e.rollout_id FROM entries e JOIN rollouts r ON r.id = e.rollout_id "
                           "WHERE e.kind = 'started' AND r.stack = ? ORDER BY e.seq DESC LIMIT 1", (stack,))
    return RolloutId(str(rows[0][0])) if rows else None


def run_operator(root: Path, index: int, stacks: int, state: str = "sqlite") -> None:
    rng = random.Random(os.getpid())
    journal = _open(root, state)
    log = _log(root, "operator", index)
    clock = SystemClock()
    i = 0
    while not _stopped(root):
        active = [r.id for s in range(stacks) for r in journal.active(_stack(s))]
        log.write({"op": "read"}, sync=False)
        if not active:
            time.sleep(0.005)
            continue
        rid = rng.choice(active)
        action = rng.choices([OperatorAction.PAUSE, OperatorAction.RESUME, OperatorAction.ABORT], [4, 4, 2])[0]
        i += 1
        nonce = f"{os.getpid()}-{i}"
        try:
            request(journal, clock, rid, action, reason=f"stress {action.value} {nonce}")
        except (InputError, JournalConflict):
            log.write({"op": "refused", "action": action.value, "rollout": rid}, sync=False)
        else:
            # Acknowledged only now: request() returned after the commit.
            log.write({"op": "operator", "action": action.value, "rollout": rid, "nonce": nonce}, sync=True)
        time.sleep(rng.uniform(0.0, 0.01))


def run_reader(root: Path, index: int, state: str = "sqlite") -> None:
    rng = random.Random(os.getpid())
    log = _log(root, "reader", index)
    while not _stopped(root):
        journal = _open(root, state)  # open, read, close: what each `gantry rollout status` process does
        try:
            records = journal.history(limit=20)
            if records:
                entries = read(journal, rng.choice(records).id)
                seqs = [e.seq for e in entries]
                if seqs != sorted(set(seqs)):
                    raise AssertionError(f"entries out of order: {seqs}")
                replay(entries)
        finally:
            journal.close()
        log.write({"op": "read"}, sync=False)


# --------------------------------------------------------------------------- the parent


@dataclass
class StressResult:
    processes: int
    """Processes running at once (engines + operators + readers)."""
    operations: int
    writes_acknowledged: int
    operator_acknowledged: dict[str, int]
    operator_refused: int
    reads: int
    kills: int
    lost_writes: int
    aborts_acknowledged: int
    aborts_not_honoured: int
    rollouts: int
    phases: dict[str, int]
    unverified: int
    integrity: str
    seconds: float
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def _spawn(root: Path, role: str, index: int, stacks: int, state: str) -> subprocess.Popen[bytes]:
    # A fresh interpreter, never a fork: a child must not inherit the parent's journal connection.
    return subprocess.Popen([sys.executable, __file__, role, str(root), str(index), str(stacks), state],
                            stdout=subprocess.DEVNULL, stderr=open(root / f"{role}-{index}.err", "ab"))


def run(root: Path, *, engines: int = 3, operators: int = 3, readers: int = 2, min_operations: int = 1200,
        min_kills: int = 12, min_seconds: float = 4.0, max_seconds: float = 45.0,
        kill_gap: tuple[float, float] = (0.1, 0.4), seed: int = 0, state: str = "sqlite") -> StressResult:
    """Run the stress in ``root`` (a fresh directory) and check the journal afterwards.

    Each writer is SIGKILLed after a random number (1..60) of its own operations, so kills land at
    every point of its work however slow the machine is (a kill timed by the clock alone would mostly
    hit interpreters still starting on a loaded machine).
    """
    root.mkdir(parents=True, exist_ok=True)
    _open(root, state).close()  # create and migrate once, before the crowd arrives
    rng = random.Random(seed)
    counts = {"engine": engines, "operator": operators, "reader": readers}
    procs = {(role, i): _spawn(root, role, i, engines, state) for role in ROLES for i in range(counts[role])}
    kill_after = {key: rng.randint(1, 60) for key in procs}
    kills = 0
    start = time.monotonic()
    next_kill = start
    try:
        while True:
            now = time.monotonic()
            elapsed = now - start
            ops, writes = _count_ops(root)
            enough = ops >= min_operations and writes >= min_operations // 5 and kills >= min_kills
            if (enough and elapsed >= min_seconds) or elapsed >= max_seconds:
                break
            for key, proc in procs.items():
                if proc.poll() is not None:  # a process must only die by our hand
                    err = (root / f"{key[0]}-{key[1]}.err").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{key[0]} {key[1]} exited with {proc.returncode}: {err}")
            if now >= next_kill:
                ripe = [k for k in procs if k[0] in WRITERS
                        and _lines(root / "acks" / f"{k[0]}-{k[1]}-{procs[k].pid}.log") >= kill_after[k]]
                if ripe:
                    key = rng.choice(ripe)
                    procs[key].send_signal(signal.SIGKILL)
                    procs[key].wait()
                    kills += 1
                    procs[key] = _spawn(root, key[0], key[1], engines, state)
                    kill_after[key] = rng.randint(1, 60)
                    next_kill = now + rng.uniform(*kill_gap)
            time.sleep(0.02)
    finally:
        (root / "stop").touch()
        deadline = time.monotonic() + 30.0
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    seconds = time.monotonic() - start
    return _check(root, engines, processes=len(procs), kills=kills, seconds=seconds, state_url=state)


def _lines(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(65536), b""))
    except FileNotFoundError:
        return 0


def _acks(root: Path) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for path in sorted((root / "acks").glob("*.log")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by the SIGKILL: never acknowledged (its fsync never returned)
    return out


def _count_ops(root: Path) -> tuple[int, int]:
    """(all operations, writes) logged so far."""
    acks = root / "acks"
    if not acks.is_dir():
        return 0, 0
    total = writes = 0
    for path in acks.glob("*.log"):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        total += data.count(b"\n")
        writes += data.count(b'"op": "write"') + data.count(b'"op": "operator"')
    return total, writes


def _integrity(journal: StateJournal) -> str:
    """SQLite's own check; on a shared backend: each rollout's seqs are 1..n and its summary row agrees."""
    if isinstance(journal, SqliteJournal):
        result = str(journal.db.read("PRAGMA integrity_check")[0][0])
        return result if not journal.db.read("PRAGMA foreign_key_check") else "foreign_key_check found orphans"
    for record in journal.history(limit=1_000_000):
        entries = journal.entries(record.id)
        if [e.seq for e in entries] != list(range(1, len(entries) + 1)):
            return f"rollout {record.id}: sequence numbers {[e.seq for e in entries]} are not 1..n"
    return "ok"


def _check(root: Path, engines: int, *, processes: int, kills: int, seconds: float, state_url: str = "sqlite"
           ) -> StressResult:
    problems: list[str] = []
    journal = _open(root, state_url)
    # The crowd is gone: finish what the kills left unfinished (dead holders on this host are taken over).
    for index in range(engines):
        engine = _engine(root, index, journal, QuickClock())
        for rid in _unfinished(journal, _stack(index)):
            engine.resume(rid)
    integrity = _integrity(journal)
    if integrity != "ok":
        problems.append(f"integrity: {integrity}")
    acks = _acks(root)
    rows = [e for r in journal.history(limit=1_000_000) for e in journal.entries(r.id)]
    by_seq = {(str(e.rollout_id), e.seq): e.kind.value for e in rows}
    nonces = {(e.rollout_id, str(e.data.get("reason", ""))) for e in rows if e.kind is EntryKind.OPERATOR}
    writes = [a for a in acks if a["op"] == "write"]
    operator = [a for a in acks if a["op"] == "operator"]
    lost = [a for a in writes if by_seq.get((str(a["rollout"]), int(str(a["seq"])))) != a["kind"]]
    lost += [a for a in operator if (a["rollout"], f"stress {a['action']} {a['nonce']}") not in nonces]
    if lost:
        problems.append(f"{len(lost)} acknowledged writes are missing, e.g. {lost[:3]}")
    phases: Counter[str] = Counter()
    unverified = 0
    final: dict[str, Phase] = {}
    records = journal.history(limit=1_000_000)
    for record in records:
        entries = read(journal, record.id)
        state = replay(entries)
        final[record.id] = state.phase
        phases[state.phase.value] += 1
        verified = [v.ok for v in of(entries, Verified)]
        if not state.phase.terminal or verified != [True]:
            unverified += 1
            problems.append(f"{record.id} ended {state.phase.value} with verifications {verified}")
        if record.phase is not state.phase:
            problems.append(f"{record.id}: summary row says {record.phase.value}, entries say {state.phase.value}")
    for index in range(engines):
        last = _last_rollout(journal, _stack(index))
        if last is not None:
            diff = mismatches(replay(read(journal, last)), _target(root, index).current())
            if diff:
                problems.append(f"stack s{index}: target differs from the journal: {diff}")
    aborts = [a for a in operator if a["action"] == "abort"]
    not_honoured = [a for a in aborts if final.get(str(a["rollout"])) is not Phase.ROLLED_BACK]
    if not_honoured:
        problems.append(f"{len(not_honoured)} acknowledged aborts were not honoured, e.g. {not_honoured[:3]}")
    journal.close()
    return StressResult(
        processes=processes, operations=len(acks), writes_acknowledged=len(writes),
        operator_acknowledged=dict(Counter(str(a["action"]) for a in operator)),
        operator_refused=sum(1 for a in acks if a["op"] == "refused"),
        reads=sum(1 for a in acks if a["op"] == "read"), kills=kills, lost_writes=len(lost),
        aborts_acknowledged=len(aborts), aborts_not_honoured=len(not_honoured), rollouts=len(records),
        phases=dict(phases), unverified=unverified, integrity=integrity, seconds=round(seconds, 2),
        problems=problems)


def main(argv: Sequence[str]) -> None:
    role, root, index, stacks = argv[0], Path(argv[1]), int(argv[2]), int(argv[3])
    state = argv[4] if len(argv) > 4 else "sqlite"
    if role == "engine":
        run_engine(root, index, state)
    elif role == "operator":
        run_operator(root, index, stacks, state)
    elif role == "reader":
        run_reader(root, index, state)
    else:
        raise SystemExit(f"role must be one of {', '.join(ROLES)}, but {role!r} was given")


if __name__ == "__main__":
    main(sys.argv[1:])
