"""The rollout state machine: pure functions from journal entries to state, and from state to the next action.

``replay`` folds journal entries into a ``RolloutState``; ``next_action`` says what to do next
(checkpoint, run hooks, prepare, apply a step, wait, analyse, decide, promote, revert, finish);
``decide`` turns an analysis into advance / hold / promote / roll back. Nothing here touches a
target, a clock or a file: the engine (``infra.rollout.engine``) performs each action and journals it,
and the same functions rebuild the state after a crash. Tests drive them directly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import assert_never

from components.spec import Color, Strategy
from infra.rollout.entries import (
    Analysed,
    Applied,
    Check,
    Checkpointed,
    Decided,
    EffectKind,
    Failed,
    HooksRan,
    Intended,
    Logged,
    Observe,
    OperatorAction,
    PhaseSet,
    Prepare,
    Promote,
    Requested,
    Revert,
    SetWeight,
    Started,
    Switch,
    Verified,
    blob,
)
from infra.rollout.plan import DEFAULT_MAX_HOLDS as DEFAULT_MAX_HOLDS
from infra.rollout.plan import Plan as Plan
from infra.rollout.plan import PlanStep as PlanStep
from infra.rollout.plan import StepEffect as StepEffect
from infra.rollout.plan import bluegreen_plan as bluegreen_plan
from infra.rollout.plan import canary_plan as canary_plan
from infra.rollout.seams import (
    Decision,
    HookPhase,
    JSONObject,
    Phase,
    RolloutId,
    StackName,
    Track,
    TrafficState,
    Verdict,
)

# --------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class RolloutState:
    """Everything the scheduler knows about one rollout, rebuilt from its journal entries alone."""

    rollout_id: RolloutId
    stack: StackName
    service: str
    image: str
    baseline_image: str
    plan: Plan
    initial_color: Color | None = None
    phase: Phase = Phase.PENDING
    checkpoint: JSONObject | None = None
    hooks_done: frozenset[str] = frozenset()
    gate_failures: tuple[str, ...] = ()
    """Failed pre-rollout / confirm-promotion hooks: they roll back."""
    step_hook_failures: tuple[str, ...] = ()
    """Failed step hooks since the last analysis: they count as failed gates of that analysis."""
    step_hook_reasons: tuple[str, ...] = ()
    """Why each of ``step_hook_failures`` failed (its detail, e.g. ``cannot run gantry: ...``), same order."""
    prepared: bool = False
    step: int = 0
    applied: bool = False
    weight: int = 0
    active_color: Color | None = None
    step_started_at: float = 0.0
    """When the current interval began: the step was applied, or the last hold was decided."""
    window_started_at: float = 0.0
    """Start of the analysis window: the step was applied, or the last failed analysis was held. Inconclusive
    holds do not move it, so evidence accumulates across them (the counts are cumulative within the step)."""
    attempt: int = 0
    last_verdict: Verdict | None = None
    last_failed: tuple[str, ...] = ()
    """The failed checks of the last analysis (``restarts 9 > 5``), named in a rollback's reason."""
    failures: int = 0
    holds: int = 0
    starved: str = ""
    """Set when the last analysis used up the holds without a verdict: why, in numbers (the rollback's reason)."""
    analyses: int = 0
    paused: bool = False
    abort_requested: str | None = None
    skip_requested: bool = False
    override: bool = False
    promoting_since: float = 0.0
    promoted: bool = False
    reverted: bool = False
    pending: EffectKind | None = None
    """The action of an INTENT whose outcome was never journaled (a crash in between): ambiguous."""
    error: str | None = None
    reason: str = ""
    verified: bool | None = None
    last_seq: int = 0

    @property
    def new_color(self) -> Color | None:
        return None if self.initial_color is None else self.initial_color.other

    @property
    def current_step(self) -> PlanStep:
        return self.plan.steps[min(self.step, len(self.plan.steps) - 1)]


def started(*, stack: StackName, service: str, image: str, baseline: TrafficState, plan: Plan,
            forced: bool = False) -> Started:
    """The STARTED entry: the plan and the baseline, so replay needs nothing but the journal."""
    return Started(stack=stack, service=service, image=image, plan=plan, baseline=baseline, forced=forced)


