"""The engine: journal before acting, hooks, notifications, operator actions, quarantine, lease, fail-safe paths."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import cast

import pytest
from fakes import FakeAnalysis, FakeHook, FakeTarget
from rollout_rig import STACK, make_rig

from components.spec import Color, Strategy
from infra.errors import ExitCode
from infra.rollout.engine import Heartbeat, OperatorAction, request
from infra.rollout.entries import Analysed, Logged, of, parse_all
from infra.rollout.errors import QuarantinedVersion, StackLocked
from infra.rollout.journal import Entry, EntryKind, SqliteJournal
from infra.rollout.lock import Lease, Lock
from infra.rollout.scheduler import RolloutState
from infra.rollout.seams import (
    AnalysisContext,
    AnalysisResult,
    EventKind,
    HookPhase,
    HookResult,
    JSONObject,
    Phase,
    RolloutId,
    StackName,
    Verdict,
)


class JournalFirstTarget(FakeTarget):
    """Asserts, at every mutation, that the journal already holds the intent for it."""

    def __init__(self, journal_path: Path, strategy: Strategy = Strategy.CANARY) -> None:
        super().__init__(strategy, "app:1.0")
        self.journal_path = journal_path
        self.checked: list[str] = []

    def _last(self) -> Entry:
        j = SqliteJournal(self.journal_path)
        rid = j.history()[0].id
        last = j.entries(rid)[-1]
        j.close()
        return last

    def _expect(self, action: str) -> None:
        last = self._last()
        assert (last.kind, last.data.get("action")) == (EntryKind.INTENT, action), (action, last)
        self.checked.append(action)

    def prepare(self, image: str) -> None:
        self._expect("prepare")
        super().prepare(image)

    def set_weights(self, canary_weight: int) -> None:
        self._expect("set_weight")
        super().set_weights(canary_weight)

    def switch(self, color: Color) -> None:
        self._expect("switch")
        super().switch(color)

    def promote(self) -> None:
        self._expect("promote")
        super().promote()

    def revert(self, checkpoint: JSONObject) -> None:
        self._expect("revert")
        super().revert(checkpoint)


@pytest.mark.parametrize("strategy", list(Strategy))
@pytest.mark.parametrize("verdicts", [[Verdict.PASS], [Verdict.PASS, Verdict.FAIL]], ids=["promote", "rollback"])
def test_every_effect_is_journaled_before_it_happens(tmp_path: Path, strategy: Strategy,
                                                     verdicts: list[Verdict]) -> None:
    target = JournalFirstTarget(tmp_path / ".gantry" / "journal.db", strategy)
    rig = make_rig(tmp_path, strategy=strategy, target=target, analysis=FakeAnalysis(verdicts))
    outcome = rig.start()
    assert target.checked[0] == "prepare"
    assert target.checked[-1] == ("promote" if verdicts == [Verdict.PASS] else "revert")
    # Every analysis result is journaled before the decision it leads to.
    kinds = rig.kinds(outcome.rollout_id)
    for i, k in enumerate(kinds):
        if k == "decision" and "operator" not in kinds:
            assert kinds[i - 1] in ("analysis", "error", "hook")


def test_promotion_notifies_in_order_and_records_each_step(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    outcome = rig.start()
    assert [e.kind for e in rig.notifier.events] == [EventKind.STARTED, *[EventKind.STEP_PASSED] * 3,
                                                    EventKind.PROMOTED]
    analyses = rig.of(outcome.rollout_id, EntryKind.ANALYSIS)
    assert [a.data["weight"] for a in analyses] == [10, 25, 50, 100]
    assert rig.clock.slept == pytest.approx(4 * 30.0)
    assert rig.lock.holder(STACK) is None, "the lease is released at the end"
    assert rig.target.finalized


def test_hooks_run_at_each_phase_with_the_rollout_payload(tmp_path: Path) -> None:
    hooks = [FakeHook(f"h-{p.value}", p) for p in HookPhase]
    rig = make_rig(tmp_path, hooks=hooks)
    outcome = rig.start()
    by_phase = {h.phase: h for h in hooks}
    assert len(by_phase[HookPhase.PRE_ROLLOUT].payloads) == 1
    assert [p["weight"] for p in by_phase[HookPhase.STEP].payloads] == [10, 25, 50, 100]
    assert len(by_phase[HookPhase.CONFIRM_PROMOTION].payloads) == 1
    assert len(by_phase[HookPhase.POST_ROLLOUT].payloads) == 1
    assert by_phase[HookPhase.ROLLBACK].payloads == []
    payload = by_phase[HookPhase.PRE_ROLLOUT].payloads[0]
    assert (payload["rollout"], payload["image"], payload["baseline"]) == (outcome.rollout_id, "app:2.0", "app:1.0")


def test_failed_pre_rollout_hook_rolls_back_before_anything_is_deployed(tmp_path: Path) -> None:
    rollback_hook = FakeHook("page", HookPhase.ROLLBACK)
    rig = make_rig(tmp_path, hooks=[FakeHook("gate", HookPhase.PRE_ROLLOUT, ok=False), rollback_hook])
    outcome = rig.start()
    assert outcome.phase is Phase.ROLLED_BACK
    assert outcome.reason == "hook gate failed"
    assert rig.target.count("prepare") == 0
    assert len(rollback_hook.payloads) == 1


def test_a_raising_hook_fails_without_crashing(tmp_path: Path) -> None:
    class Boom:
        name = "boom"
        phase = HookPhase.STEP

        def run(self, payload: JSONObject) -> HookResult:
            raise RuntimeError("socket closed")

    rig = make_rig(tmp_path, hooks=[Boom()])
    outcome = rig.start()
    assert outcome.phase is Phase.ROLLED_BACK
    hook = rig.of(outcome.rollout_id, EntryKind.HOOK)[0]
    assert hook.data["results"] == [{"name": "boom", "ok": False, "detail": "hook raised: socket closed"}]


def test_failed_post_rollout_hook_does_not_undo_a_promotion(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, hooks=[FakeHook("announce", HookPhase.POST_ROLLOUT, ok=False)])
    assert rig.start().phase is Phase.PROMOTED


def test_an_analysis_that_raises_fails_safe(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, analysis=FakeAnalysis(raises=RuntimeError("prometheus 503")))
    outcome = rig.start()
    assert outcome.phase is Phase.ROLLED_BACK
    check = of(parse_all(rig.entries(outcome.rollout_id)), Analysed)[0].checks[0]
    assert (check.name, check.verdict) == ("analysis", Verdict.FAIL)
    assert "prometheus 503" in check.detail


def test_endless_inconclusive_analysis_still_ends_in_a_rollback(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, analysis=FakeAnalysis([Verdict.INCONCLUSIVE]), threshold=2)
    outcome = rig.start()
    assert outcome.phase is Phase.ROLLED_BACK
    assert len(rig.of(outcome.rollout_id, EntryKind.ANALYSIS)) == 2 * 3  # threshold x max_holds
    assert rig.target.current().canary_weight == 0


def test_a_failing_checkpoint_rolls_back_without_touching_the_target(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, target=FakeTarget(fail_always=["checkpoint"]))
    outcome = rig.start()
    assert outcome.phase is Phase.ROLLED_BACK
    assert [c[0] for c in rig.target.calls] == ["checkpoint"]
    assert rig.of(outcome.rollout_id, EntryKind.APPLIED)[-1].data == {"action": "revert", "noop": True}


def test_quarantined_version_needs_force(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, analysis=FakeAnalysis([Verdict.FAIL]))
    first = rig.start("app:2.0")
    with pytest.raises(QuarantinedVersion) as info:
        rig.start("app:2.0")
    assert info.value.exit_code is ExitCode.USAGE
    assert first.rollout_id in str(info.value) and "--force" in str(info.value)
    assert len(rig.journal.history()) == 1, "a refused start journals nothing"
    forced = rig.start("app:2.0", force=True)
    assert rig.entries(forced.rollout_id)[0].data["forced"] is True


def test_a_second_rollout_on_a_locked_stack_is_refused(tmp_path: Path) -> None:
    holder = make_rig(tmp_path, host="build-7", pid=4242)
    holder.lock.acquire(STACK, RolloutId("r-other"))
    rig = make_rig(tmp_path, host="laptop")
    with pytest.raises(StackLocked) as info:
        rig.start()
    assert info.value.exit_code is ExitCode.LOCKED
    assert (info.value.host, info.value.pid) == ("build-7", 4242)
    assert rig.journal.history() == []
    assert rig.target.calls == []


def test_an_unfinished_rollout_blocks_a_new_one(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)

    class Pauser:
        def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
            raise KeyboardInterrupt  # the process dies mid-rollout

    rig.engine.analysis = Pauser()
    with pytest.raises(KeyboardInterrupt):
        rig.start()
    with pytest.raises(StackLocked, match="unfinished rollout"):
        make_rig(tmp_path).start("app:3.0")


class OperatorAnalysis:
    """Simulates an operator's CLI writing into the journal while the engine runs."""

    def __init__(self, journal: SqliteJournal, at_step: int, action: str) -> None:
        self.journal, self.at_step, self.action = journal, at_step, action

    def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        if ctx.step_index == self.at_step:
            from infra.rollout.clock import FakeClock

            request(self.journal, FakeClock(ctx.now), ctx.rollout_id, OperatorAction(self.action))
        return AnalysisResult(Verdict.PASS, ())


