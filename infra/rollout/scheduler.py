"""The rollout state machine: pure functions from journal entries to state, and from state to the next action.

``replay`` folds journal entries into a ``RolloutState``; ``next_action`` says what to do next
(checkpoint, run hooks, prepare, apply a step, wait, analyse, decide, promote, revert, finish);
``decide`` turns an analysis into advance / hold / promote / roll back. Nothing here touches a
target, a clock or a file: the engine (``infra.rollout.engine``) performs each action and journals it,
and the same functions rebuild the state after a crash. Tests drive them directly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import cast

from components.spec import Color, Strategy
from infra.rollout.journal import Entry, EntryKind
from infra.rollout.seams import (
    Decision,
    HookPhase,
    JSONObject,
    JSONValue,
    Phase,
    RolloutId,
    StackName,
    TrafficState,
    Verdict,
)

DEFAULT_MAX_HOLDS = 3
"""Consecutive inconclusive analyses that count as one failure, so a rollout starved of data still ends."""


# --------------------------------------------------------------------------- plans


class StepEffect(StrEnum):
    """What applying a step does to the target."""

    SET_WEIGHT = "set_weight"
    SWITCH = "switch"
    OBSERVE = "observe"
    """Nothing changes; the step is a window to analyse (blue/green preview and post-promotion)."""


@dataclass(frozen=True, slots=True)
class PlanStep:
    weight: int
    """Percent of traffic on the new version while this step is analysed."""
    effect: StepEffect
    label: str


@dataclass(frozen=True, slots=True)
class Plan:
    """How one rollout proceeds; journaled in its STARTED entry so a resume follows the same plan."""

    strategy: Strategy
    steps: tuple[PlanStep, ...]
    interval: float
    threshold: int
    max_holds: int = DEFAULT_MAX_HOLDS
    scale_down_delay: float = 0.0
    hook_phases: frozenset[HookPhase] = frozenset()
    """Phases that have hooks configured; the others are skipped without a journal entry."""

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("steps must be a non-empty list of weights, but [] was given")
        if any(not 0 <= s.weight <= 100 for s in self.steps):
            raise ValueError(f"steps must be weights within 0..100, but {[s.weight for s in self.steps]} was given")
        if self.threshold < 1:
            raise ValueError(f"threshold must be >= 1, but {self.threshold} was given")
        if self.max_holds < 1:
            raise ValueError(f"maxHolds must be >= 1, but {self.max_holds} was given")

    def max_analyses(self) -> int:
        """Upper bound on analyses, so every rollout ends: each step passes once; each of the ``threshold``
        failures costs at most ``max_holds`` analyses; and a run of inconclusive holds too short to count
        as a failure can precede each pass, each failure and the end."""
        steps, t, h = len(self.steps), self.threshold, self.max_holds
        return steps + t * h + (h - 1) * (steps + t + 1)

    def to_json(self) -> JSONObject:
        return {
            "strategy": self.strategy.value,
            "steps": [{"weight": s.weight, "effect": s.effect.value, "label": s.label} for s in self.steps],
            "interval": self.interval,
            "threshold": self.threshold,
            "max_holds": self.max_holds,
            "scale_down_delay": self.scale_down_delay,
            "hook_phases": sorted(p.value for p in self.hook_phases),
        }

    @staticmethod
    def from_json(data: JSONObject) -> Plan:
        steps = cast(Sequence[Mapping[str, JSONValue]], data["steps"])
        return Plan(
            strategy=Strategy(str(data["strategy"])),
            steps=tuple(PlanStep(int(cast(int, s["weight"])), StepEffect(str(s["effect"])), str(s["label"]))
                        for s in steps),
            interval=float(cast(float, data["interval"])),
            threshold=int(cast(int, data["threshold"])),
            max_holds=int(cast(int, data["max_holds"])),
            scale_down_delay=float(cast(float, data["scale_down_delay"])),
            hook_phases=frozenset(HookPhase(str(p)) for p in cast(Sequence[str], data["hook_phases"])),
        )


def linear_weights(step_weight: int, max_weight: int) -> list[int]:
    """CodeDeploy/Flagger linear steps: step, 2*step, ... up to and including max_weight."""
    if not 1 <= step_weight <= 100:
        raise ValueError(f"stepWeight must be within 1..100, but {step_weight} was given")
    if not step_weight <= max_weight <= 100:
        raise ValueError(f"maxWeight must be within stepWeight ({step_weight})..100, but {max_weight} was given")
    weights = list(range(step_weight, max_weight + 1, step_weight))
    if weights[-1] != max_weight:
        weights.append(max_weight)
    return weights


def canary_plan(weights: Sequence[int], *, interval: float, threshold: int, max_holds: int = DEFAULT_MAX_HOLDS,
                hook_phases: Iterable[HookPhase] = ()) -> Plan:
    return Plan(
        strategy=Strategy.CANARY,
        steps=tuple(PlanStep(w, StepEffect.SET_WEIGHT, f"canary {w}%") for w in weights),
        interval=interval, threshold=threshold, max_holds=max_holds, hook_phases=frozenset(hook_phases),
    )


def bluegreen_plan(*, interval: float, post_promotion_window: float, threshold: int,
                   scale_down_delay: float, max_holds: int = DEFAULT_MAX_HOLDS,
                   hook_phases: Iterable[HookPhase] = ()) -> Plan:
    """Preview analysis on the inactive color, the switch, then one analysis per interval of the window."""
    windows = 1 if interval <= 0 else max(1, math.ceil(post_promotion_window / interval))
    steps = [PlanStep(0, StepEffect.OBSERVE, "pre-promotion (preview)"),
             PlanStep(100, StepEffect.SWITCH, f"post-promotion 1/{windows}")]
    steps += [PlanStep(100, StepEffect.OBSERVE, f"post-promotion {i}/{windows}") for i in range(2, windows + 1)]
    return Plan(strategy=Strategy.BLUEGREEN, steps=tuple(steps), interval=interval, threshold=threshold,
                max_holds=max_holds, scale_down_delay=scale_down_delay, hook_phases=frozenset(hook_phases))


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
    pending: str | None = None
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


def started_data(*, stack: StackName, service: str, image: str, baseline: TrafficState, plan: Plan) -> JSONObject:
    """The STARTED entry: the plan and the baseline, so replay needs nothing but the journal."""
    return {"stack": stack, "service": service, "image": image, "plan": plan.to_json(),
            "baseline": traffic_json(baseline)}


def traffic_json(t: TrafficState) -> JSONObject:
    return {"strategy": t.strategy.value, "stable_image": t.stable_image, "canary_image": t.canary_image,
            "canary_weight": t.canary_weight, "active_color": None if t.active_color is None else t.active_color.value,
            "preview_image": t.preview_image}


def traffic_from_json(data: JSONObject) -> TrafficState:
    color = data.get("active_color")
    canary = data.get("canary_image")
    preview = data.get("preview_image")
    return TrafficState(strategy=Strategy(str(data["strategy"])), stable_image=str(data["stable_image"]),
                        canary_image=None if canary is None else str(canary),
                        canary_weight=int(cast(int, data.get("canary_weight", 0))),
                        active_color=None if color is None else Color(str(color)),
                        preview_image=None if preview is None else str(preview))


def initial_state(entry: Entry) -> RolloutState:
    if entry.kind is not EntryKind.STARTED:
        raise ValueError(f"the first journal entry must be {EntryKind.STARTED.value}, but {entry.kind.value} was given")
    d = entry.data
    baseline = traffic_from_json(cast(JSONObject, d["baseline"]))
    return RolloutState(
        rollout_id=entry.rollout_id, stack=StackName(str(d["stack"])), service=str(d["service"]),
        image=str(d["image"]), baseline_image=baseline.stable_image,
        plan=Plan.from_json(cast(JSONObject, d["plan"])), initial_color=baseline.active_color,
        active_color=baseline.active_color, weight=baseline.canary_weight, last_seq=entry.seq,
    )


def replay(entries: Sequence[Entry]) -> RolloutState:
    """Rebuild a rollout's state from its whole journal."""
    state = initial_state(entries[0])
    return fold(state, entries[1:])