def initial_state(entry: Logged) -> RolloutState:
    d = entry.body
    if not isinstance(d, Started):
        raise ValueError(f"the first journal entry must be started, but {entry.kind.value} was given")
    return RolloutState(
        rollout_id=entry.rollout_id, stack=d.stack, service=d.service, image=d.image,
        baseline_image=d.baseline.stable_image, plan=d.plan, initial_color=d.baseline.active_color,
        active_color=d.baseline.active_color, weight=d.baseline.canary_weight, last_seq=entry.seq,
    )


def replay(entries: Sequence[Logged]) -> RolloutState:
    """Rebuild a rollout's state from its whole journal."""
    state = initial_state(entries[0])
    return fold(state, entries[1:])


def fold(state: RolloutState, entries: Iterable[Logged]) -> RolloutState:
    for e in entries:
        state = apply(state, e)
    return state


Changes = dict[str, object]


def apply(s: RolloutState, e: Logged) -> RolloutState:
    """The reducer: one journal entry's effect on the state (one copy per entry: replay is on the hot path)."""
    changes = _changes(s, e)
    changes["last_seq"] = e.seq
    # The change sets are built per field above; replace() re-checks nothing, so type it loosely here only.
    copy_with: Callable[..., RolloutState] = replace
    return copy_with(s, **changes)


def _changes(s: RolloutState, e: Logged) -> Changes:
    d = e.body
    match d:
        case Checkpointed():
            return {"checkpoint": blob(d.state),
                    "phase": Phase.PROGRESSING if s.phase is Phase.PENDING else s.phase}
        case HooksRan():
            failed = tuple(r.name for r in d.results if not r.ok)
            out: Changes = {"hooks_done": s.hooks_done | {d.key}}
            if d.phase is HookPhase.STEP:
                out["step_hook_failures"] = s.step_hook_failures + failed
                out["step_hook_reasons"] = s.step_hook_reasons + tuple(r.detail for r in d.results if not r.ok)
            elif d.phase in (HookPhase.PRE_ROLLOUT, HookPhase.CONFIRM_PROMOTION):
                out["gate_failures"] = s.gate_failures + failed
            return out
        case Intended():
            return {"pending": d.effect.action}
        case Applied():
            return {"pending": None, **_applied(s, d, e.at)}
        case Failed():
            if d.action is EffectKind.REVERT:
                # The rollback itself failed: terminal, an operator must act (exit 4).
                return {"pending": None, "phase": Phase.FAILED, "reason": f"rollback failed: {d.message}"}
            return {"pending": None, "error": f"{d.action.value} failed: {d.message}"}
        case Analysed():
            return _analysed(s, d.verdict, failed_checks(d.checks), _starvation(d))
        case Decided():
            return _decided(s, d.decision, d.reason, d.override, e.at)
        case Requested():
            return _operator(s, d.action, d.reason)
        case PhaseSet():
            return {"phase": d.phase, "reason": s.reason if d.reason is None else d.reason}
        case Verified():
            return {"verified": d.ok}
        case Started():
            raise ValueError("a rollout's journal has exactly one started entry, but a second was given")
    raise TypeError(f"no reducer for journal entry {type(d).__name__}")


def _applied(s: RolloutState, d: Applied, at: float) -> Changes:
    effect = d.effect
    match effect:
        case Prepare():
            return {"prepared": True}
        case Promote():
            return {"promoted": True}
        case Revert():
            return {"reverted": True, "weight": 0, "active_color": s.initial_color}
        case SetWeight():
            out: Changes = {"weight": effect.weight}
        case Switch():
            out = {"active_color": effect.color}
        case Observe():
            out = {}
        case _:
            assert_never(effect)
    if effect.step is not None:
        # A plan step is now live: its analysis window starts here.
        out.update(applied=True, step=effect.step, step_started_at=at, window_started_at=at, attempt=0)
    return out


_SPRT_COUNTS = re.compile(r"(\d+)/(\d+) canary errors")