def test_abort_rolls_back(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.engine.analysis = OperatorAnalysis(SqliteJournal(tmp_path / ".gantry" / "journal.db"), 1, "abort")
    outcome = rig.start()
    assert outcome.phase is Phase.ROLLED_BACK
    assert outcome.reason == "abort by operator"
    assert rig.target.current().canary_weight == 0


def test_promote_skip_analysis_is_recorded_as_an_override(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.engine.analysis = OperatorAnalysis(SqliteJournal(tmp_path / ".gantry" / "journal.db"), 0, "promote")
    outcome = rig.start()
    assert outcome.phase is Phase.PROMOTED
    promote = [d for d in rig.of(outcome.rollout_id, EntryKind.DECISION) if d.data["decision"] == "promote"]
    assert promote[0].data["override"] is True
    assert outcome.state.override
    assert rig.target.count("set_weights") == 1
    assert rig.target.current().stable_image == "app:2.0"


def test_pause_holds_until_resume(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    journal = SqliteJournal(tmp_path / ".gantry" / "journal.db")
    rig.engine.analysis = OperatorAnalysis(journal, 1, "pause")
    waits: list[tuple[Phase, int]] = []

    class Resumer:
        def on_entry(self, state: RolloutState, entry: Logged) -> None:
            return

        def on_wait(self, state: RolloutState, until: float, now: float) -> None:
            waits.append((state.phase, state.weight))
            if state.phase is Phase.PAUSED and len([w for w in waits if w[0] is Phase.PAUSED]) == 5:
                from infra.rollout.clock import FakeClock

                request(journal, FakeClock(now), state.rollout_id, OperatorAction.RESUME)

    rig.engine.observer = Resumer()
    outcome = rig.start()
    assert outcome.phase is Phase.PROMOTED
    paused = [w for w in waits if w[0] is Phase.PAUSED]
    assert len(paused) == 5 and {w[1] for w in paused} == {25}, "held at the paused step"
    actions = [e.data["action"] for e in rig.of(outcome.rollout_id, EntryKind.OPERATOR)]
    assert actions == ["pause", "resume"]


def test_operator_actions_on_a_finished_rollout_are_refused(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    outcome = rig.start()
    with pytest.raises(Exception, match="already promoted"):
        request(rig.journal, rig.clock, outcome.rollout_id, OperatorAction.ABORT)


def test_the_lease_is_renewed_through_long_waits(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, ttl=60.0, poll=1000.0, plan=None)
    rig.plan = rig.plan.__class__(**{**{f: getattr(rig.plan, f) for f in rig.plan.__dataclass_fields__},
                                     "interval": 600.0})
    margins: list[float] = []

    class Watch:
        def on_entry(self, state: RolloutState, entry: Logged) -> None:
            return

        def on_wait(self, state: RolloutState, until: float, now: float) -> None:
            lease = rig.lock.holder(STACK)
            assert lease is not None
            margins.append(lease.expires_at - now)

    rig.engine.observer = Watch()
    assert rig.start().phase is Phase.PROMOTED
    assert len(margins) >= 4 * 600 / 20
    assert min(margins) > 0, "the lease never lapsed during a wait"


def test_fast_track_revert_restores_the_checkpoint_of_a_promoted_rollout(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    promoted = rig.start("app:2.0")
    assert rig.target.current().stable_image == "app:2.0"
    outcome = rig.engine.revert_to(promoted.rollout_id)
    assert outcome.phase is Phase.ROLLED_BACK and outcome.verified
    assert rig.target.current().stable_image == "app:1.0"
    assert rig.journal.quarantined(StackName("dev"), "web", "app:2.0") is not None
    started = rig.entries(outcome.rollout_id)[0].data
    assert started["revert_of"] == promoted.rollout_id
    assert started["before"] == {"strategy": "canary", "stable_image": "app:2.0", "canary_image": None,
                                 "canary_weight": 0}


class FlakyLock:
    """A lock whose heartbeats fail (a busy database) ``failures`` times, then renew; then it is taken."""

    def __init__(self, lock: object, failures: int) -> None:
        self.inner, self.failures, self.beats = lock, failures, 0

    def heartbeat(self, lease: Lease) -> Lease:
        self.beats += 1
        if self.beats <= self.failures:
            raise sqlite3.OperationalError("database is locked")
        if self.beats == self.failures + 2:
            raise StackLocked(lease.stack, "someone else", "elsewhere", None, None)
        return lease


def test_the_heartbeat_logs_each_failed_beat_and_keeps_the_lease(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    rig = make_rig(tmp_path)
    lease = rig.lock.acquire(STACK, RolloutId("r-beat"))
    flaky = FlakyLock(rig.lock, failures=2)
    beat = Heartbeat(cast(Lock, flaky), lease, every=0.001)
    with caplog.at_level(logging.WARNING, logger="infra.rollout.engine"):
        beat.start()
        beat.join(timeout=10.0)
    assert not beat.is_alive()
    failed = [r.getMessage() for r in caplog.records if "heartbeat" in r.getMessage()]
    assert len(failed) == 2 and all("OperationalError: database is locked" in m for m in failed), failed
    # After the failed beats it renewed once, then recorded the lost lease for the loop instead of retrying.
    assert flaky.beats == 4 and isinstance(beat.lost, StackLocked)
