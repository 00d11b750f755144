"""Fakes at the rollout seams (targets, metrics, analysis, hooks, notifiers) for tests, benchmarks and drills.

``FakeTarget`` keeps its state in memory; ``JsonFileTarget`` keeps the same state in a JSON file so it
survives the process (the SIGKILL drills and ``target: file`` stacks use it). ``FakeMetrics`` answers
scripted values and can go offline (tests feed it to the real threshold gates of ``infra.rollout.analysis``);
``FakeAnalysis`` returns scripted verdicts.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from components.spec import Color, Strategy
from infra.rollout.clock import FakeClock
from infra.rollout.errors import CommandFailed, MetricsUnavailable
from infra.rollout.seams import (
    AnalysisContext,
    AnalysisResult,
    CheckResult,
    Event,
    HookPhase,
    HookResult,
    JSONObject,
    MetricQuery,
    Sample,
    TrafficState,
    Verdict,
)

__all__ = ["FakeAnalysis", "FakeClock", "FakeHook", "FakeMetrics", "FakeTarget", "JsonFileTarget",
           "RecordingNotifier"]

TargetState = dict[str, str | int | None]


def initial_target_state(strategy: Strategy, image: str, color: Color = Color.BLUE) -> TargetState:
    if strategy is Strategy.CANARY:
        return {"strategy": strategy.value, "stable_image": image, "canary_image": None, "canary_weight": 0}
    other = color.other
    return {"strategy": strategy.value, "active_color": color.value, f"{color.value}_image": image,
            f"{other.value}_image": None, "idle_color": other.value}


class FakeTarget:
    """An in-memory target with the documented semantics, call recording and failure injection.

    ``fail`` maps a method name to the call numbers (1-based) that raise ``CommandFailed``, the way a
    failed ``pulumi up`` surfaces; ``fail_always`` names methods that always raise.
    """

    def __init__(self, strategy: Strategy = Strategy.CANARY, image: str = "app:1.0", *,
                 color: Color = Color.BLUE, fail: Mapping[str, Iterable[int]] | None = None,
                 fail_always: Iterable[str] = ()) -> None:
        self._state: TargetState = initial_target_state(strategy, image, color)
        self.fail = {k: set(v) for k, v in (fail or {}).items()}
        self.fail_always = set(fail_always)
        self.calls: list[tuple[str, tuple[str | int, ...]]] = []
        self.finalized = False

    # state storage (JsonFileTarget overrides these two)
    def _load(self) -> TargetState:
        return self._state

    def _save(self, state: TargetState) -> None:
        self._state = state

    def _call(self, name: str, *args: str | int) -> None:
        self.calls.append((name, args))
        count = sum(1 for c in self.calls if c[0] == name)
        if name in self.fail_always or count in self.fail.get(name, set()):
            raise CommandFailed("up", f"injected failure in {name} (call {count})")

    def count(self, name: str) -> int:
        return sum(1 for c in self.calls if c[0] == name)

    # the Target protocol
    def checkpoint(self) -> JSONObject:
        self._call("checkpoint")
        return cast(JSONObject, copy.deepcopy(self._load()))

    def prepare(self, image: str) -> None:
        self._call("prepare", image)
        s = dict(self._load())
        if s["strategy"] == Strategy.CANARY.value:
            s["canary_image"] = image
            s["canary_weight"] = 0
        else:
            idle = Color(str(s["active_color"])).other
            s[f"{idle.value}_image"] = image
        self._save(s)

    def set_weights(self, canary_weight: int) -> None:
        self._call("set_weights", canary_weight)
        if not 0 <= canary_weight <= 100:
            raise ValueError(f"canaryWeight must be within 0..100, but {canary_weight} was given")
        s = dict(self._load())
        if s["strategy"] != Strategy.CANARY.value or s.get("canary_image") is None:
            raise CommandFailed("up", "set_weights needs a prepared canary")
        s["canary_weight"] = canary_weight
        self._save(s)

    def switch(self, color: Color) -> None:
        self._call("switch", color.value)
        s = dict(self._load())
        if s.get(f"{color.value}_image") is None:
            raise CommandFailed("up", f"switch to {color.value} needs a deployed {color.value}")
        s["active_color"] = color.value
        self._save(s)

    def current(self) -> TrafficState:
        s = self._load()
        if s["strategy"] == Strategy.CANARY.value:
            canary = s.get("canary_image")
            return TrafficState(Strategy.CANARY, str(s["stable_image"]),
                                None if canary is None else str(canary), int(cast(int, s["canary_weight"])))
        active = Color(str(s["active_color"]))
        preview = s.get(f"{active.other.value}_image")
        return TrafficState(Strategy.BLUEGREEN, str(s[f"{active.value}_image"]), active_color=active,
                            preview_image=None if preview is None else str(preview))

    def promote(self) -> None:
        self._call("promote")
        s = dict(self._load())
        if s["strategy"] == Strategy.CANARY.value:
            if s.get("canary_image") is not None:
                s["stable_image"] = s["canary_image"]
            s["canary_image"] = None
            s["canary_weight"] = 0
        else:
            s["idle_color"] = Color(str(s["active_color"])).other.value
        self._save(s)

    def revert(self, checkpoint: JSONObject) -> None:
        self._call("revert")
        self._save(cast(TargetState, copy.deepcopy(dict(checkpoint))))

    def finalize(self) -> None:
        self.finalized = True


class JsonFileTarget(FakeTarget):
    """FakeTarget whose state lives in a JSON file, written atomically, so it survives a SIGKILL."""

    def __init__(self, path: Path, strategy: Strategy = Strategy.CANARY, image: str = "app:1.0", *,
                 color: Color = Color.BLUE, fail: Mapping[str, Iterable[int]] | None = None,
                 fail_always: Iterable[str] = ()) -> None:
        super().__init__(strategy, image, color=color, fail=fail, fail_always=fail_always)
        self.path = path
        if not path.exists():
            self._save(initial_target_state(strategy, image, color))

    def _load(self) -> TargetState:
        return cast(TargetState, json.loads(self.path.read_text(encoding="utf-8")))

    def _save(self, state: TargetState) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(state, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


# --------------------------------------------------------------------------- metrics and analysis


MetricScript = Callable[[MetricQuery], "float | Sample"]


class FakeMetrics:
    """A MetricsProvider answering from a script: a value per query name, or a sequence consumed per call."""

    def __init__(self, values: Mapping[str, float | Sequence[float]] | None = None, *, name: str = "fake",
                 online: bool = True) -> None:
        self.name = name
        self.values: dict[str, float | list[float]] = {
            k: (list(v) if isinstance(v, Sequence) else v) for k, v in (values or {}).items()}
        self.online = online
        self.queries: list[MetricQuery] = []

    def query(self, query: MetricQuery) -> float | Sample:
        self.queries.append(query)
        if not self.online:
            raise MetricsUnavailable(f"{self.name} provider is offline")
        value = self.values.get(query.name)
        if value is None:
            return Sample(value=float("nan"), count=0)
        if isinstance(value, list):
            if not value:
                return Sample(value=float("nan"), count=0)
            return value.pop(0) if len(value) > 1 else value[0]
        return value

    def is_online(self) -> bool:
        return self.online


class FakeAnalysis:
    """Scripted verdicts, one per analysis; the last one repeats. Records every context it was given."""

    def __init__(self, verdicts: Sequence[Verdict] = (Verdict.PASS,), *, raises: BaseException | None = None) -> None:
        self.verdicts = list(verdicts) or [Verdict.PASS]
        self.raises = raises
        self.contexts: list[AnalysisContext] = []

    def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        self.contexts.append(ctx)
        if self.raises is not None:
            raise self.raises
        i = min(len(self.contexts) - 1, len(self.verdicts) - 1)
        verdict = self.verdicts[i]
        return AnalysisResult(verdict, (CheckResult("scripted", verdict, float(i), None),))


# --------------------------------------------------------------------------- hooks and notifications


@dataclass
class FakeHook:
    """A hook that passes or fails as told and records each payload."""

    name: str
    phase: HookPhase
    ok: bool | Sequence[bool] = True
    payloads: list[JSONObject] = field(default_factory=list)

    def run(self, payload: JSONObject) -> HookResult:
        self.payloads.append(payload)
        script = [self.ok] if isinstance(self.ok, bool) else list(self.ok)
        ok = script[min(len(self.payloads), len(script)) - 1]
        return HookResult(ok, "ok" if ok else f"{self.name} failed")


class RecordingNotifier:
    """Collects events in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def notify(self, event: Event) -> None:
        self.events.append(event)
