"""The pure state machine: plans, the reducer, decisions and the order of next actions."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from components.spec import Color, Strategy
from infra.rollout.entries import parse, parse_all
from infra.rollout.journal import Entry, EntryKind
from infra.rollout.scheduler import (
    ActionKind,
    Plan,
    RolloutState,
    StepEffect,
    apply,
    bluegreen_plan,
    canary_plan,
    decide,
    expected_traffic,
    mismatches,
    next_action,
    replay,
    started,
)
from infra.rollout.seams import Decision, HookPhase, JSONObject, Phase, RolloutId, StackName, TrafficState, Verdict

RID = RolloutId("r-1")
BASE = TrafficState(Strategy.CANARY, "app:1.0")


class Log:
    """Builds a journal by hand, entry by entry."""

    def __init__(self, plan: Plan, baseline: TrafficState = BASE) -> None:
        self.entries: list[Entry] = []
        self.add(EntryKind.STARTED, started(stack=StackName("dev"), service="web", image="app:2.0",
                                            baseline=baseline, plan=plan).to_json())

    def add(self, kind: EntryKind, data: JSONObject, at: float = 0.0) -> Log:
        self.entries.append(Entry(len(self.entries) + 1, RID, kind, data, at))
        return self

    @property
    def state(self) -> RolloutState:
        # Written as the journal stores them, read through the typed edge, as the engine reads them.
        return replay(parse_all(self.entries))


def _canary(**kw: Any) -> Plan:
    args: dict[str, Any] = {"interval": 30.0, "threshold": 2}
    args.update(kw)
    return canary_plan([10, 25, 50, 100], **args)


def _through_prepare(log: Log) -> Log:
    return (log.add(EntryKind.CHECKPOINT, {"state": {"x": 1}})
            .add(EntryKind.INTENT, {"action": "prepare", "image": "app:2.0"})
            .add(EntryKind.APPLIED, {"action": "prepare", "image": "app:2.0"}))


def test_bluegreen_plan_is_preview_then_switch_then_post_promotion_windows() -> None:
    plan = bluegreen_plan(interval=30, post_promotion_window=90, threshold=1, scale_down_delay=30)
    assert [(s.weight, s.effect) for s in plan.steps] == [
        (0, StepEffect.OBSERVE), (100, StepEffect.SWITCH), (100, StepEffect.OBSERVE), (100, StepEffect.OBSERVE)]
    assert len(bluegreen_plan(interval=0, post_promotion_window=90, threshold=1, scale_down_delay=0).steps) == 2


def test_plan_roundtrips_through_json() -> None:
    plan = canary_plan([5, 50, 100], interval=12.5, threshold=3, max_holds=4,
                       hook_phases=[HookPhase.STEP, HookPhase.ROLLBACK])
    assert Plan.from_json(plan.to_json()) == plan


@pytest.mark.parametrize("bad", [{"threshold": 0}, {"max_holds": 0}])
def test_plan_refuses_bad_counts(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        _canary(**bad)


@pytest.mark.parametrize(("verdict", "failures", "last", "decision"), [
    (Verdict.PASS, 0, False, Decision.ADVANCE),
    (Verdict.PASS, 1, True, Decision.PROMOTE),
    (Verdict.FAIL, 1, False, Decision.HOLD),
    (Verdict.FAIL, 2, False, Decision.ROLLBACK),
    (Verdict.INCONCLUSIVE, 0, False, Decision.HOLD),
    (Verdict.INCONCLUSIVE, 2, True, Decision.ROLLBACK),
])
def test_decide(verdict: Verdict, failures: int, last: bool, decision: Decision) -> None:
    s = replace(Log(_canary()).state, last_verdict=verdict, failures=failures, step=3 if last else 1)
    assert decide(s).decision is decision


def test_inconclusive_holds_count_as_one_failure_after_max_holds() -> None:
    log = _through_prepare(Log(_canary(max_holds=3, threshold=2)))
    log.add(EntryKind.APPLIED, {"action": "set_weight", "weight": 10, "step": 0})
    for expected_failures, expected_holds in [(0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]:
        log.add(EntryKind.ANALYSIS, {"verdict": "inconclusive", "checks": []})
        assert (log.state.failures, log.state.holds) == (expected_failures, expected_holds)
        assert next_action(log.state, 1e9).decision is Decision.HOLD
        log.add(EntryKind.DECISION, {"decision": "hold"})
    log.add(EntryKind.ANALYSIS, {"verdict": "inconclusive", "checks": []})
    assert next_action(log.state, 1e9).decision is Decision.ROLLBACK


def test_a_pass_resets_holds_but_not_failures() -> None:
    log = _through_prepare(Log(_canary(threshold=3)))
    log.add(EntryKind.APPLIED, {"action": "set_weight", "weight": 10, "step": 0})
    for verdict in ("fail", "inconclusive", "pass"):
        log.add(EntryKind.ANALYSIS, {"verdict": verdict, "checks": []})
    assert (log.state.failures, log.state.holds) == (1, 0)


def test_a_rollback_names_the_checks_that_failed() -> None:
    log = _through_prepare(Log(_canary(threshold=1)))
    log.add(EntryKind.APPLIED, {"action": "set_weight", "weight": 10, "step": 0})
    log.add(EntryKind.ANALYSIS, {"verdict": "fail", "checks": [
        {"name": "error-rate-sprt", "verdict": "pass", "value": -3.0, "limit": 4.5},
        {"name": "restarts", "verdict": "fail", "value": 9.0, "limit": 5.0},
        {"name": "canary-traffic", "verdict": "fail", "value": None, "limit": None}]})
    ruling = decide(log.state)
    assert ruling.decision is Decision.ROLLBACK
    assert ruling.reason == ("1 failed analyses reached the threshold of 1: restarts 9 > 5, "
                             "canary-traffic no data")


def test_action_order_for_a_canary() -> None:
    log = Log(_canary(hook_phases=frozenset({HookPhase.PRE_ROLLOUT, HookPhase.STEP})))
    assert next_action(log.state, 0).kind is ActionKind.CHECKPOINT
    log.add(EntryKind.CHECKPOINT, {"state": {}})
    a = next_action(log.state, 0)
    assert (a.kind, a.hook_phase) == (ActionKind.HOOKS, HookPhase.PRE_ROLLOUT)
    log.add(EntryKind.HOOK, {"key": "pre-rollout", "phase": "pre-rollout", "results": []})
    assert next_action(log.state, 0).kind is ActionKind.PREPARE
    log.add(EntryKind.APPLIED, {"action": "prepare"})
    a = next_action(log.state, 0)
    assert (a.kind, a.plan_step.weight if a.plan_step else None) == (ActionKind.APPLY_STEP, 10)
    log.add(EntryKind.APPLIED, {"action": "set_weight", "weight": 10, "step": 0}, at=100.0)
    a = next_action(log.state, 110.0)
    assert (a.kind, a.until) == (ActionKind.WAIT, 130.0)
    a = next_action(log.state, 130.0)
    assert (a.kind, a.hook_key) == (ActionKind.HOOKS, "step:0:0")
    log.add(EntryKind.HOOK, {"key": "step:0:0", "phase": "step", "results": [{"name": "h", "ok": True}]})
    assert next_action(log.state, 130.0).kind is ActionKind.ANALYSE
    log.add(EntryKind.ANALYSIS, {"verdict": "pass", "checks": []})
    assert next_action(log.state, 130.0).decision is Decision.ADVANCE


def test_a_pending_intent_is_ambiguous_and_rolls_back() -> None:
    log = _through_prepare(Log(_canary()))
    log.add(EntryKind.INTENT, {"action": "set_weight", "weight": 10, "step": 0})
    a = next_action(log.state, 0)
    assert (a.kind, a.decision) == (ActionKind.DECIDE, Decision.ROLLBACK)
    assert "ambiguous" in a.reason and "set_weight" in a.reason


def test_an_interrupted_revert_is_retried_not_decided_again() -> None:
    log = _through_prepare(Log(_canary()))
    log.add(EntryKind.DECISION, {"decision": "rollback", "reason": "bad"}).add(EntryKind.INTENT, {"action": "revert"})
    assert next_action(log.state, 0).kind is ActionKind.REVERT


def test_operator_abort_beats_pause_and_promote_is_an_override() -> None:
    log = _through_prepare(Log(_canary()))
    log.add(EntryKind.OPERATOR, {"action": "pause"})
    assert log.state.phase is Phase.PAUSED
    assert next_action(log.state, 0).kind is ActionKind.PAUSED
    log.add(EntryKind.OPERATOR, {"action": "promote"})
    a = next_action(log.state, 0)
    assert (a.decision, a.override) == (Decision.PROMOTE, True)
    log.add(EntryKind.OPERATOR, {"action": "abort", "reason": "abort by operator"})
    a = next_action(log.state, 0)
    assert (a.decision, a.reason) == (Decision.ROLLBACK, "abort by operator")


def test_operator_actions_after_the_end_change_nothing() -> None:
    log = _through_prepare(Log(_canary()))
    log.add(EntryKind.PHASE, {"phase": "promoted"})
    before = log.state
    log.add(EntryKind.OPERATOR, {"action": "abort"})
    assert replace(log.state, last_seq=before.last_seq) == before
    assert next_action(log.state, 0).kind is ActionKind.FINISH


def test_bluegreen_switch_waits_for_confirm_promotion_hooks() -> None:
    plan = bluegreen_plan(interval=30, post_promotion_window=30, threshold=1, scale_down_delay=30,
                          hook_phases=[HookPhase.CONFIRM_PROMOTION])
    log = _through_prepare(Log(plan, TrafficState(Strategy.BLUEGREEN, "app:1.0", active_color=Color.BLUE)))
    log.add(EntryKind.APPLIED, {"action": "observe", "step": 0}).add(EntryKind.ANALYSIS, {"verdict": "pass"})
    log.add(EntryKind.DECISION, {"decision": "advance"})
    a = next_action(log.state, 0)
    assert (a.kind, a.hook_phase) == (ActionKind.HOOKS, HookPhase.CONFIRM_PROMOTION)
    log.add(EntryKind.HOOK, {"key": "confirm-promotion", "phase": "confirm-promotion", "results": []})
    a = next_action(log.state, 0)
    assert (a.kind, a.color) == (ActionKind.APPLY_STEP, Color.GREEN)


def test_a_failed_confirm_hook_rolls_back() -> None:
    log = _through_prepare(Log(_canary(hook_phases=frozenset({HookPhase.CONFIRM_PROMOTION}))))
    log.add(EntryKind.DECISION, {"decision": "promote"})
    log.add(EntryKind.HOOK, {"key": "confirm-promotion", "phase": "confirm-promotion",
                             "results": [{"name": "qa-signoff", "ok": False}]})
    a = next_action(log.state, 0)
    assert (a.decision, a.reason) == (Decision.ROLLBACK, "hook qa-signoff failed")


def test_bluegreen_scale_down_waits_after_promotion() -> None:
    plan = bluegreen_plan(interval=30, post_promotion_window=30, threshold=1, scale_down_delay=45)
    log = _through_prepare(Log(plan, TrafficState(Strategy.BLUEGREEN, "app:1.0", active_color=Color.BLUE)))
    log.add(EntryKind.APPLIED, {"action": "switch", "color": "green", "step": 1})
    log.add(EntryKind.DECISION, {"decision": "promote"}, at=1000.0)
    a = next_action(log.state, 1010.0)
    assert (a.kind, a.until) == (ActionKind.WAIT, 1045.0)
    assert next_action(log.state, 1045.0).kind is ActionKind.PROMOTE


@pytest.mark.parametrize(("live", "problems"), [
    (TrafficState(Strategy.CANARY, "app:1.0", "app:2.0", 25), []),
    (TrafficState(Strategy.CANARY, "app:1.0", "app:2.0", 50), ["canary weight is 50, journal says 25"]),
    (TrafficState(Strategy.CANARY, "app:9.9", "app:2.0", 25), ["stable image is app:9.9, journal says app:1.0"]),
])
def test_mismatches_against_the_journal(live: TrafficState, problems: list[str]) -> None:
    log = _through_prepare(Log(_canary()))
    log.add(EntryKind.APPLIED, {"action": "set_weight", "weight": 25, "step": 1})
    assert expected_traffic(log.state).canary_weight == 25
    assert mismatches(log.state, live) == problems


def test_reducer_rejects_a_second_started_entry() -> None:
    log = Log(_canary())
    with pytest.raises(ValueError, match="exactly one started entry"):
        apply(log.state, parse(log.entries[0]))
