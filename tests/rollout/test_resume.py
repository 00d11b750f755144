"""Resume: re-run a missing analysis, roll back when ambiguous, verify the target against the journal."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeAnalysis, FakeTarget
from rollout_rig import Rig, make_rig

from components.spec import Strategy
from infra.rollout.entries import parse_all
from infra.rollout.journal import EntryKind
from infra.rollout.scheduler import replay
from infra.rollout.seams import AnalysisContext, AnalysisResult, Phase, RolloutId, Verdict


class Crash(BaseException):
    """Stands in for the process dying (not an Exception, so nothing in the engine catches it)."""


class CrashingTarget(FakeTarget):
    """Dies on the n-th call of a method, either before or after doing it."""

    def __init__(self, method: str, n: int, after: bool) -> None:
        super().__init__(Strategy.CANARY, "app:1.0")
        self.method, self.n, self.after = method, n, after
        self.armed = True

    def _call(self, name: str, *args: str | int) -> None:
        super()._call(name, *args)
        if self.armed and name == self.method and self.count(name) == self.n and not self.after:
            self.armed = False
            raise Crash

    def set_weights(self, canary_weight: int) -> None:
        super().set_weights(canary_weight)
        if self.armed and self.method == "set_weights" and self.count("set_weights") == self.n and self.after:
            self.armed = False
            raise Crash


def _crash_then_resume(tmp_path: Path, target: FakeTarget,
                       analysis: FakeAnalysis | None = None) -> tuple[Rig, RolloutId]:
    rig = make_rig(tmp_path, target=target, analysis=analysis)
    with pytest.raises(Crash):
        rig.start()
    rid = rig.journal.history()[0].id
    return rig, rid


def test_applied_step_without_analysis_reruns_the_analysis(tmp_path: Path) -> None:
    class CrashInAnalysis:
        calls = 0

        def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
            CrashInAnalysis.calls += 1
            if CrashInAnalysis.calls == 2:
                raise Crash  # died while analysing step 1 (25%): nothing journaled about it
            return AnalysisResult(Verdict.PASS, ())

    rig = make_rig(tmp_path, analysis=CrashInAnalysis())
    with pytest.raises(Crash):
        rig.start()
    rid = rig.journal.history()[0].id
    assert rig.target.current().canary_weight == 25
    before = rig.target.count("set_weights")
    outcome = rig.engine.resume(rid)
    assert outcome.phase is Phase.PROMOTED
    analyses = [e.data["step"] for e in rig.of(rid, EntryKind.ANALYSIS)]
    assert analyses == [0, 1, 2, 3], "step 1 was analysed again, not skipped and not re-applied"
    assert rig.target.count("set_weights") == before + 2
    assert not any(e.data.get("decision") == "rollback" for e in rig.of(rid, EntryKind.DECISION))


@pytest.mark.parametrize("after", [False, True], ids=["before-effect", "after-effect"])
def test_an_interrupted_effect_is_ambiguous_and_rolls_back(tmp_path: Path, after: bool) -> None:
    rig, rid = _crash_then_resume(tmp_path, CrashingTarget("set_weights", 2, after))
    assert rig.of(rid, EntryKind.INTENT)[-1].data["action"] == "set_weight"
    outcome = rig.engine.resume(rid)
    assert outcome.phase is Phase.ROLLED_BACK
    assert outcome.reason.startswith("ambiguous: 'set_weight' was interrupted")
    assert rig.target.current().canary_weight == 0 and outcome.verified


def test_a_target_that_drifted_from_the_journal_rolls_back(tmp_path: Path) -> None:
    class CrashInAnalysis:
        def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
            raise Crash

    rig = make_rig(tmp_path, analysis=CrashInAnalysis())
    with pytest.raises(Crash):
        rig.start()
    rid = rig.journal.history()[0].id
    rig.target.set_weights(60)  # someone changed the live weights while the engine was dead
    rig.engine.analysis = FakeAnalysis()
    outcome = rig.engine.resume(rid)
    assert outcome.phase is Phase.ROLLED_BACK
    assert "canary weight is 60, journal says 10" in outcome.reason
    assert rig.target.current().canary_weight == 0


def test_an_interrupted_rollback_is_finished(tmp_path: Path) -> None:
    target = CrashingTarget("revert", 1, after=False)
    rig, rid = _crash_then_resume(tmp_path, target, FakeAnalysis([Verdict.FAIL]))
    outcome = rig.engine.resume(rid)
    assert outcome.phase is Phase.ROLLED_BACK
    assert rig.target.count("revert") == 2
    assert [d.data["decision"] for d in rig.of(rid, EntryKind.DECISION)] == ["rollback"]


def test_resuming_a_finished_rollout_changes_nothing(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    done = rig.start()
    count = len(rig.entries(done.rollout_id))
    again = rig.engine.resume(done.rollout_id)
    assert again.phase is Phase.PROMOTED and again.verified
    assert len(rig.entries(done.rollout_id)) == count
    assert replay(parse_all(rig.entries(done.rollout_id))) == again.state
