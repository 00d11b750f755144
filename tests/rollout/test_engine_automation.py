"""The engine driving part B's PulumiStackTarget over the faithful fake Automation API workspace.

Every failure comes out of the real ``pulumi.automation.errors`` classes, translated at the edge; the
engine must roll back on a failed step `up`, recover an interrupted one, and end FAILED (exit 4) with
the checkpoint file and recovery commands when the rollback's own `up` fails twice. Secrets in the
stack's config never reach the journal.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from pathlib import Path

import pytest
from fake_automation import FakeStack, FakeWorkspace, services_program
from fakes import FakeAnalysis
from rollout_rig import make_plan, make_rig

from components.spec import Strategy
from infra.errors import ExitCode
from infra.rollout.errors import StackLocked
from infra.rollout.journal import EntryKind
from infra.rollout.pulumi_target import PulumiStackTarget
from infra.rollout.seams import AnalysisContext, AnalysisResult, Phase, Verdict

SECRET = "hunter2-db-password"


@pytest.fixture
def stack() -> FakeStack:
    services = {
        "web": {"namespace": "web", "image": "ghcr.io/acme/web:1.0", "strategy": "canary", "canaryWeight": 0},
        "api": {"namespace": "api", "image": "ghcr.io/acme/api:2.0", "strategy": "bluegreen",
                "activeColor": "blue"},
    }
    # Updates run as this user on this host, as they would from the pipeline running gantry: a lock an
    # interrupted step `up` leaves behind is then recognisably ours.
    return FakeStack("dev", config={"aws:region": "us-east-1", "gantry:services": services,
                                    "gantry:dbPassword": SECRET},
                     secret_keys={"gantry:dbPassword"}, program=services_program, user=getpass.getuser(),
                     host=socket.gethostname())


def _web(stack: FakeStack, service: str = "web") -> dict[str, object]:
    """The service as the stack's outputs show it (the rollout writes no stack config)."""
    services = stack.stack_outputs["services"]
    assert isinstance(services, dict)
    block = services[service]
    assert isinstance(block, dict)
    return block


class FailNextUpAt:
    """Passes every step; when step ``k`` is analysed, scripts the stack's next `up` to fail."""

    def __init__(self, stack: FakeStack, k: int, **fail: object) -> None:
        self.stack, self.k, self.fail = stack, k, fail

    def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        if ctx.step_index == self.k:
            self.stack.fail("up", **self.fail)
        return AnalysisResult(Verdict.PASS, ())


def _rig(tmp_path: Path, stack: FakeStack, analysis: object, strategy: Strategy = Strategy.CANARY,
         service: str = "web"):
    ws = FakeWorkspace()
    ws.add(stack)
    target = PulumiStackTarget("dev", service, tmp_path, strategy, stack_factory=ws.factory,
                               checkpoint_dir=tmp_path / "checkpoints")
    return make_rig(tmp_path, strategy=strategy, target=target, analysis=analysis,
                    plan=make_plan(strategy, weights=(10, 50, 100)))


def _journal_text(rig: object, rid: str) -> str:
    return json.dumps([e.as_json() for e in rig.entries(rid)])


def test_healthy_canary_is_promoted_through_ups_alone(tmp_path: Path, stack: FakeStack) -> None:
    rig = _rig(tmp_path, stack, FakeAnalysis())
    original = json.loads(json.dumps(stack.config))
    outcome = rig.engine.start(stack="dev", service="web", image="ghcr.io/acme/web:1.1", plan=rig.plan)
    assert outcome.phase is Phase.PROMOTED and outcome.verified
    assert _web(stack)["image"] == "ghcr.io/acme/web:1.1" and _web(stack)["canaryWeight"] == 0
    assert stack.calls.count("up") == 1 + 3 + 1  # prepare, three weights, promote
    assert stack.writes == [] and stack.config == original, "the git-tracked stack file is never written"
    assert SECRET not in _journal_text(rig, outcome.rollout_id)


@pytest.mark.parametrize("k", [0, 1], ids=["fails-at-50", "fails-at-100"])
def test_a_failed_step_up_rolls_the_stack_back(tmp_path: Path, stack: FakeStack, k: int) -> None:
    rig = _rig(tmp_path, stack, FailNextUpAt(stack, k, stderr=f"error: provider crashed password={SECRET}"))
    outcome = rig.engine.start(stack="dev", service="web", image="ghcr.io/acme/web:1.1", plan=rig.plan)
    assert outcome.phase is Phase.ROLLED_BACK and outcome.verified
    assert (_web(stack)["image"], _web(stack)["canaryImage"], _web(stack)["canaryWeight"]) == (
        "ghcr.io/acme/web:1.0", None, 0)
    assert _web(stack)["rollout"] == {"image": "ghcr.io/acme/web:1.1", "state": "rolled-back"}
    error = rig.of(outcome.rollout_id, EntryKind.ERROR)[0].data
    assert error["action"] == "set_weight" and "provider crashed" in str(error["message"])
    assert SECRET not in _journal_text(rig, outcome.rollout_id)


