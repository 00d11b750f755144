"""The engine-driven sandbox (stack local-engine) with the real Pulumi CLI: every step is a real ``pulumi up``.

Marker ``engine`` (skipped where ``pulumi`` is not on PATH) and ``sandbox`` (real HAProxy, Prometheus and
demo processes on 127.0.0.1). ``gantry`` and ``pulumi`` run as separate processes. Every outcome is checked
three ways: HAProxy's runtime API (what serves traffic), the stack's outputs and state (what Pulumi
recorded) and the journal (what gantry decided), which must all agree.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from engine_rig import STACK, EngineProject, events
from sandbox_helpers import leftovers

from infra.sandbox import procs
from infra.sandbox.loadgen import LoadGenerator

pytestmark = [pytest.mark.engine, pytest.mark.sandbox]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[EngineProject]:
    project = EngineProject.create(tmp_path)
    yield project
    project.close()
    assert leftovers(project.root) == []
    assert [p for p in project.plugin_pids() if procs.alive(p)] == []


def served(rig: EngineProject, n: int = 60) -> Counter[str]:
    url = rig.sandbox().frontend_url("web")
    with httpx.Client(timeout=5.0) as client:
        return Counter(client.get(url + "/").headers["X-Version"] for _ in range(n))


def outcome(text: str) -> dict[str, object]:
    found = [e for e in events(text) if e.get("event") == "outcome"]
    assert found, f"no outcome in: {text[-3000:]}"
    return found[-1]


def rollout_id(text: str) -> str:
    return str(next(e["rollout"] for e in events(text) if "rollout" in e))


def wait_for(predicate: object, timeout: float, what: str, poll: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def applied_step(path: Path, step: int) -> bool:
    return any(e.get("event") == "applied" and isinstance(e.get("data"), dict)
               and e["data"].get("action") == "set_weight" and e["data"].get("step") == step  # type: ignore[attr-defined]
               for e in events(path.read_text(errors="replace")))


def assert_stable(rig: EngineProject, image: str) -> None:
    """HAProxy, the stack's outputs and the state agree that ``image`` serves everything, with nothing pending."""
    version = image.split(":")[1]
    assert rig.haproxy_weights() == {"stable": 100, "canary": 0}
    assert set(served(rig)) == {version}
    out = rig.outputs()
    web = out["services"]["web"]  # type: ignore[index]
    assert (web["image"], web["canaryImage"], web["canaryWeight"]) == (image, None, 0)
    routing = out["routing"]["web"]  # type: ignore[index]
    assert routing["weights"] == rig.haproxy_weights()
    assert routing["addresses"] == {"stable": rig.haproxy_addresses()["stable"]}
    sandbox = rig.sandbox().services["web"]
    assert sandbox.slots["canary"] is None and sandbox.slots["stable"] is not None
    assert sandbox.slots["stable"].image == image
    deployment = rig.deployment()
    assert not deployment.get("pending_operations") and rig.lock_files() == []