def failed_checks(checks: Iterable[Check | Mapping[str, object]]) -> tuple[str, ...]:
    """``name value > limit`` for each failed check of an analysis, for the rollback's reason."""
    out: list[str] = []
    for raw in checks:
        c = raw if isinstance(raw, Check) else Check.model_validate(raw)
        if c.verdict is not Verdict.FAIL:
            continue
        shown = "no data" if c.value is None else f"{c.value:g}"
        # The SPRT's value is a log-likelihood ratio: lead with the counts a reader can check.
        counts = _SPRT_COUNTS.match(c.detail) if c.name == "error-rate-sprt" else None
        if counts and c.value is not None and c.limit is not None:
            errors, requests = int(counts.group(1)), int(counts.group(2))
            out.append(f"{c.name} {errors}/{requests} canary requests failed ({100 * errors / max(requests, 1):.1f}%), "
                       f"LLR {c.value:.3g} > {c.limit:.3g}")
            continue
        # Every gate fails above its limit but the Mann-Whitney p-value, which fails below it.
        sign = "<" if c.name == "latency-mann-whitney" else ">"
        out.append(f"{c.name} {shown} {sign} {c.limit:g}" if c.limit is not None else f"{c.name} {shown}")
    return tuple(out)


def _starvation(d: Analysed) -> str:
    """``(M canary requests, K needed)`` from an analysis's journaled traffic and ``needed``."""
    canary = d.counts(Track.CANARY)
    requests = canary[0] if canary is not None else 0
    text = f"{requests} canary requests" + (f", {d.needed} needed" if d.needed is not None else "")
    stable = d.counts(Track.BASELINE)
    if d.needed is not None and requests >= d.needed and stable is not None:
        # Enough canary traffic: what was short is the stable's, which the comparison needs as well.
        text += f"; {stable[0]} stable requests"
    return text


def _analysed(s: RolloutState, verdict: Verdict, failed: tuple[str, ...] = (), traffic: str = "") -> Changes:
    failures, holds, starved = s.failures, s.holds, ""
    if verdict is Verdict.FAIL:
        failures, holds = failures + 1, 0
    elif verdict is Verdict.INCONCLUSIVE:
        holds += 1
        if holds >= s.plan.max_holds:
            # Starved of evidence for too long: that counts as a failure, never a pass, but it is its own
            # outcome: the reason says too little traffic, not that a gate failed.
            starved = f"inconclusive after {holds} holds: too little traffic ({traffic or 'no canary requests'})"
            failures, holds = failures + 1, 0
    else:
        holds = 0
    return {"last_verdict": verdict, "failures": failures, "holds": holds, "analyses": s.analyses + 1,
            "attempt": s.attempt + 1, "step_hook_failures": (), "step_hook_reasons": (), "last_failed": failed,
            "starved": starved}


def _decided(s: RolloutState, decision: Decision, reason: str, override: bool, at: float) -> Changes:
    out: Changes = {"last_verdict": None, "error": None, "gate_failures": ()}
    match decision:
        case Decision.ADVANCE:
            out.update(step=s.step + 1, applied=False)
        case Decision.HOLD:
            # A new interval starts either way. The window restarts only after a failed analysis (a fresh
            # test: the old evidence already crossed the failure boundary); an inconclusive one keeps it,
            # so a hold adds evidence instead of throwing it away.
            out.update(step_started_at=at)
            if s.last_verdict is Verdict.FAIL:
                out.update(window_started_at=at)
        case Decision.PROMOTE:
            out.update(phase=Phase.PROMOTING, promoting_since=at, override=s.override or override,
                       skip_requested=False, paused=False, reason=reason)
        case Decision.ROLLBACK:
            out.update(phase=Phase.ROLLING_BACK, reason=reason, abort_requested=None, paused=False,
                       skip_requested=False)
    return out


