"""The whole engine on a real Pulumi stack (local file backend): a promoted canary, then a rolled-back one.

Marker ``engine``: needs the pulumi CLI on PATH (skipped where it is absent, as the suite's conftest says).
Uses the tiny provider-free program and stack of the ``pulumi_project`` fixture (``conftest.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeAnalysis

from components.spec import Strategy
from infra.rollout.clock import FakeClock
from infra.rollout.engine import Engine
from infra.rollout.journal import SqliteJournal, journal_path
from infra.rollout.lock import SqliteLock
from infra.rollout.pulumi_target import PulumiStackTarget
from infra.rollout.scheduler import canary_plan
from infra.rollout.seams import Phase, StackName, Verdict


def routing(target: PulumiStackTarget) -> tuple[object, object, object]:
    out = target.outputs()
    return out["image"], out["canaryImage"], out["canaryWeight"]


@pytest.mark.engine
def test_engine_promotes_then_rolls_back_a_real_stack(pulumi_project: Path) -> None:
    from infra.rollout.pulumi_target import PulumiStackTarget

    def engine(verdicts: list[Verdict]) -> tuple[Engine, PulumiStackTarget]:
        target = PulumiStackTarget("dev", "web", pulumi_project, Strategy.CANARY,
                                   checkpoint_dir=pulumi_project / "checkpoints")
        clock = FakeClock()
        db = journal_path(pulumi_project)
        return Engine(target=target, analysis=FakeAnalysis(verdicts), journal=SqliteJournal(db),
                      lock=SqliteLock(db, clock), clock=clock), target

    plan = canary_plan([10, 50, 100], interval=30.0, threshold=1)
    first, target = engine([Verdict.PASS])
    promoted = first.start(stack=StackName("dev"), service="web", image="ghcr.io/acme/web:1.1", plan=plan)
    assert promoted.phase is Phase.PROMOTED and promoted.verified
    assert routing(target) == ("ghcr.io/acme/web:1.1", None, 0)

    second, target = engine([Verdict.PASS, Verdict.FAIL])
    rolled = second.start(stack=StackName("dev"), service="web", image="ghcr.io/acme/web:1.2", plan=plan)
    assert rolled.phase is Phase.ROLLED_BACK and rolled.verified
    assert routing(target) == ("ghcr.io/acme/web:1.1", None, 0)
    assert second.journal.quarantined(StackName("dev"), "web", "ghcr.io/acme/web:1.2") is not None