def test_healthy_canary_promoted_then_faulty_one_rolled_back(rig: EngineProject) -> None:
    before = len(rig.history())
    with LoadGenerator(rig.sandbox().frontend_url("web"), rate_rps=200, max_seconds=400):
        done = rig.gantry("rollout", "start", "--stack", STACK, "--service", "web", "--image", "demo:v2", "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = outcome(done.stdout)
    assert (result["phase"], result["verified"]) == ("promoted", True)
    assert_stable(rig, "demo:v2")
    # Each step was a real update: prepare, 10/50/100, promote.
    ups = [h for h in rig.history()[: len(rig.history()) - before]]
    messages = sorted(str(h.get("message")) for h in ups)
    assert len(ups) == 5 and all(m.startswith("gantry rollout: ") for m in messages), messages
    assert all(h.get("result") == "succeeded" for h in ups)

    with LoadGenerator(rig.sandbox().frontend_url("web"), rate_rps=200, max_seconds=400):
        done = rig.gantry("rollout", "start", "--stack", STACK, "--service", "web", "--image", "demo:v3", "--json")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    result = outcome(done.stdout)
    assert (result["phase"], result["verified"]) == ("rolled_back", True)
    decisions = [e["data"] for e in events(done.stdout) if e.get("event") == "decision"]
    assert decisions[-1]["decision"] == "rollback"  # type: ignore[index]
    assert_stable(rig, "demo:v2")
    # The rollout never wrote the stack file.
    assert "canaryImage" not in (rig.root / "stacks" / f"Pulumi.{STACK}.yaml").read_text()
    assert "demo:v3" not in {s.image for s in rig.sandbox().services["web"].slots.values() if s}


def test_sigkill_during_an_up_then_resume_clears_pending_operations(rig: EngineProject, tmp_path: Path) -> None:
    out = tmp_path / "gantry.out"
    with LoadGenerator(rig.sandbox().frontend_url("web"), rate_rps=200, max_seconds=400):
        proc = rig.gantry_bg("rollout", "start", "--stack", STACK, "--service", "web", "--image", "demo:v2",
                             "--json", out=out)
        try:
            # The engine persists a pending operation the moment a resource operation starts: kill then.
            wait_for(lambda: rig.pending_in_checkpoint(), 180, "a resource operation in flight")
            os.killpg(proc.pid, signal.SIGKILL)  # gantry and its `pulumi up` (the plugins run in their own groups)
        finally:
            proc.wait(timeout=30)
        rid = rollout_id(out.read_text())
        pending = rig.deployment().get("pending_operations")
        assert pending, "the killed update must leave pending operations"
        assert rig.lock_files(), "and its lock"

        done = rig.gantry("rollout", "resume", rid, "--json")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    result = outcome(done.stdout)
    assert (result["phase"], result["verified"]) == ("rolled_back", True)
    assert "cancelled the stale lock" in done.stderr and "pending operation(s)" in done.stderr
    assert_stable(rig, "demo:v1")


def test_an_outside_up_during_the_rollout_exits_3_and_is_never_cancelled(rig: EngineProject, tmp_path: Path
                                                                         ) -> None:
    out = tmp_path / "gantry.out"
    with LoadGenerator(rig.sandbox().frontend_url("web"), rate_rps=200, max_seconds=400):
        proc = rig.gantry_bg("rollout", "start", "--stack", STACK, "--service", "web", "--image", "demo:v2",
                             "--interval", "20s", "--json", out=out)
        outside = None
        try:
            wait_for(lambda: applied_step(out, 0), 240, "step 0 applied")
            # Someone runs `pulumi up` on the same stack by hand, as the same user on the same machine;
            # it is frozen while it holds the stack's lock, so the rollout's next up meets it.
            with open(tmp_path / "outside.out", "wb") as log:
                outside = subprocess.Popen(
                    ["pulumi", "up", "--yes", "--skip-preview", "--stack", STACK, "--non-interactive"],
                    cwd=rig.root, env=rig.env, stdout=log, stderr=subprocess.STDOUT)
            wait_for(lambda: rig.lock_files(), 60, "the outside update's lock")
            os.kill(outside.pid, signal.SIGSTOP)
            (lock,) = rig.lock_files()
            assert json.loads(lock.read_text())["pid"] == outside.pid
            assert proc.wait(timeout=240) == 3, out.read_text()[-3000:]
            text = out.read_text()
            assert f"pid {outside.pid}" in text and "locked" in text
            # Never cancelled: the very same lock file, still naming the outside update.
            assert rig.lock_files() == [lock] and json.loads(lock.read_text())["pid"] == outside.pid
        finally:
            if outside is not None:
                os.kill(outside.pid, signal.SIGCONT)
                assert outside.wait(timeout=300) == 0, (tmp_path / "outside.out").read_text()[-2000:]
            if proc.poll() is None:
                proc.kill()
        # Once the outside update is over, resume finishes the rollback.
        done = rig.gantry("rollout", "resume", rollout_id(text), "--json")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert outcome(done.stdout)["verified"] is True
    assert_stable(rig, "demo:v1")


def test_program_failing_on_up_ends_in_exit_4_with_recovery_commands(rig: EngineProject, tmp_path: Path) -> None:
    out = tmp_path / "gantry.out"
    with LoadGenerator(rig.sandbox().frontend_url("web"), rate_rps=200, max_seconds=400):
        proc = rig.gantry_bg("rollout", "start", "--stack", STACK, "--service", "web", "--image", "demo:v2",
                             "--interval", "10s", "--json", out=out)
        try:
            wait_for(lambda: applied_step(out, 0), 240, "step 0 applied")
            # A broken program lands mid-rollout: every later `up`, the rollback's included, fails.
            (rig.root / "program" / "__main__.py").write_text('raise RuntimeError("the program is broken")\n')
            assert proc.wait(timeout=400) == 4, out.read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
    text = out.read_text()
    result = outcome(text)
    assert result["phase"] == "failed"
    assert "the program is broken" in text
    for command in (f"pulumi stack export --stack {STACK}", f"pulumi refresh --stack {STACK} --yes",
                    "GANTRY_ROLLOUT_STEP=",
                    f"pulumi up --stack {STACK} --yes"):
        assert command in text, command
    # Failed, not half-recovered: no lock or pending operation is left, and traffic still flows.
    assert rig.lock_files() == [] and not rig.deployment().get("pending_operations")
    assert sum(rig.haproxy_weights().values()) == 100 and set(served(rig)) <= {"v1", "v2"}
