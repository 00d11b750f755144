"""`gantry sandbox demo`: all five acts end as expected on real HAProxy and Prometheus, with a report and chart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sandbox_helpers import REPO, leftovers

pytestmark = pytest.mark.sandbox


def test_demo_runs_every_act_as_expected_and_leaves_nothing_behind(tmp_path: Path) -> None:
    project = tmp_path / "fresh"  # no stacks/ at all: the demo brings the shipped local stack
    project.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO),
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    for ci in ("GITHUB_SHA", "CI_COMMIT_SHA", "CI_COMMIT_TIMESTAMP"):
        env.pop(ci, None)  # the demo's rollouts must not claim the CI's commit
    try:
        res = subprocess.run([sys.executable, "-m", "infra.cli", "sandbox", "demo", "--json"], cwd=project,
                             env=env, capture_output=True, text=True, timeout=240)
        lines = [json.loads(ln) for ln in res.stdout.splitlines() if ln.startswith("{")]
        acts, summary = lines[:-1], lines[-1]
        assert [a["number"] for a in acts] == [1, 2, 3, 4, 5], res.stderr[-2000:]
        outcomes = {a["number"]: (a["outcome"], a["ok"]) for a in acts}
        assert outcomes == {1: ("up", True), 2: ("promoted", True), 3: ("rolled_back", True),
                            4: ("promoted", True), 5: ("stopped", True)}, json.dumps(acts, indent=1)
        assert "now serving {'v2'" in acts[2]["detail"]  # act 3: traffic went back to v2
        assert summary["ok"] is True and res.returncode == 0
        report = Path(summary["report"])
        html = report.read_text()
        assert "data:image/png;base64," in html and "<script" not in html and "http://" not in html.split("<img")[1]
        assert Path(summary["chart"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        # It ends with the KPIs of its own three rollouts: v2 and v4 promoted, v3 rolled back after failing.
        kpis = summary["kpis"]
        assert kpis["deployment_success_rate"]["value"] == 2 / 3
        assert kpis["rollback_rate"]["value"] == kpis["change_failure_rate"]["value"] == 1 / 3
        assert kpis["rollback_success_rate"] == {"value": 1.0, "met": True}
        assert kpis["mttr"]["value"] is not None and kpis["mttr"]["value"] > 0
        assert kpis["zero_downtime"]["value"] is not None  # the analyses read the stable version's counts
        assert kpis["lead_time"]["value"] is None  # a fresh directory is no git repository: no commit time
        assert (project / ".gantry" / "demo" / "kpis.md").read_text().startswith("# Delivery KPIs")
    finally:
        subprocess.run([sys.executable, "-m", "infra.cli", "sandbox", "down"], cwd=project, env=env,
                       capture_output=True, timeout=60)
    assert leftovers(project) == []
