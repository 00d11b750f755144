"""SIGKILL at every step boundary, then resume: no journal entry lost, the target matches the journal.

The drills fork a real engine process that kills itself with SIGKILL just before or just after each of its
journal appends, for canary and blue/green, promoting and rolling back; the CLI tests do the same to a
real `gantry rollout start` subprocess through GANTRY_DRILL_KILL_AT, and once from outside mid-wait.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import drill_cli
import pytest
from drills import SCENARIOS, Scenario, reference_appends, run_point
from fakes import JsonFileTarget

from infra.rollout.entries import read
from infra.rollout.journal import EntryKind, SqliteJournal, journal_path
from infra.rollout.scheduler import mismatches, replay
from infra.rollout.seams import Phase

GANTRY = drill_cli.GANTRY  # the real CLI, with the test-only file target and kill hook
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def drill_dir(tmp_path: Path) -> Iterator[Path]:
    """tmpfs when there is one: SIGKILL kills the process, not the page cache, so what survives is the same,
    and the drills skip ~300 fsyncs each (bench/rollout_kill.py and the CLI tests below run on disk)."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir=shm, prefix="gantry-drill-") as d:
        yield Path(d)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_kill_at_every_boundary_then_resume(drill_dir: Path, scenario: Scenario) -> None:
    tmp_path = drill_dir
    total = reference_appends(tmp_path / "reference", scenario)
    results = [run_point(tmp_path / f"{when}-{n}", scenario, when, n)
               for n in range(1, total + 1) for when in ("before", "after")]
    assert all(r.killed for r in results), [r.point for r in results if not r.killed]
    bad = [(r.point, r.problems) for r in results if not r.consistent]
    assert bad == []
    assert len(results) == 2 * total
    # Resumes that could prove the state continued the rollout; a healthy one is never rolled back
    # unless the kill left an effect ambiguous.
    if scenario.expected is Phase.PROMOTED:
        assert any(r.final_phase is Phase.PROMOTED for r in results)
    else:
        assert all(r.final_phase is not Phase.PROMOTED for r in results)


def _project(tmp: Path, interval: str = "0s") -> Path:
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
    steps: [10, 50, 100]
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
                          cwd=REPO, env={**os.environ, **(env or {})}, timeout=120, check=False)


def _check_consistent(project: Path) -> Phase:
    journal = SqliteJournal(journal_path(project))
    rid = journal.history()[0].id
    state = replay(read(journal, rid))
    live = JsonFileTarget(project / ".gantry" / "targets" / "drill-web.json").current()
    assert state.phase.terminal
    assert mismatches(state, live) == []
    assert [e.data["ok"] for e in journal.entries(rid) if e.kind is EntryKind.VERIFIED] == [True]
    return state.phase


@pytest.mark.parametrize("point", ["after:5", "after:7"], ids=["intent-without-outcome", "analysis-without-decision"])
def test_cli_killed_at_a_boundary_resumes_consistently(tmp_path: Path, point: str) -> None:
    project = _project(tmp_path)
    killed = _gantry(project, "rollout", "start", "--stack", "drill", "--service", "web", "--image", "app:2.0",
                     "--json", env={"GANTRY_DRILL_KILL_AT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    journal = SqliteJournal(journal_path(project))
    rid = journal.history()[0].id
    n = int(point.split(":")[1])
    survived = journal.entries(rid)
    assert len(survived) == (n if point.startswith("after") else n - 1)
    lines = [json.loads(line) for line in killed.stdout.splitlines()]
    printed = [line["seq"] for line in lines]
    assert printed == [e.seq for e in survived][:len(printed)], "every printed event was journaled first"
    resumed = _gantry(project, "rollout", "resume", rid, "--json")
    assert resumed.returncode in (0, 1), resumed.stderr
    assert journal.entries(rid)[:len(survived)] == survived
    phase = _check_consistent(project)
    assert resumed.returncode == (0 if phase is Phase.PROMOTED else 1)


def test_cli_killed_from_outside_during_a_wait_resumes_consistently(tmp_path: Path) -> None:
    project = _project(tmp_path, interval="1s")
    proc = subprocess.Popen([*GANTRY, "rollout", "start", "--stack", "drill", "--service", "web", "--image",
                             "app:2.0", "--json", "--project", str(project)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # wait until the first weight is live, then kill mid-wait
            if json.loads(line)["event"] == "applied" and json.loads(line)["data"].get("action") == "set_weight":
                break
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    rid = SqliteJournal(journal_path(project)).history()[0].id
    resumed = _gantry(project, "rollout", "resume", rid, "--json")
    # Killed mid-wait it promotes; on a stalled machine the kill may land inside an `up` instead, which is
    # ambiguous and rolls back. Either way the journal and the target must agree.
    assert resumed.returncode in (0, 1), resumed.stderr
    phase = _check_consistent(project)
    assert resumed.returncode == (0 if phase is Phase.PROMOTED else 1)
