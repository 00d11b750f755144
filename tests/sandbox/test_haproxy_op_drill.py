"""HaproxyTarget's in-operation drill: SIGKILL the real `gantry rollout start` after every effect, resume, check users.

A real sandbox (HAProxy, Prometheus, demo processes on 127.0.0.1) and two drill stacks (every analysis
passes, or fails). For every point a reference run traced, the CLI is started with that point armed, dies
there, `gantry rollout resume` runs, and the drill checks independently what users see: sampled requests
through HAProxy all served by the journal's stable version, servers' addresses and weights against the
state file, and no demo process left that no slot holds. Points shared by two scenarios of a strategy
(``prepare``, the first ``set-weights``) are tried once here; bench/rollout_kill.py tries them all.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from drills import SANDBOX_SCENARIOS, SandboxDrill, run_sandbox_drill
from sandbox_helpers import leftovers

from components.spec import Strategy

pytestmark = pytest.mark.sandbox


@pytest.mark.parametrize("strategy", [Strategy.CANARY, Strategy.BLUEGREEN])
def test_every_point_inside_every_haproxy_operation_resumes_serving(tmp_path: Path, strategy: Strategy) -> None:
    drill = SandboxDrill(tmp_path / "proj")
    drill.setup()
    try:
        results = run_sandbox_drill(drill, [s for s in SANDBOX_SCENARIOS if s.strategy is strategy], dedupe=True)
    finally:
        drill.teardown()
    assert leftovers(drill.project) == []
    bad = [(r.scenario, r.point, r.problems) for r in results if not r.consistent]
    assert bad == []
    assert all(r.killed for r in results)
    covered = {r.point.split(".")[2] for r in results}
    if strategy is Strategy.CANARY:
        assert covered == {"prepare", "set-weights", "promote", "revert"}
    else:
        assert covered == {"prepare", "switch", "promote", "revert"}
    assert len(results) >= 30