def _operator(s: RolloutState, action: OperatorAction, reason: str) -> Changes:
    if s.phase.terminal or s.phase is Phase.ROLLING_BACK:
        return {}  # too late to change course; the entry stays in the journal as a record
    if action is OperatorAction.PAUSE and s.phase in (Phase.PROGRESSING, Phase.PENDING):
        return {"paused": True, "phase": Phase.PAUSED}
    if action is OperatorAction.RESUME and s.paused:
        return {"paused": False, "phase": Phase.PROGRESSING}
    if action is OperatorAction.ABORT:
        return {"abort_requested": reason or "aborted by operator"}
    if action is OperatorAction.PROMOTE and s.phase is not Phase.PROMOTING:
        return {"skip_requested": True}
    return {}


# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True, slots=True)
class Ruling:
    """The decision after one analysis, with its reason (journaled with it)."""

    decision: Decision
    reason: str


def decide(s: RolloutState) -> Ruling:
    """Advance, hold, promote or roll back after the analysis just journaled."""
    threshold = s.plan.threshold
    if s.failures >= threshold and s.starved:
        earlier = f" ({s.failures}/{threshold} failures)" if threshold > 1 else ""
        return Ruling(Decision.ROLLBACK, s.starved + earlier)
    if s.failures >= threshold:
        why = f": {', '.join(s.last_failed)}" if s.last_failed else ""
        return Ruling(Decision.ROLLBACK, f"{s.failures} failed analyses reached the threshold of {threshold}{why}")
    last = s.step >= len(s.plan.steps) - 1
    label = s.current_step.label
    match s.last_verdict:
        case Verdict.PASS:
            if last:
                return Ruling(Decision.PROMOTE, f"all {len(s.plan.steps)} steps passed")
            return Ruling(Decision.ADVANCE, f"{label} passed")
        case Verdict.FAIL:
            return Ruling(Decision.HOLD, f"{label} failed ({s.failures}/{threshold} failures)")
        case _:
            return Ruling(Decision.HOLD,
                            f"{label} inconclusive ({s.holds}/{s.plan.max_holds} holds before a failure counts)")


# --------------------------------------------------------------------------- actions


class ActionKind(StrEnum):
    CHECKPOINT = "checkpoint"
    HOOKS = "hooks"
    PREPARE = "prepare"
    APPLY_STEP = "apply_step"
    SWITCH = "switch"
    WAIT = "wait"
    ANALYSE = "analyse"
    DECIDE = "decide"
    PROMOTE = "promote"
    REVERT = "revert"
    PAUSED = "paused"
    FINISH = "finish"


@dataclass(frozen=True, slots=True)
class Action:
    """The next thing the engine must do. Only the fields its kind needs are set."""

    kind: ActionKind
    step: int = -1
    plan_step: PlanStep | None = None
    color: Color | None = None
    hook_phase: HookPhase | None = None
    hook_key: str = ""
    until: float = 0.0
    decision: Decision | None = None
    reason: str = ""
    override: bool = False
    phase: Phase | None = None
    look: bool = False
    """A WAIT within a step's interval, during which a streaming judge looks at the evidence so far."""


def _hooks(s: RolloutState, phase: HookPhase, key: str) -> Action | None:
    if phase in s.plan.hook_phases and key not in s.hooks_done:
        return Action(ActionKind.HOOKS, hook_phase=phase, hook_key=key, step=s.step)
    return None


