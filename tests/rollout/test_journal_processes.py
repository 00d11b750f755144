"""Second processes on a running rollout's journal: status then abort (issue 10, D1) and resume's holders (D3).

D1: the engine process used to open and close a raw descriptor on journal.db when it built its lock,
which dropped the POSIX locks of its journal connection; a `status` from another process then
deleted the WAL under it, and a later abort was acknowledged but never seen. D3: `resume` exited 0
when the lease holder was dead on another host, or its pid had been reused.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import drill_cli
import pytest
from fakes import JsonFileTarget

from infra.rollout.clock import FakeClock
from infra.rollout.entries import parse_all, read
from infra.rollout.journal import EntryKind, SqliteJournal, journal_path, open_connections
from infra.rollout.lock import SqliteLock, process_identity
from infra.rollout.scheduler import replay
from infra.rollout.seams import Phase, RolloutId, StackName

GANTRY = drill_cli.GANTRY  # the real CLI, with the test-only file target and kill hook
REPO = Path(__file__).resolve().parents[2]
READER = """
import sys
from pathlib import Path
from infra.rollout.journal import SqliteJournal
j = SqliteJournal(Path(sys.argv[1]))
print(len(j.entries(sys.argv[2])))
j.close()
"""


def _project(tmp: Path, *, interval: str, steps: str = "[10, 50, 100]") -> Path:
    (tmp / "stacks").mkdir(parents=True)
    (tmp / "Pulumi.yaml").write_text("name: drill\nruntime: python\nstackConfigDir: stacks\n")
    gate = f"{sys.executable} -c print(0.0)"
    (tmp / "stacks" / "Pulumi.drill.yaml").write_text(f"""config:
  gantry:cloud: local
  gantry:environment: drill
  gantry:tier: dev
  gantry:services:
    web: {{namespace: web, image: "app:1.0", strategy: canary}}
  gantry:rollout:
    steps: {steps}
    interval: {interval}
    threshold: 1
    judge: threshold
    target: file
    metrics: {{provider: command}}
    gates: [{{name: errors, expr: "{gate}", max: 0.05}}]
