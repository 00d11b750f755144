"""The per-stack lease: one holder, refusal naming holder/host/pid/expiry, heartbeat, takeover of expired or dead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.errors import ExitCode
from infra.rollout.clock import FakeClock
from infra.rollout.errors import StackLocked
from infra.rollout.journal import journal_path
from infra.rollout.lock import SqliteLock, iso
from infra.rollout.seams import RolloutId, StackName

DEV = StackName("dev")


def _lock(tmp: Path, clock: FakeClock, *, host: str = "ci-1", pid: int | None = None, ttl: float = 60.0
          ) -> SqliteLock:
    return SqliteLock(journal_path(tmp), clock, ttl=ttl, holder="alice", host=host,
                      pid=pid if pid is not None else os.getpid())


def test_second_rollout_is_refused_with_holder_host_pid_and_expiry(tmp_path: Path) -> None:
    clock = FakeClock()
    first = _lock(tmp_path, clock, host="build-7", pid=4242)
    lease = first.acquire(DEV, RolloutId("r-1"))
    second = _lock(tmp_path, clock, host="laptop")
    with pytest.raises(StackLocked) as info:
        second.acquire(DEV, RolloutId("r-2"))
    err = info.value
    assert err.exit_code is ExitCode.LOCKED
    assert (err.host, err.pid, err.expires_at) == ("build-7", 4242, iso(lease.expires_at))
    text = str(err)
    for part in ("alice", "r-1", "build-7", "4242", iso(lease.expires_at)):
        assert part in text


def test_other_stacks_are_independent(tmp_path: Path) -> None:
    clock = FakeClock()
    _lock(tmp_path, clock, host="a").acquire(DEV, RolloutId("r-1"))
    lease = _lock(tmp_path, clock, host="b").acquire(StackName("prod"), RolloutId("r-2"))
    assert lease.stack == "prod"


def test_expired_lease_can_be_taken_over_and_the_old_holder_loses_it(tmp_path: Path) -> None:
    clock = FakeClock()
    old = _lock(tmp_path, clock, host="a", ttl=30)
    old_lease = old.acquire(DEV, RolloutId("r-1"))
    new = _lock(tmp_path, clock, host="b", ttl=30)
    clock.advance(29)
    with pytest.raises(StackLocked):
        new.acquire(DEV, RolloutId("r-2"))
    clock.advance(2)
    taken = new.acquire(DEV, RolloutId("r-2"))
    assert new.holder(DEV) == taken
    with pytest.raises(StackLocked, match="r-2"):
        old.heartbeat(old_lease)


def test_heartbeat_extends_the_lease(tmp_path: Path) -> None:
    clock = FakeClock()
    lock = _lock(tmp_path, clock, host="a", ttl=30)
    lease = lock.acquire(DEV, RolloutId("r-1"))
    for _ in range(5):
        clock.advance(20)
        lease = lock.heartbeat(lease)
    assert lease.expires_at == clock.now() + 30
    with pytest.raises(StackLocked):
        _lock(tmp_path, clock, host="b", ttl=30).acquire(DEV, RolloutId("r-2"))


def test_a_dead_holder_on_this_host_is_taken_over_at_once(tmp_path: Path) -> None:
    clock = FakeClock()
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead_pid = int(done.stdout)
    _lock(tmp_path, clock, host="same", pid=dead_pid).acquire(DEV, RolloutId("r-1"))
    lease = _lock(tmp_path, clock, host="same").acquire(DEV, RolloutId("r-1"))
    assert lease.pid == os.getpid()


def test_a_live_holder_on_this_host_is_not_taken_over(tmp_path: Path) -> None:
    clock = FakeClock()
    _lock(tmp_path, clock, host="same", pid=os.getppid()).acquire(DEV, RolloutId("r-1"))
    with pytest.raises(StackLocked):
        _lock(tmp_path, clock, host="same").acquire(DEV, RolloutId("r-1"))


def test_release_frees_the_stack_but_only_for_the_holder(tmp_path: Path) -> None:
    clock = FakeClock()
    a = _lock(tmp_path, clock, host="a")
    lease = a.acquire(DEV, RolloutId("r-1"))
    b = _lock(tmp_path, clock, host="b")
    b.release(lease.__class__(DEV, RolloutId("r-9"), "x", "b", 1, 0.0, 0.0))
    assert a.holder(DEV) == lease
    a.release(lease)
    assert a.holder(DEV) is None
    assert b.acquire(DEV, RolloutId("r-2")).host == "b"


def test_engine_heartbeat_thread_keeps_the_lease_through_a_blocking_up(tmp_path: Path) -> None:
    import threading
    import time

    from fakes import FakeAnalysis, FakeTarget

    from infra.rollout.clock import SystemClock
    from infra.rollout.engine import Engine
    from infra.rollout.journal import SqliteJournal
    from infra.rollout.scheduler import canary_plan

    refused: list[bool] = []

    class SlowTarget(FakeTarget):
        def set_weights(self, canary_weight: int) -> None:
            # A long `pulumi up`: the loop is blocked for two lease lifetimes (the thread renews every ttl/3;
            # a lifetime of 3 s leaves a loaded 2-core machine room to schedule the heartbeat thread).
            time.sleep(6.5)
            try:
                SqliteLock(journal_path(tmp_path), SystemClock(), ttl=3.0, host="intruder").acquire(
                    DEV, RolloutId("r-other"))
                refused.append(False)
            except StackLocked:
                refused.append(True)
            super().set_weights(canary_weight)

    db = journal_path(tmp_path)
    engine = Engine(target=SlowTarget(), analysis=FakeAnalysis(), journal=SqliteJournal(db),
                    lock=SqliteLock(db, SystemClock(), ttl=3.0), clock=SystemClock())
    outcome = engine.start(stack=DEV, service="web", image="app:2.0",
                           plan=canary_plan([100], interval=0.0, threshold=1))
    assert outcome.phase.value == "promoted"
    assert refused == [True]
    assert not [t for t in threading.enumerate() if t.name.startswith("gantry-lease-")], "heartbeat stopped"


def test_engine_stops_when_its_lease_is_taken(tmp_path: Path) -> None:
    import time

    from fakes import FakeAnalysis, FakeTarget

    from infra.rollout.clock import SystemClock
    from infra.rollout.engine import Engine
    from infra.rollout.journal import SqliteJournal
    from infra.rollout.scheduler import canary_plan

    db = journal_path(tmp_path)

    class Hijacked(FakeTarget):
        def set_weights(self, canary_weight: int) -> None:
            super().set_weights(canary_weight)
            if canary_weight == 50:
                intruder = SqliteLock(db, SystemClock(), ttl=60, host="other")
                intruder.conn.execute("UPDATE leases SET host='other', pid=1, rollout_id='r-x', holder='eve'")
                time.sleep(0.5)

    engine = Engine(target=Hijacked(), analysis=FakeAnalysis(), journal=SqliteJournal(db),
                    lock=SqliteLock(db, SystemClock(), ttl=0.3), clock=SystemClock())
    with pytest.raises(StackLocked, match="eve"):
        engine.start(stack=DEV, service="web", image="app:2.0",
                     plan=canary_plan([50, 100], interval=0.0, threshold=1))
