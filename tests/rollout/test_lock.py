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