def test_an_interrupted_step_up_is_recovered_by_the_rollback(tmp_path: Path, stack: FakeStack) -> None:
    rig = _rig(tmp_path, stack, FailNextUpAt(stack, 0, stderr="error: update canceled", interrupt=True))
    outcome = rig.engine.start(stack="dev", service="web", image="ghcr.io/acme/web:1.1", plan=rig.plan)
    assert outcome.phase is Phase.ROLLED_BACK and outcome.verified
    assert stack.lock is None and stack.deployment["pending_operations"] == []
    assert "cancel" in stack.calls and "refresh" in stack.calls
    assert _web(stack)["image"] == "ghcr.io/acme/web:1.0" and _web(stack)["canaryWeight"] == 0


def test_someone_elses_lock_is_never_cancelled_it_exits_3_and_resume_rolls_back(
        tmp_path: Path, stack: FakeStack) -> None:
    class LockedByBob:
        def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
            stack.lock_by("bob", "other-runner", 77)  # a human's `pulumi up` holds the stack
            return AnalysisResult(Verdict.FAIL, ())

    rig = _rig(tmp_path, stack, LockedByBob())
    with pytest.raises(StackLocked) as info:
        rig.engine.start(stack="dev", service="web", image="ghcr.io/acme/web:1.1", plan=rig.plan)
    # Exit 3, not a failed rollback (4): nothing is broken, the stack is only busy. Nothing was cancelled.
    assert info.value.exit_code is ExitCode.LOCKED and "bob" in str(info.value)
    assert "cancel" not in stack.calls and stack.lock == ("bob", "other-runner", 77)
    (record,) = rig.engine.journal.active("dev")
    assert record.phase is Phase.ROLLING_BACK

    stack.lock = None  # bob's update ended
    outcome = rig.engine.resume(record.id)
    assert outcome.phase is Phase.ROLLED_BACK and outcome.verified
    assert _web(stack)["image"] == "ghcr.io/acme/web:1.0" and _web(stack)["canaryWeight"] == 0
    assert "cancel" not in stack.calls


def test_a_live_update_on_this_host_blocking_a_step_exits_3_without_a_cancel(tmp_path: Path, stack: FakeStack
                                                                           ) -> None:
    # Same user, same host as our own updates: only the holder's live pid says it is not ours.
    live = (getpass.getuser(), socket.gethostname(), os.getpid())

    class LockedAfterFirstStep:
        def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
            stack.lock_by(*live)
            return AnalysisResult(Verdict.PASS, ())

    rig = _rig(tmp_path, stack, LockedAfterFirstStep())
    with pytest.raises(StackLocked) as info:
        rig.engine.start(stack="dev", service="web", image="ghcr.io/acme/web:1.1", plan=rig.plan)
    assert info.value.exit_code is ExitCode.LOCKED and info.value.pid == os.getpid()
    assert "cancel" not in stack.calls and stack.lock == live
    (record,) = rig.engine.journal.active("dev")
    errors = rig.of(record.id, EntryKind.ERROR)
    assert [e.data["action"] for e in errors] == ["set_weight"] and errors[0].data["type"] == "StackLocked"

    stack.lock = None
    outcome = rig.engine.resume(record.id)
    assert outcome.phase is Phase.ROLLED_BACK and outcome.verified and "cancel" not in stack.calls
    assert _web(stack)["image"] == "ghcr.io/acme/web:1.0" and _web(stack)["canaryWeight"] == 0


def test_a_rollback_whose_up_fails_twice_ends_failed_with_recovery_steps(tmp_path: Path, stack: FakeStack) -> None:
    class BadThenBroken:
        def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
            stack.fail("up", "error: provider crashed", times=2)  # the rollback's up and its one retry
            return AnalysisResult(Verdict.FAIL, ())

    rig = _rig(tmp_path, stack, BadThenBroken())
    outcome = rig.engine.start(stack="dev", service="web", image="ghcr.io/acme/web:1.1", plan=rig.plan)
    assert outcome.phase is Phase.FAILED and outcome.exit_code is ExitCode.OPERATOR
    checkpoint = rig.of(outcome.rollout_id, EntryKind.CHECKPOINT)[0].data["state"]
    assert str(checkpoint["file"]) in outcome.reason
    assert "pulumi up --stack dev --yes" in outcome.reason
    assert "\n" in outcome.reason, "recovery commands keep their lines"


def test_bluegreen_switches_and_switches_back(tmp_path: Path, stack: FakeStack) -> None:
    rig = _rig(tmp_path, stack, FakeAnalysis([Verdict.PASS, Verdict.FAIL]), Strategy.BLUEGREEN, "api")
    outcome = rig.engine.start(stack="dev", service="api", image="ghcr.io/acme/api:2.1", plan=rig.plan)
    assert outcome.phase is Phase.ROLLED_BACK and outcome.verified
    api = _web(stack, "api")
    assert api.get("activeColor", "blue") == "blue"
    switched = [json.loads(env["GANTRY_ROLLOUT_STEP"])["progress"]["activeColor"] for env in stack.envs if env]
    assert "green" in switched, "it did switch before the post-promotion analysis failed"
