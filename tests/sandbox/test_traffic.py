"""`gantry sandbox up` sends steady traffic (supervised generators), `sandbox load` changes or stops it, `down` stops
only the processes the sandbox started. Real HAProxy, Prometheus and generators on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sandbox_helpers import REPO, leftovers

from infra.sandbox import procs
from infra.sandbox.state import sandbox_dir

pytestmark = pytest.mark.sandbox


def gantry(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "infra.cli", *args, "--project", str(project)], env=env,
                          capture_output=True, text=True, timeout=120)


def load_status(project: Path) -> dict[str, dict[str, object]]:
    res = gantry(project, "sandbox", "status", "--json")
    return dict(json.loads(res.stdout)["load"])


def wait_requests(project: Path, above: int, timeout: float = 15.0) -> dict[str, dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        load = load_status(project)
        if (load and all(int(str(g["requests"])) > above for g in load.values())) or time.monotonic() > deadline:
            return load
        time.sleep(0.3)


def test_up_loads_every_service_load_changes_the_rate_and_down_stops_only_ours(project: Path) -> None:
    res = gantry(project, "sandbox", "up")
    assert res.returncode == 0, res.stderr
    assert "200 req/s per service" in res.stdout
    load = wait_requests(project, 50)
    assert set(load) == {"web", "api"}
    assert all(g["running"] and g["rps"] == 200 and g["failed"] == 0 for g in load.values()), load
    old_pids = {g["pid"] for g in load.values()}

    # Supervised: a generator killed outright is restarted, and its traffic resumes.
    marker = str(sandbox_dir(project)) + "/"
    supervisor = int(str(load["web"]["pid"]))
    child = next(p for p in procs.tagged(marker, "--service", "web") if p != supervisor)
    os.kill(child, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while not [p for p in procs.tagged(marker, "--service", "web") if p not in (supervisor, child)]:
        assert time.monotonic() < deadline, "the killed generator was not restarted"
        time.sleep(0.1)
    killed_at = time.time()
    status_file = sandbox_dir(project) / "load-web.json"
    while True:  # the new generator reports, with requests it sent itself (its counters start at 0)
        doc = json.loads(status_file.read_text())
        if doc["updated"] > killed_at + 1.0 and doc["requests"] > 0:
            break
        assert time.monotonic() < deadline + 10, doc
        time.sleep(0.2)
    assert load_status(project)["web"]["running"]
    res = gantry(project, "sandbox", "load", "--rps", "20")
    assert res.returncode == 0, res.stderr
    load = wait_requests(project, 5)
    assert all(g["running"] and g["rps"] == 20 for g in load.values()), load
    assert not old_pids & {g["pid"] for g in load.values()}, "the old generators were replaced"
    assert not any(procs.alive(int(str(p))) and procs.is_ours(int(str(p)), str(sandbox_dir(project)))
                   for p in old_pids)
    human = gantry(project, "sandbox", "status").stdout
    assert "load/web" in human and "load: 20 req/s per service" in human

    # A pid file naming a process the sandbox did not start (pid reuse, a hostile edit) is never signalled.
    decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        gantry(project, "sandbox", "load", "--stop")
        (sandbox_dir(project) / "load-web.pid").write_text(f"{decoy.pid}\n")
        res = gantry(project, "sandbox", "down")
        assert res.returncode == 0, res.stderr
        assert decoy.poll() is None, "down must not stop a process it did not start"
        assert leftovers(project) == []
    finally:
        decoy.kill()
        decoy.wait()


def test_no_load_and_bad_rates(project: Path) -> None:
    res = gantry(project, "sandbox", "up", "--no-load")
    assert res.returncode == 0, res.stderr
    assert load_status(project) == {}
    for args, word in ((("--rps", "0"),  "--rps"), (("--rps", "nan"), "--rps"), (("--rps", "3000"), "--rps"),
                       ((), "exactly one"), (("--rps", "5", "--stop"), "exactly one")):
        res = gantry(project, "sandbox", "load", *args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert word in res.stderr and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert load_status(project) == {}
