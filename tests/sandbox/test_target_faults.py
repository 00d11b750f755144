"""HaproxyTarget under faults: the user-visible end check, no orphan after a kill at spawn (D7), log rotation.

Real HAProxy and demo processes on 127.0.0.1 for the sandbox tests; the log rotation helpers are plain files.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from sandbox_helpers import leftovers

from infra.rollout import faults
from infra.sandbox import lifecycle, procs
from infra.sandbox.haproxy import RuntimeApi
from infra.sandbox.state import SandboxState, load, sandbox_dir
from infra.sandbox.target import HaproxyTarget


@pytest.mark.sandbox
def test_end_check_sees_the_stable_server_pointing_at_a_stopped_process(sandbox: SandboxState,
                                                                         project: Path) -> None:
    t = HaproxyTarget(project, None, "web", wait_for_scrape=False)
    assert t.verify_serving(t.current()) == []
    # The D2 outage: journal and state file agree, but the stable server names a port nothing listens on.
    RuntimeApi(Path(sandbox.haproxy_socket)).set_addr("be_web", "stable", procs.free_port())
    problems = t.verify_serving(t.current())
    assert any("server stable points at" in p for p in problems)
    assert any(p.startswith("0/20 sampled requests were served by v1") for p in problems)


def _prepare_killed_after(project: Path, point: str, image: str) -> None:
    pid = os.fork()
    if pid == 0:
        try:
            os.environ[faults.ENV_KILL_POINT] = point
            faults.reset()
            HaproxyTarget(project, None, "web", wait_for_scrape=False).prepare(image)
        finally:
            os._exit(0)
    status = os.waitpid(pid, 0)[1]
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def _demo_pids(project: Path, version: str) -> list[int]:
    st = load(sandbox_dir(project))
    assert st is not None
    return procs.tagged(st.marker, "--version", version)


@pytest.mark.sandbox
def test_kill_between_spawn_and_record_leaves_no_orphan_after_the_next_operation(sandbox: SandboxState,
                                                                                  project: Path) -> None:
    t = HaproxyTarget(project, None, "web", wait_for_scrape=False)
    cp = t.checkpoint()
    _prepare_killed_after(project, "haproxy.canary.prepare.spawned", "demo:v7")
    orphan = _demo_pids(project, "v7")
    st = load(sandbox_dir(project))
    assert st is not None and orphan, "the kill point is after the spawn: the process must exist"
    assert st.services["web"].slots["canary"] is None and st.services["web"].starting  # recorded, not held
    t.revert(cp)  # what `gantry rollout resume` does with the interrupted prepare
    assert _demo_pids(project, "v7") == []
    st = load(sandbox_dir(project))
    assert st is not None and st.services["web"].starting == [] and st.services["web"].retiring == []
    assert t.verify_serving(t.current()) == []


@pytest.mark.sandbox
def test_kill_between_spawn_and_record_leaves_no_orphan_after_down(sandbox: SandboxState, project: Path) -> None:
    _prepare_killed_after(project, "haproxy.canary.prepare.spawned", "demo:v8")
    assert _demo_pids(project, "v8")
    lifecycle.down(project)
    assert leftovers(project) == []


@pytest.mark.sandbox
def test_a_versions_log_is_rotated_when_it_starts_again(sandbox: SandboxState, project: Path) -> None:
    log = sandbox_dir(project) / "app-web-v9.log"
    log.write_bytes(b"x" * lifecycle.LOG_MAX_BYTES)
    HaproxyTarget(project, None, "web", wait_for_scrape=False).prepare("demo:v9")
    rotated = log.with_name("app-web-v9.log.1")
    assert rotated.stat().st_size == lifecycle.LOG_MAX_BYTES
    assert log.stat().st_size < 4096


def test_rotate_keeps_a_bounded_number_of_copies(tmp_path: Path) -> None:
    log = tmp_path / "app-web-v1.log"
    for i in range(5):
        log.write_text(f"run {i}\n" * 10)
        procs.rotate(log, max_bytes=50, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app-web-v1.log.1", "app-web-v1.log.2"]
    assert log.with_name("app-web-v1.log.1").read_text().startswith("run 4")
    assert log.with_name("app-web-v1.log.2").read_text().startswith("run 3")
    small = tmp_path / "small.log"
    small.write_text("tiny")
    procs.rotate(small, max_bytes=50, keep=2)
    assert small.read_text() == "tiny" and not small.with_name("small.log.1").exists()


def test_prune_keeps_running_versions_and_the_newest_stopped_ones(tmp_path: Path) -> None:
    for i in range(12):
        for suffix in (".log", ".log.1"):
            path = tmp_path / f"app-web-v{i}{suffix}"
            path.write_text("x")
            os.utime(path, (1000 + i, 1000 + i))
    (tmp_path / "app-api-v0.log").write_text("other service")
    for i in range(12):  # a service whose name extends "web": its logs are never web's
        (tmp_path / f"app-web-api-v{i}.log").write_text("web-api")
    removed = lifecycle.prune_logs(tmp_path, "web", running={"v0"}, keep=8, services={"web", "web-api", "api"})
    left = {p.name.split(".log")[0].removeprefix("app-web-") for p in tmp_path.glob("app-web-v*")}
    assert left == {"v0"} | {f"v{i}" for i in range(4, 12)}  # running v0, and the 8 newest stopped
    gone = {p.name.split(".log")[0].removeprefix("app-web-") for p in removed}
    assert gone == {"v1", "v2", "v3"} and len(removed) == 6
    assert (tmp_path / "app-api-v0.log").exists()
    assert len(list(tmp_path.glob("app-web-api-v*.log"))) == 12