def fold(state: RolloutState, entries: Iterable[Entry]) -> RolloutState:
    for e in entries:
        state = apply(state, e)
    return state


Changes = dict[str, object]


def apply(s: RolloutState, e: Entry) -> RolloutState:
    """The reducer: one journal entry's effect on the state (one copy per entry: replay is on the hot path)."""
    changes = _changes(s, e)
    changes["last_seq"] = e.seq
    # The change sets are built per field above; replace() re-checks nothing, so type it loosely here only.
    copy_with: Callable[..., RolloutState] = replace
    return copy_with(s, **changes)


def _changes(s: RolloutState, e: Entry) -> Changes:
    d = e.data
    match e.kind:
        case EntryKind.CHECKPOINT:
            return {"checkpoint": cast(JSONObject, d["state"]),
                    "phase": Phase.PROGRESSING if s.phase is Phase.PENDING else s.phase}
        case EntryKind.HOOK:
            phase = HookPhase(str(d["phase"]))
            bad = [r for r in cast(Sequence[Mapping[str, JSONValue]], d["results"]) if not r["ok"]]
            failed = tuple(str(r["name"]) for r in bad)
            out: Changes = {"hooks_done": s.hooks_done | {str(d["key"])}}
            if phase is HookPhase.STEP:
                out["step_hook_failures"] = s.step_hook_failures + failed
                out["step_hook_reasons"] = s.step_hook_reasons + tuple(str(r.get("detail") or "") for r in bad)
            elif phase in (HookPhase.PRE_ROLLOUT, HookPhase.CONFIRM_PROMOTION):
                out["gate_failures"] = s.gate_failures + failed
            return out
        case EntryKind.INTENT:
            return {"pending": str(d["action"])}
        case EntryKind.APPLIED:
            return {"pending": None, **_applied(s, d, e.at)}
        case EntryKind.ERROR:
            if d["action"] == "revert":
                # The rollback itself failed: terminal, an operator must act (exit 4).
                return {"pending": None, "phase": Phase.FAILED, "reason": f"rollback failed: {d['message']}"}
            return {"pending": None, "error": f"{d['action']} failed: {d['message']}"}
        case EntryKind.ANALYSIS:
            return _analysed(s, Verdict(str(d["verdict"])), failed_checks(d.get("checks")), _starvation(d))
        case EntryKind.DECISION:
            return _decided(s, Decision(str(d["decision"])), str(d.get("reason", "")), bool(d.get("override")),
                            e.at)
        case EntryKind.OPERATOR:
            return _operator(s, str(d["action"]), str(d.get("reason", "")))
        case EntryKind.PHASE:
            return {"phase": Phase(str(d["phase"])), "reason": str(d.get("reason", s.reason))}
        case EntryKind.VERIFIED:
            return {"verified": bool(d["ok"])}
        case EntryKind.STARTED:
            raise ValueError("a rollout's journal has exactly one started entry, but a second was given")
    return {}