""")
    return tmp


def _gantry(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GANTRY, *args, "--project", str(project)], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, **(env or {})}, timeout=180, check=False)


def _deleted_wal(pid: int) -> list[str]:
    fds = Path(f"/proc/{pid}/fd")
    found = []
    for fd in fds.iterdir() if fds.is_dir() else []:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if "journal.db" in target and "(deleted)" in target:
            found.append(target)
    return found


# --------------------------------------------------------------------------- D1


def test_the_engine_process_keeps_its_locks_while_other_processes_read_and_close(tmp_path: Path) -> None:
    """The engine's process opens the journal, then the lock (as `gantry rollout start` does); another
    process reads and closes (as `status` does); every write after that is visible to other processes."""
    from rollout_rig import make_plan

    from components.spec import Strategy
    from infra.rollout.journal import RolloutRecord
    from infra.rollout.scheduler import started
    from infra.rollout.seams import TrafficState

    path = journal_path(tmp_path)
    journal = SqliteJournal(path)
    rid = RolloutId("r-d1")
    baseline = TrafficState(Strategy.CANARY, "app:1.0", None, 0)
    journal.create(RolloutRecord(rid, StackName("dev"), "web", "app:2.0", Strategy.CANARY, Phase.PENDING, 1.0, 1.0),
                   started(stack=StackName("dev"), service="web", image="app:2.0", baseline=baseline,
                           plan=make_plan()).to_json())
    journal.append(rid, EntryKind.INTENT, {"action": "prepare"}, 2.0)
    lock = SqliteLock(path, FakeClock())
    assert open_connections() >= 1
    assert journal.db is lock.db, "journal and lock must share the process's one connection"
    for i in range(3):
        seen = subprocess.run([sys.executable, "-c", READER, str(path), rid], capture_output=True, text=True,
                              cwd=REPO, check=True, timeout=60)
        assert int(seen.stdout) == 2 + i
        journal.append(rid, EntryKind.OPERATOR, {"action": "pause", "i": i}, 3.0 + i)
        assert _deleted_wal(os.getpid()) == [], "another process deleted the WAL this process writes to"
    seen = subprocess.run([sys.executable, "-c", READER, str(path), rid], capture_output=True, text=True, cwd=REPO,
                          check=True, timeout=60)
    assert int(seen.stdout) == 5, "a committed entry is invisible to other processes"
    lock.close()
    journal.close()


def test_status_then_abort_during_a_canary_rolls_back(tmp_path: Path) -> None:
    """The issue's reproduction with the real CLI: a canary runs, `status` then `abort` run from other
    processes; the abort is acknowledged only when journaled and the running engine honours it."""
    # 10 s steps: even a saturated machine cannot promote before the `abort` process has started.
    project = _project(tmp_path, interval="10s", steps="[10, 25, 50, 100]")
    proc = subprocess.Popen([*GANTRY, "rollout", "start", "--stack", "drill", "--service", "web", "--image",
                             "app:2.0", "--json", "--project", str(project)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        rid = ""
        for line in proc.stdout:  # the first weight is live: the canary is running
            event = json.loads(line)
            rid = str(event.get("rollout", rid))
            if event.get("event") == "applied" and event["data"].get("action") == "set_weight":
                break
        status = _gantry(project, "rollout", "status", rid, "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["phase"] == "progressing"
        assert _deleted_wal(proc.pid) == [], "status deleted the WAL under the running engine"
        abort = _gantry(project, "rollout", "abort", rid)
        assert "abort recorded" in abort.stdout, abort.stderr
        # The running process acts on it; `abort` follows it to the end: rolled back is exit 1.
        assert abort.returncode == 1, (abort.stdout, abort.stderr)
        rest, errors = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, (rest, errors)
    journal = SqliteJournal(journal_path(project))
    entries = journal.entries(RolloutId(rid))
    assert [e.data["action"] for e in entries if e.kind is EntryKind.OPERATOR] == ["abort"]
    state = replay(parse_all(entries))
    assert state.phase is Phase.ROLLED_BACK and state.reverted and not state.promoted
    assert state.reason == "abort by operator"
    live = JsonFileTarget(project / ".gantry" / "targets" / "drill-web.json").current()
    assert (live.canary_weight, live.stable_image) == (0, "app:1.0")
    assert journal.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    journal.close()


# --------------------------------------------------------------------------- D3


@pytest.fixture
def crashed(tmp_path: Path) -> tuple[Path, str]:
    """A real `gantry rollout start` SIGKILLed mid-rollout: unfinished, its lease held by a dead pid."""
    project = _project(tmp_path, interval="0s")
    killed = _gantry(project, "rollout", "start", "--stack", "drill", "--service", "web", "--image", "app:2.0",
                     "--json", env={"GANTRY_DRILL_KILL_AT": "after:6"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    journal = SqliteJournal(journal_path(project))
    rid = journal.history()[0].id
    assert not replay(read(journal, rid)).phase.terminal
    journal.close()
    return project, rid


def _set_lease(project: Path, **values: object) -> None:
    journal = SqliteJournal(journal_path(project))
    with journal.db.write() as c:
        for column, value in values.items():
            c.execute(f"UPDATE leases SET {column}=?", (value,))
    journal.close()


def _lease(project: Path) -> tuple[object, ...]:
    journal = SqliteJournal(journal_path(project))
    rows = journal.db.read("SELECT host, pid, process, expires_at FROM leases")
    journal.close()
    return rows[0] if rows else ()


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def _assert_finished(project: Path, rid: str, result: subprocess.CompletedProcess[str]) -> None:
    journal = SqliteJournal(journal_path(project))
    state = replay(read(journal, RolloutId(rid)))
    journal.close()
    assert state.phase.terminal and state.verified, (result.stdout, result.stderr)
    assert result.returncode == (0 if state.phase is Phase.PROMOTED else 1), (result.stdout, result.stderr)


@pytest.mark.parametrize("json_mode", [False, True], ids=["human", "json"])
def test_resume_takes_over_from_a_dead_holder_on_this_host(crashed: tuple[Path, str], json_mode: bool) -> None:
    project, rid = crashed
    host, pid, process, _ = _lease(project)
    assert host == socket.gethostname() and process, "the lease records its holder's process identity"
    assert process_identity(int(str(pid))) == "", "the killed holder is gone"
    result = _gantry(project, "rollout", "resume", rid, *(["--json"] if json_mode else []))
    _assert_finished(project, rid, result)
    if json_mode:
        assert json.loads(result.stdout.splitlines()[-1])["event"] == "outcome"


def test_resume_takes_over_when_the_holders_pid_was_reused(crashed: tuple[Path, str]) -> None:
    project, rid = crashed
    stranger = _sleeper()
    try:
        # The dead holder's pid now belongs to another live process; its identity differs from the lease's.
        _set_lease(project, pid=stranger.pid)
        assert process_identity(stranger.pid) not in ("", _lease(project)[2])
        result = _gantry(project, "rollout", "resume", rid, "--json")
        _assert_finished(project, rid, result)
        assert stranger.poll() is None, "the stranger was left alone"
    finally:
        stranger.kill()
        stranger.wait()


@pytest.mark.parametrize("json_mode", [False, True], ids=["human", "json"])
def test_resume_exits_3_naming_a_live_holder_on_this_host(crashed: tuple[Path, str], json_mode: bool) -> None:
    project, rid = crashed
    holder = _sleeper()
    try:
        _set_lease(project, pid=holder.pid, process=process_identity(holder.pid))
        result = _gantry(project, "rollout", "resume", rid, *(["--json"] if json_mode else []))
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert str(holder.pid) in result.stderr and socket.gethostname() in result.stderr
    if json_mode:
        locked = json.loads(result.stdout.splitlines()[-1])
        assert (locked["event"], locked["pid"], locked["host"], locked["exit_code"]) == (
            "locked", holder.pid, socket.gethostname(), 3)
    journal = SqliteJournal(journal_path(project))
    assert not replay(read(journal, RolloutId(rid))).phase.terminal, "nothing may act beside a live holder"
    journal.close()


@pytest.mark.parametrize("json_mode", [False, True], ids=["human", "json"])
def test_a_holder_on_another_host_decides_by_lease_expiry(crashed: tuple[Path, str], json_mode: bool) -> None:
    project, rid = crashed
    flag = ["--json"] if json_mode else []
    # Its pid (dead here) says nothing about the other host: an unexpired lease is a live holder.
    _set_lease(project, host="build-7.example", pid=4242, process="other-boot:1", expires_at=time.time() + 600)
    locked = _gantry(project, "rollout", "resume", rid, *flag)
    assert locked.returncode == 3, (locked.stdout, locked.stderr)
    assert "build-7.example" in locked.stderr and "4242" in locked.stderr
    if json_mode:
        assert json.loads(locked.stdout.splitlines()[-1])["host"] == "build-7.example"
    # Once its lease has expired, the holder stopped heartbeating: resume takes over and finishes.
    _set_lease(project, expires_at=time.time() - 1)
    result = _gantry(project, "rollout", "resume", rid, *flag)
    _assert_finished(project, rid, result)


# --------------------------------------------------------------------------- one connection per process


def test_journal_and_lock_share_one_connection_that_outlives_either_close(tmp_path: Path) -> None:
    path = journal_path(tmp_path)
    before = open_connections()
    journal = SqliteJournal(path)
    lock = SqliteLock(path, FakeClock(), host="a")
    other = SqliteJournal(tmp_path / "other" / "journal.db")
    assert journal.db is lock.db and other.db is not journal.db
    assert open_connections() == before + 2
    lease = lock.acquire(StackName("dev"), RolloutId("r-1"))
    journal.close()
    journal.close()  # twice: still one release
    assert lock.holder(StackName("dev")) == lease, "closing the journal must not close the lock's connection"
    lock.close()
    other.close()
    assert open_connections() == before


def test_a_forked_child_opens_its_own_connection_and_never_closes_the_parents(tmp_path: Path) -> None:
    from rollout_rig import make_rig

    rig = make_rig(tmp_path)
    outcome = rig.start()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the inherited handle refuses; a fresh one works; exiting closes nothing of ours
        code = 1
        try:
            os.close(read)
            try:
                rig.journal.entries(outcome.rollout_id)
            except RuntimeError as exc:
                refused = "forked child" in str(exc)
            else:
                refused = False
            mine = SqliteJournal(journal_path(tmp_path))
            mine.append(outcome.rollout_id, EntryKind.OPERATOR, {"action": "note", "from": "child"}, 1.0)
            mine.close()
            os.write(write, b"1" if refused else b"0")
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert os.read(read, 1) == b"1", "the child used the parent's connection"
    os.close(read)
    entries = rig.journal.entries(outcome.rollout_id)  # the parent's connection still works and sees the child
    assert entries[-1].data == {"action": "note", "from": "child"}
    assert _deleted_wal(os.getpid()) == []


def test_a_journal_from_before_versioning_is_migrated_and_its_leases_still_count(tmp_path: Path) -> None:
    import sqlite3

    path = journal_path(tmp_path)
    path.parent.mkdir(parents=True)
    old = sqlite3.connect(path)  # the schema as shipped before migrations, with a live lease in it
    old.executescript("""
        CREATE TABLE rollouts (id TEXT PRIMARY KEY, stack TEXT NOT NULL, service TEXT NOT NULL, image TEXT NOT NULL,
            strategy TEXT NOT NULL, phase TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL);
        CREATE TABLE entries (seq INTEGER PRIMARY KEY AUTOINCREMENT, rollout_id TEXT NOT NULL REFERENCES rollouts(id),
            kind TEXT NOT NULL, data TEXT NOT NULL, at REAL NOT NULL);
        CREATE TABLE quarantine (stack TEXT NOT NULL, service TEXT NOT NULL, image TEXT NOT NULL,
            rollout_id TEXT NOT NULL, at REAL NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (stack, service, image));
        CREATE TABLE leases (stack TEXT PRIMARY KEY, rollout_id TEXT NOT NULL, holder TEXT NOT NULL,
            host TEXT NOT NULL, pid INTEGER NOT NULL, acquired_at REAL NOT NULL, expires_at REAL NOT NULL);
    """)
    old.execute("INSERT INTO leases VALUES ('dev', 'r-old', 'bob', ?, ?, 0, 2e9)",
                (socket.gethostname(), os.getppid()))
    old.commit()
    old.close()
    from infra.errors import ExitCode
    from infra.rollout.errors import StackLocked
    from infra.rollout.journal import SCHEMA_VERSION

    lock = SqliteLock(path, FakeClock())
    assert lock.db.read("PRAGMA user_version")[0][0] == SCHEMA_VERSION
    held = lock.holder(StackName("dev"))
    assert held is not None and held.process == "" and held.pid == os.getppid()
    # No recorded identity: a live pid on this host is trusted as the holder.
    with pytest.raises(StackLocked) as info:
        lock.acquire(StackName("dev"), RolloutId("r-new"))
    assert info.value.exit_code is ExitCode.LOCKED
    lock.close()


def test_a_release_from_a_finalizer_inside_the_registry_waits_for_the_section_to_end(tmp_path: Path) -> None:
    """The GC may collect a forgotten journal while this thread is opening another: its release is deferred,
    never a deadlock and never a close of the connection being handed out."""
    from infra.rollout import journal as journal_module

    first = SqliteJournal(journal_path(tmp_path))
    db = first.db
    with journal_module._registry_section():
        first.close()  # re-entrant: deferred
        assert db.users == 1
        again = journal_module.open_database(journal_path(tmp_path))
        assert again is db and db.users == 2
    assert db.users == 1, "the deferred release ran when the section ended"
    assert db.read("SELECT COUNT(*) FROM rollouts") == [(0,)]
    journal_module.release(db)
    assert db.users == 0
