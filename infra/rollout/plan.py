"""Rollout plans: the steps a rollout walks through, built from the settings by the factory.

A plan is journaled in the rollout's STARTED entry (``infra.rollout.entries``), so a resume follows
the same plan; the scheduler (``infra.rollout.scheduler``) walks it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

from components.spec import Strategy
from infra.rollout.seams import HookPhase, JSONObject, JSONValue

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
