"""Sandbox lifecycle against real HAProxy, Prometheus and demo processes: up, status, fault, down, crashes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sandbox_helpers import REPO, leftovers

from infra.sandbox import lifecycle, procs, prometheus
from infra.sandbox.haproxy import RuntimeApi
from infra.sandbox.loadgen import LoadGenerator
from infra.sandbox.settings import FaultSpec
from infra.sandbox.state import SandboxState, load, sandbox_dir

pytestmark = pytest.mark.sandbox


def gantry(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=60)


def test_up_serves_v1_through_haproxy_and_prometheus_scrapes_it(sandbox: SandboxState, project: Path) -> None:
    status = lifecycle.status(project)
    assert status.up
    assert {p.name for p in status.parts} == {"haproxy", "prometheus", "web/stable", "api/blue"}
    assert status.weights == {"web": {"stable": 100, "canary": 0}, "api": {"blue": 100, "green": 0}}
    for name in ("web", "api"):
        resp = httpx.get(sandbox.frontend_url(name) + "/")
        assert (resp.status_code, resp.headers["X-Version"]) == (200, "v1")
    # Every part binds loopback only.
    cfg = (sandbox_dir(project) / "haproxy.cfg").read_text()
    binds = [ln.split()[1] for ln in cfg.splitlines() if ln.strip().startswith("bind")]
    assert binds and all(b.startswith("127.0.0.1:") for b in binds)
    assert lifecycle.wait_scraped(sandbox, "v1", timeout=15)
    # HAProxy's own exporter is scraped too (this build has it).
    deadline = time.monotonic() + 10
    up = None
    while time.monotonic() < deadline and not up:
        up = prometheus.instant(sandbox.prometheus_url, 'up{job="haproxy"}')
        time.sleep(0.3)
    assert up == 1.0


def test_second_up_is_refused_while_running(sandbox: SandboxState, project: Path) -> None:
    with pytest.raises(procs.SandboxError, match="already up"):
        lifecycle.up(project)


def test_fault_applies_live_and_prometheus_counts_the_errors(sandbox: SandboxState, project: Path) -> None:
    assert lifecycle.set_fault(project, "v1", FaultSpec(error_rate=0.5)) is True
    with LoadGenerator(sandbox.frontend_url("web"), rate_rps=100, max_requests=200, max_seconds=5) as load:
        time.sleep(2.5)
    stats = load.window(0)
    assert stats.requests == 200
    assert 0.3 < stats.error_rate < 0.7
    state = load_state(project)
    assert state.faults["v1"].error_rate == 0.5
    # Prometheus's own numbers agree that v1 answered 500s.
    deadline = time.monotonic() + 10
    errors = None
    while time.monotonic() < deadline:
        errors = prometheus.instant(
            sandbox.prometheus_url, 'sum(http_requests_total{version="v1",status="500"})')
        if errors and errors > 40:
            break
        time.sleep(0.3)
    assert errors is not None and errors > 40


def load_state(project: Path) -> SandboxState:
    st = load(sandbox_dir(project))
    assert st is not None
    return st


def test_down_stops_everything_even_after_a_crash_lost_the_state(sandbox: SandboxState, project: Path) -> None:
    pids = [sandbox.haproxy_pid, sandbox.prometheus_pid]
    pids += [s.pid for svc in sandbox.services.values() for s in svc.slots.values() if s is not None]
    assert all(procs.alive(p) for p in pids)
    # A crash between spawning and saving: no state file and no pid files; the sweep still finds them.
    (sandbox_dir(project) / "state.json").unlink()
    for pidfile in sandbox_dir(project).glob("*.pid"):
        pidfile.unlink()
    stopped = lifecycle.down(project)
    # Every recorded process was found by the sweep (demo supervisors' children carry the marker too).
    assert {f"stray pid {p}" for p in pids} <= set(stopped)
    assert not any(procs.alive(p) for p in pids)
    assert leftovers(project) == []


def test_down_never_signals_a_recycled_pid(project: Path) -> None:
    # A stale pid file naming an unrelated live process (pid reuse): down must leave it alone.
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        d = sandbox_dir(project)
        d.mkdir(parents=True, exist_ok=True)
        (d / "haproxy.pid").write_text(f"{stranger.pid}\n")
        lifecycle.down(project)
        assert stranger.poll() is None
        assert not (d / "haproxy.pid").exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_crashed_version_is_taken_out_of_rotation(sandbox: SandboxState, project: Path) -> None:
    stable = sandbox.services["web"].slots["stable"]
    assert stable is not None
    os.kill(stable.pid, signal.SIGKILL)
    api = RuntimeApi(Path(sandbox.haproxy_socket))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        row = next(s for s in api.show_stat() if s.backend == "be_web" and s.server == "stable")
        if row.status.startswith("DOWN"):
            break
        time.sleep(0.1)
    assert row.status.startswith("DOWN")
    assert lifecycle.status(project).up is False


def test_cli_up_status_fault_down(project: Path) -> None:
    up = gantry("sandbox", "up", "--json", cwd=project)
    assert up.returncode == 0, up.stderr
    doc = json.loads(up.stdout)
    assert set(doc["frontends"]) == {"web", "api"}
    status = gantry("sandbox", "status", "--json", cwd=project)
    assert status.returncode == 0
    assert json.loads(status.stdout)["weights"]["web"] == {"stable": 100, "canary": 0}
    bad = gantry("sandbox", "fault", "v1", "--error-rate", "1.5", cwd=project)
    assert bad.returncode == 2
    assert "--error-rate must be" in bad.stderr and "1.5" in bad.stderr and "Traceback" not in bad.stderr
    ok = gantry("sandbox", "fault", "v1", "--latency-ms", "50", cwd=project)
    assert ok.returncode == 0 and "applied to the running process" in ok.stdout
    resp = httpx.get(doc["frontends"]["web"] + "/")
    assert resp.elapsed.total_seconds() >= 0.05
    down = gantry("sandbox", "down", cwd=project)
    assert down.returncode == 0
    assert leftovers(project) == []
    after = gantry("sandbox", "status", cwd=project)
    assert after.returncode == 1 and "down" in after.stdout


def test_missing_binary_is_one_line_with_the_install_command(project: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    # PATH without haproxy, and the well-known locations hidden: the CLI must say how to install it.
    code = ("import infra.sandbox.procs as p; p._SEARCH.clear(); import sys; sys.argv=['gantry','sandbox','up'];"
            "from infra.cli import main; main()")
    res = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO), "PATH": str(empty)}, timeout=60)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert lines == ["error: haproxy is not installed; install it with: sudo apt-get install -y haproxy"]
    assert leftovers(project) == []
