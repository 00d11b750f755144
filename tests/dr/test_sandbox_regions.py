"""Two sandbox regions on real HAProxy and Prometheus: the region fault, scaling, the switch, the drill, kills.

Each test starts its own sandbox on free loopback ports and stops it (no process may outlive a test).
Nothing here compares wall-clock times: the drill's facts (recovered, requests lost after the switch, the
lag check) are asserted; its timings are measured by bench/dr_drill.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sandbox_helpers import leftovers, make_project

from infra.dr import drill
from infra.dr import parts as dr_parts
from infra.dr.engine import Outcome
from infra.rollout import faults
from infra.sandbox import haproxy, lifecycle, procs, regions
from infra.sandbox.state import SandboxState, marker_for, sandbox_dir

pytestmark = pytest.mark.sandbox


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    root = make_project(tmp_path / "p")
    yield root
    lifecycle.down(root)
    assert leftovers(root) == []
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def two(project: Path) -> SandboxState:
    return lifecycle.up(project, regions=2)


def get(url: str) -> int:
    try:
        return httpx.get(url, timeout=1.0).status_code
    except httpx.HTTPError:
        return 0


def served_by(st: SandboxState, backend: str) -> int:
    api = haproxy.RuntimeApi(Path(st.haproxy_socket))
    return sum(s.total_requests for s in api.show_stat() if s.backend == backend)


def standby_processes(project: Path) -> int:
    """Live standby demo processes (each supervised: the supervisor's argv carries the demo's)."""
    marker = marker_for(sandbox_dir(project))
    return len([p for p in procs.tagged(marker, "--region", "standby")
                if "infra.sandbox.demoapp" in procs.cmdline(p)[2:3]])


def wait_for(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.1)
    return False


def test_region_fault_scale_and_switch_on_real_haproxy(project: Path, two: SandboxState) -> None:
    web = two.frontend_url("web")
    assert get(web) == 200 and served_by(two, "be_web_dr") == 0
    assert standby_processes(project) == 2  # warmSize 1, two services
    parts = dr_parts.build(project, "local")
    try:
        target = parts.target
        assert target.probe("primary").healthy and target.probe("standby").healthy
        regions.set_region_fault(project, "primary", True)
        assert not target.probe("primary").healthy
        # HAProxy's own checks take the frozen servers out; until the switch users get errors.
        assert wait_for(lambda: get(web) == 503)
        target.scale(2)
        assert standby_processes(project) == 4
        target.switch("standby")
        assert target.active() == "standby"
        before = served_by(two, "be_web_dr")
        assert [get(web) for _ in range(20)] == [200] * 20
        assert served_by(two, "be_web_dr") - before == 20
        assert (sandbox_dir(project) / "regions.map").read_text() == "api be_api_dr\nweb be_web_dr\n"
        regions.set_region_fault(project, "primary", False)
        assert wait_for(lambda: target.probe("primary").healthy)
        target.switch("primary")
        target.scale(1)
        assert standby_processes(project) == 2
        api = haproxy.RuntimeApi(Path(two.haproxy_socket))
        states = {s.server: s.status for s in api.show_stat() if s.backend == "be_web_dr"}
        assert states["dr1"] == "MAINT" and states["dr0"] in ("UP", "no check")
        assert wait_for(lambda: get(web) == 200)
    finally:
        parts.close()


def test_replication_lag_is_read_from_the_sandbox_prometheus(project: Path, two: SandboxState) -> None:
    parts = dr_parts.build(project, "local")
    try:
        assert wait_for(lambda: parts.target.replication_lag() == 0.5, 20.0)
        regions.set_replication_lag(project, 12.0)
        assert wait_for(lambda: parts.target.replication_lag() == 12.0, 20.0)
    finally:
        parts.close()


def test_a_one_region_sandbox_and_bad_region_faults_are_refused(project: Path) -> None:
    lifecycle.up(project)
    with pytest.raises(procs.SandboxError, match="--regions 2"):
        regions.set_region_fault(project, "primary", True)
    with pytest.raises(procs.SandboxError, match="--regions must be 1 or 2"):
        lifecycle.up(project, regions=3)


def test_down_stops_a_frozen_region(project: Path, two: SandboxState) -> None:
    frozen = regions.set_region_fault(project, "primary", True)
    assert frozen and all(procs.alive(p) for p in frozen)
    lifecycle.down(project)
    assert leftovers(project) == []


def test_the_drill_under_load_recovers_and_loses_nothing_after_the_switch(project: Path, tmp_path: Path) -> None:
    chart_path = tmp_path / "drill.png"
    report = drill.run(project, "local", rate=200, hold=3.0, chart_path=chart_path)
    assert report.failover["result"] == "done" and report.failback is not None
    assert report.failback["result"] == "done"
    assert report.recovered and report.rto_s is not None
    assert report.lost_after_switch == 0
    assert report.lost_during_switch > 0  # the fault was real: requests failed until the switch
    assert report.replication is not None and report.replication["passed"] is True
    marks = report.marks
    assert marks["fault"] < marks["detected"] < marks["switched"] < marks["verified"] < marks["failback"]
    assert report.requests > 0
    assert chart_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(json.dumps(report.as_json(), default=str))
    assert {"detect_s", "switch_s", "rto_s", "lost_during_switch", "lost_after_switch", "replication"} <= set(doc)
    # The drill started the sandbox itself, so it stopped it too.
    assert leftovers(project) == []


def _fork_failover(project: Path, point: str, op: str) -> bool:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.environ[faults.ENV_KILL_POINT] = point
            faults.reset()
            parts = dr_parts.build(project, "local")
            _ = parts.engine.failover() if op == "failover" else parts.engine.failback()
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def _run(project: Path, op: str) -> Outcome:
    parts = dr_parts.build(project, "local")
    try:
        return parts.engine.failover() if op == "failover" else parts.engine.failback()
    finally:
        parts.close()


FAILOVER_POINTS = ("sandbox.dr.scale.desired#1", "sandbox.dr.scale.spawned#1", "sandbox.dr.scale.ready#2",
                   "dr.scale.up#1", "sandbox.dr.switch.map#1", "sandbox.dr.switch.file#1", "dr.switch.up#1")
FAILBACK_POINTS = ("sandbox.dr.switch.map#1", "dr.switch.up#1", "sandbox.dr.scale.maint#1",
                   "sandbox.dr.scale.stopped#1", "dr.scale.up#1")


def test_a_kill_after_each_sandbox_effect_resumes_to_what_users_need(project: Path, two: SandboxState) -> None:
    web = two.frontend_url("web")
    failures: dict[str, str] = {}
    for op, points in (("failover", FAILOVER_POINTS), ("failback", FAILBACK_POINTS)):
        for point in points:
            regions.set_region_fault(project, "primary", True)
            if op == "failback":
                assert _run(project, "failover").result == "done"
                regions.set_region_fault(project, "primary", False)
            if not _fork_failover(project, point, op):
                failures[f"{op} {point}"] = "not killed there"
                continue
            outcome = _run(project, op)
            want_region, want_procs = ("standby", 4) if op == "failover" else ("primary", 2)
            problems = []
            if outcome.result != "done" or not outcome.resumed:
                problems.append(f"{outcome.result} resumed={outcome.resumed}: {outcome.message}")
            if regions.active(project) != want_region:
                problems.append(f"traffic on {regions.active(project)}")
            if standby_processes(project) != want_procs:
                problems.append(f"{standby_processes(project)} standby processes, want {want_procs}")
            if op == "failover" and get(web) != 200:
                problems.append("users get errors after the resumed failover")
            if problems:
                failures[f"{op} {point}"] = "; ".join(problems)
            # Back to the start for the next point.
            regions.set_region_fault(project, "primary", False)
            if op == "failover":
                assert _run(project, "failback").result == "done"
    assert failures == {}


def test_the_cli_fails_over_with_json_events_and_status_follows(project: Path, two: SandboxState) -> None:
    from typer.testing import CliRunner

    from infra.cli import app

    runner = CliRunner()
    args = ["--stack", "local", "--project", str(project)]
    # The standby's lag gauge must have been scraped once, or the check rightly reports "no data".
    parts = dr_parts.build(project, "local")
    try:
        assert wait_for(lambda: parts.target.replication_lag() is not None, 30.0)
    finally:
        parts.close()
    refused = runner.invoke(app, ["dr", "failover", *args, "--json"])
    assert refused.exit_code == 1
    assert json.loads(refused.output.splitlines()[-1])["result"] == "refused"
    regions.set_region_fault(project, "primary", True)
    done = runner.invoke(app, ["dr", "failover", *args, "--json"])
    assert done.exit_code == 0, done.output
    events = [json.loads(line) for line in done.output.splitlines()]
    assert [e["step"] for e in events if e["event"] == "applied"] == [
        "confirm", "scale", "wait", "switch", "verify", "replication", "record"]
    assert events[-1]["event"] == "outcome" and events[-1]["replication"]["status"] == "pass"
    status = runner.invoke(app, ["dr", "status", *args, "--json"])
    doc = json.loads(status.output)
    assert doc["active"] == "standby" and doc["health"]["primary"]["healthy"] is False
    assert status.exit_code == 0  # the active region is healthy
    regions.set_region_fault(project, "primary", False)
    assert wait_for(lambda: runner.invoke(app, ["dr", "failback", *args]).exit_code == 0, 30.0)
    assert regions.active(project) == "primary"
