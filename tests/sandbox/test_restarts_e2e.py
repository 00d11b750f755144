"""A crash-looping canary on the sandbox is rolled back for its restarts, counted by the demo's supervisor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sandbox_helpers import REPO

from infra.sandbox.haproxy import RuntimeApi
from infra.sandbox.loadgen import LoadGenerator
from infra.sandbox.state import SandboxState
from infra.sandbox.supervisor import read_count

pytestmark = pytest.mark.sandbox


def gantry(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], cwd=project, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_crash_after_n_requests_rolls_back_with_reason_restarts(sandbox: SandboxState, project: Path) -> None:
    # v7 exits after every 30 requests it serves; the supervisor restarts it, as a kubelet would, and HAProxy's
    # health check brings it back, so its restart count climbs while it still serves enough to be judged.
    fault = gantry(project, "sandbox", "fault", "v7", "--crash-after", "30")
    assert fault.returncode == 0, fault.stderr
    with LoadGenerator(sandbox.frontend_url("web"), rate_rps=200, max_seconds=90):
        res = gantry(project, "rollout", "start", "--stack", "local", "--service", "web", "--image", "demo:v7",
                     "--steps", "50,100", "--interval", "20s", "--json")
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-2000:]
    lines = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    end = [e for e in lines if e.get("event") == "outcome"][-1]
    assert end["phase"] == "rolled_back" and end["verified"] is True
    assert "restarts" in str(end["reason"]), end["reason"]
    failing = [c for e in lines if e.get("event") == "analysis"
               for c in e["data"]["checks"] if c["verdict"] == "fail"]
    assert any(c["name"] == "restarts" and c["value"] > 5 for c in failing), failing
    # The supervisor's own count agrees with what the gate saw.
    assert (read_count(Path(sandbox.directory) / "app-web-v7.restarts") or 0) > 5
    assert RuntimeApi(Path(sandbox.haproxy_socket)).weights("be_web") == {"stable": 100, "canary": 0}