def _applied(s: RolloutState, d: JSONObject, at: float) -> Changes:
    action = str(d["action"])
    if action == "prepare":
        return {"prepared": True}
    if action == "promote":
        return {"promoted": True}
    if action == "revert":
        return {"reverted": True, "weight": 0, "active_color": s.initial_color}
    out: Changes = {}
    if action == "set_weight":
        out["weight"] = int(cast(int, d["weight"]))
    elif action == "switch":
        out["active_color"] = Color(str(d["color"]))
    if "step" in d:
        # A plan step is now live: its analysis window starts here.
        out.update(applied=True, step=int(cast(int, d["step"])), step_started_at=at, window_started_at=at,
                   attempt=0)
    return out


_SPRT_COUNTS = re.compile(r"(\d+)/(\d+) canary errors")


def failed_checks(checks: object) -> tuple[str, ...]:
    """``name value > limit`` for each failed check of an analysis entry, for the rollback's reason."""
    out: list[str] = []
    for c in checks if isinstance(checks, list) else []:
        if not isinstance(c, dict) or c.get("verdict") != Verdict.FAIL.value:
            continue
        value, limit, name = c.get("value"), c.get("limit"), c.get("name")
        shown = f"{value:g}" if isinstance(value, int | float) else "no data"
        # The SPRT's value is a log-likelihood ratio: lead with the counts a reader can check.
        counts = _SPRT_COUNTS.match(str(c.get("detail") or "")) if name == "error-rate-sprt" else None
        if counts and isinstance(value, int | float) and isinstance(limit, int | float):
            errors, requests = int(counts.group(1)), int(counts.group(2))
            out.append(f"{name} {errors}/{requests} canary requests failed ({100 * errors / max(requests, 1):.1f}%), "
                       f"LLR {value:.3g} > {limit:.3g}")
            continue
        # Every gate fails above its limit but the Mann-Whitney p-value, which fails below it.
        sign = "<" if name == "latency-mann-whitney" else ">"
        out.append(f"{name} {shown} {sign} {limit:g}" if isinstance(limit, int | float) else f"{name} {shown}")
    return tuple(out)


def _starvation(d: Mapping[str, JSONValue]) -> str:
    """``(M canary requests, K needed)`` from an analysis entry's journaled traffic and ``needed``."""
    traffic = d.get("traffic")
    canary = traffic.get("canary") if isinstance(traffic, Mapping) else None
    seen = canary.get("requests") if isinstance(canary, Mapping) else None
    requests = int(seen) if isinstance(seen, int | float) else 0
    needed = d.get("needed")
    text = f"{requests} canary requests" + (f", {int(needed)} needed" if isinstance(needed, int | float) else "")
    stable = traffic.get("baseline") if isinstance(traffic, Mapping) else None
    seen_stable = stable.get("requests") if isinstance(stable, Mapping) else None
    if isinstance(needed, int | float) and requests >= needed and isinstance(seen_stable, int | float):
        # Enough canary traffic: what was short is the stable's, which the comparison needs as well.
        text += f"; {int(seen_stable)} stable requests"
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


def _operator(s: RolloutState, action: str, reason: str) -> Changes:
    if s.phase.terminal or s.phase is Phase.ROLLING_BACK:
        return {}  # too late to change course; the entry stays in the journal as a record
    if action == "pause" and s.phase in (Phase.PROGRESSING, Phase.PENDING):
        return {"paused": True, "phase": Phase.PAUSED}
    if action == "resume" and s.paused:
        return {"paused": False, "phase": Phase.PROGRESSING}
    if action == "abort":
        return {"abort_requested": reason or "aborted by operator"}
    if action == "promote" and s.phase is not Phase.PROMOTING:
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