def next_action(s: RolloutState, now: float) -> Action:
    """What to do next, given the journaled state and the time. Pure and total."""
    if s.phase.terminal:
        return Action(ActionKind.FINISH, phase=s.phase, reason=s.reason)
    if s.phase is Phase.ROLLING_BACK:
        if s.reverted:
            return Action(ActionKind.FINISH, phase=Phase.ROLLED_BACK, reason=s.reason)
        return _hooks(s, HookPhase.ROLLBACK, "rollback") or Action(ActionKind.REVERT, reason=s.reason)
    # Anything that can only end in a rollback comes before ordinary progress.
    if s.pending is not None:
        return Action(ActionKind.DECIDE, decision=Decision.ROLLBACK,
                      reason=f"ambiguous: '{s.pending}' was interrupted before its outcome was journaled")
    if s.error is not None:
        return Action(ActionKind.DECIDE, decision=Decision.ROLLBACK, reason=s.error)
    if s.abort_requested is not None:
        return Action(ActionKind.DECIDE, decision=Decision.ROLLBACK, reason=s.abort_requested)
    if s.gate_failures:
        return Action(ActionKind.DECIDE, decision=Decision.ROLLBACK,
                      reason=f"hook {', '.join(s.gate_failures)} failed")
    if s.skip_requested:
        return Action(ActionKind.DECIDE, decision=Decision.PROMOTE, override=True,
                      reason="promoted by the operator without analysis (override)")
    if s.paused:
        return Action(ActionKind.PAUSED)
    if s.checkpoint is None:
        return Action(ActionKind.CHECKPOINT)
    pre = _hooks(s, HookPhase.PRE_ROLLOUT, "pre-rollout")
    if pre is not None:
        return pre
    if not s.prepared:
        return Action(ActionKind.PREPARE)
    if s.phase is Phase.PROMOTING:
        return _promoting(s, now)
    ps = s.plan.steps[s.step]
    if not s.applied:
        if ps.effect is StepEffect.SWITCH:
            confirm = _hooks(s, HookPhase.CONFIRM_PROMOTION, "confirm-promotion")
            if confirm is not None:
                return confirm
        return Action(ActionKind.APPLY_STEP, step=s.step, plan_step=ps,
                      color=s.new_color if ps.effect is StepEffect.SWITCH else None)
    if s.last_verdict is not None:
        v = decide(s)
        return Action(ActionKind.DECIDE, decision=v.decision, reason=v.reason, step=s.step)
    until = s.step_started_at + s.plan.interval
    if now < until:
        # A step's wait: a streaming judge may look at the evidence meanwhile and fail the step early.
        return Action(ActionKind.WAIT, until=until, step=s.step, look=True)
    return _hooks(s, HookPhase.STEP, f"step:{s.step}:{s.attempt}") or Action(ActionKind.ANALYSE, step=s.step)


def _promoting(s: RolloutState, now: float) -> Action:
    if s.promoted:
        return _hooks(s, HookPhase.POST_ROLLOUT, "post-rollout") or Action(
            ActionKind.FINISH, phase=Phase.PROMOTED, reason=s.reason)
    if s.plan.strategy is Strategy.BLUEGREEN:
        if s.active_color != s.new_color:
            # Promoted by override before the switch: the switch still has to happen, gated as usual.
            confirm = _hooks(s, HookPhase.CONFIRM_PROMOTION, "confirm-promotion")
            return confirm or Action(ActionKind.SWITCH, color=s.new_color)
        until = s.promoting_since + s.plan.scale_down_delay
        if now < until:
            return Action(ActionKind.WAIT, until=until)
    else:
        confirm = _hooks(s, HookPhase.CONFIRM_PROMOTION, "confirm-promotion")
        if confirm is not None:
            return confirm
    return Action(ActionKind.PROMOTE)


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True, slots=True)
class Expected:
    """What the target must show, according to the journal."""

    canary_weight: int | None
    active_color: Color | None
    stable_image: str | None


def expected_traffic(s: RolloutState) -> Expected:
    canary = s.plan.strategy is Strategy.CANARY
    if s.reverted:
        return Expected(0 if canary else None, None if canary else s.initial_color, s.baseline_image)
    if s.promoted:
        return Expected(0 if canary else None, None if canary else s.new_color, s.image)
    if canary:
        return Expected(s.weight if s.prepared else 0, None, s.baseline_image)
    return Expected(None, s.active_color, None)


def mismatches(s: RolloutState, live: TrafficState) -> list[str]:
    """How the live target differs from the journal (empty when they agree)."""
    exp = expected_traffic(s)
    out: list[str] = []
    if exp.canary_weight is not None and live.canary_weight != exp.canary_weight:
        out.append(f"canary weight is {live.canary_weight}, journal says {exp.canary_weight}")
    if exp.active_color is not None and live.active_color != exp.active_color:
        shown = None if live.active_color is None else live.active_color.value
        out.append(f"active color is {shown}, journal says {exp.active_color.value}")
    if exp.stable_image is not None and live.stable_image != exp.stable_image:
        out.append(f"stable image is {live.stable_image}, journal says {exp.stable_image}")
    return out
