"""The reliability issue's crash drill and multi-process stress test, run against DynamoDB and S3 (moto).

The same code as the SQLite runs (``tests/rollout/drills.py``, ``tests/rollout/stress.py``), pointed at a
``dynamodb://`` state URL on a moto server started on 127.0.0.1 for this module: a SIGKILL before and
after every journal write of every scenario, then a resume; and eight processes (engines, operators,
readers) on one table while writers are SIGKILLed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from drills import SCENARIOS, Scenario, reference_appends, run_point
from moto_state import Moto, aws_env, moto_server
from stress import run

from infra.rollout.seams import Phase


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as server, aws_env(server):
        yield server


# One scenario per strategy on DynamoDB (about 5 minutes each on a 2-core machine), to keep CI inside its
# time budget; the SQLite drills run all four.
DYNAMODB_SCENARIOS = [s for s in SCENARIOS if s.name in ("canary-bad-at-50", "bluegreen-healthy")]


@pytest.mark.parametrize("scenario", DYNAMODB_SCENARIOS, ids=[s.name for s in DYNAMODB_SCENARIOS])
def test_kill_at_every_boundary_then_resume_on_dynamodb(tmp_path: Path, moto: Moto, scenario: Scenario) -> None:
    state = moto.state_url()
    total = reference_appends(tmp_path / "reference", scenario, state)
    results = [run_point(tmp_path / f"{when}-{n}", scenario, when, n, state)
               for n in range(1, total + 1) for when in ("before", "after")]
    assert all(r.killed for r in results), [r.point for r in results if not r.killed]
    bad = [(r.point, r.problems) for r in results if not r.consistent]
    assert bad == []
    assert len(results) == 2 * total and total >= 10
    if scenario.expected is Phase.PROMOTED:
        assert any(r.final_phase is Phase.PROMOTED for r in results)
    else:
        assert all(r.final_phase is not Phase.PROMOTED for r in results)


def test_eight_processes_with_kills_on_dynamodb_lose_nothing_and_honour_every_abort(tmp_path: Path,
                                                                                      moto: Moto) -> None:
    result = run(tmp_path / "run", engines=3, operators=3, readers=2, min_operations=1000, min_kills=10,
                 max_seconds=300.0, kill_gap=(0.5, 1.5), seed=20, state=moto.state_url())
    assert result.problems == []
    assert result.processes >= 8
    assert result.operations >= 1000
    assert result.kills >= 10
    assert result.integrity == "ok"
    assert result.lost_writes == 0
    assert result.aborts_not_honoured == 0
    assert set(result.operator_acknowledged) == {"pause", "resume", "abort"}
    assert result.aborts_acknowledged >= 1 and result.phases.get("rolled_back", 0) >= 1
    assert result.writes_acknowledged >= 100 and result.reads >= 100
    assert result.unverified == 0
