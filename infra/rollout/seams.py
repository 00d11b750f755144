"""The rollout engine's seams: the small protocols the scheduler drives, and the values crossing them.

The scheduler (pure state machine) gets every effect through these, so tests drive it with fakes
and a fake clock. Implementations: targets (PulumiStackTarget, HaproxyTarget), metrics providers
(http, prometheus, cloudwatch, kubernetes, command), hooks, notifiers, journal and lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NewType, Protocol, runtime_checkable

from components.spec import Color, Strategy

RolloutId = NewType("RolloutId", str)
StackName = NewType("StackName", str)
JSONValue = str | int | float | bool | None | Sequence["JSONValue"] | Mapping[str, "JSONValue"]
JSONObject = Mapping[str, JSONValue]


class Phase(StrEnum):
    """Where a rollout is. Terminal phases: PROMOTED, ROLLED_BACK, FAILED."""

    PENDING = "pending"
    PROGRESSING = "progressing"
    PAUSED = "paused"
    PROMOTING = "promoting"
    PROMOTED = "promoted"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"
    """The rollback itself failed: an operator must act (exit code 4)."""

    @property
    def terminal(self) -> bool:
        return self in (Phase.PROMOTED, Phase.ROLLED_BACK, Phase.FAILED)


class Verdict(StrEnum):
    """Outcome of one analysis. INCONCLUSIVE holds the step: it never passes."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


class Decision(StrEnum):
    """What the scheduler does after an analysis."""

    ADVANCE = "advance"
    HOLD = "hold"
    PROMOTE = "promote"
    ROLLBACK = "rollback"


# --------------------------------------------------------------------------- target


@dataclass(frozen=True, slots=True)
class TrafficState:
    """What the target serves now. ``canary_weight`` is 0..100; blue/green uses ``active_color``."""

    strategy: Strategy
    stable_image: str
    canary_image: str | None = None
    canary_weight: int = 0
    active_color: Color | None = None
    preview_image: str | None = None


class Target(Protocol):
    """What traffic is shifted on. All methods are idempotent: resume may call them twice."""

    def checkpoint(self) -> JSONObject:
        """Snapshot everything needed to restore the last good state; journaled before any mutation."""
        ...

    def prepare(self, image: str) -> None:
        """Deploy the new version with no traffic (canary at weight 0, or on the inactive color)."""
        ...

    def set_weights(self, canary_weight: int) -> None:
        """Canary: send ``canary_weight`` percent to the canary, the rest to stable."""
        ...

    def switch(self, color: Color) -> None:
        """Blue/green: make ``color`` the active one."""
        ...

    def current(self) -> TrafficState:
        """Read the live state (used to verify the journal after a resume)."""
        ...

    def promote(self) -> None:
        """Canary: stable takes the canary image, weight 0, canary scaled down. Blue/green: idle the old color."""
        ...

    def revert(self, checkpoint: JSONObject) -> None:
        """Restore the checkpointed state. Raises on failure; the engine then escalates."""
        ...

    def finalize(self) -> None:
        """Release anything held for the rollout (processes, temp files). Never raises."""
        ...


@runtime_checkable
class ServingCheck(Protocol):
    """A target that can check what users see, beyond ``current()``: the engine's end check calls it."""

    def verify_serving(self, live: TrafficState) -> list[str]:
        """Problems (empty when none) between ``live``, which agrees with the journal, and what really serves."""
        ...


# --------------------------------------------------------------------------- metrics


class Track(StrEnum):
    """Which version a metric is about."""

    CANARY = "canary"
    BASELINE = "baseline"


@dataclass(frozen=True, slots=True)
class MetricQuery:
    """One question to a metrics provider. ``expr`` is backend-specific (PromQL, URL, argv, metric name)."""

    name: str
    expr: str
    track: Track = Track.CANARY
    window_seconds: float = 60.0
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Sample:
    """A metric value with the evidence behind it. ``count`` 0 means no data (which fails safe)."""

    value: float
    count: int = 1
    observations: tuple[float, ...] = ()


class MetricsProvider(Protocol):
    """One backend. ``query`` raises ``MetricsUnavailable`` when it cannot answer."""

    name: str

    def query(self, query: MetricQuery) -> float | Sample: ...

    def is_online(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class TrafficCounts:
    """Requests and errors for one track over an analysis window, plus latency samples in ms."""

    requests: int
    errors: int
    latencies_ms: tuple[float, ...] = ()
    p95_ms: float | None = None
    p99_ms: float | None = None
    restarts: int = 0


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One gate: its value against its limit."""

    name: str
    verdict: Verdict
    value: float | None
    limit: float | None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """All gates for one analysis. The overall verdict is FAIL if any gate fails, else INCONCLUSIVE if any is."""

    verdict: Verdict
    checks: tuple[CheckResult, ...] = ()
    traffic: Mapping[Track, TrafficCounts] = field(default_factory=dict)
    """The counts the judge read per track (journaled; zero-downtime is measured on BASELINE). Default: none."""
    needed: int | None = None
    """Canary requests a verdict needs (``minSamples``), journaled so that a rollout starved of traffic says
    how far short it fell. Default: None (the judge does not say)."""

    @staticmethod
    def combine(checks: Sequence[CheckResult], traffic: Mapping[Track, TrafficCounts] | None = None
                ) -> AnalysisResult:
        verdicts = {c.verdict for c in checks}
        if not checks:
            # No gates means no evidence: missing data fails safe.
            return AnalysisResult(Verdict.FAIL, (), dict(traffic or {}))
        if Verdict.FAIL in verdicts:
            overall = Verdict.FAIL
        elif Verdict.INCONCLUSIVE in verdicts:
            overall = Verdict.INCONCLUSIVE
        else:
            overall = Verdict.PASS
        return AnalysisResult(overall, tuple(checks), dict(traffic or {}))


@dataclass(frozen=True, slots=True)
class AnalysisContext:
    """What an analysis is about: the step, its weight and the window ``step_started_at``..``now``.

    The window starts when the step was applied (or after a failed analysis was held) and grows across
    inconclusive holds, so the counts a judge reads are cumulative within the step.
    """

    rollout_id: RolloutId
    step_index: int
    weight: int
    step_started_at: float
    now: float
    canary_version: str
    baseline_version: str
    final: bool = False
    """The last analysis the step's hold budget allows: one more INCONCLUSIVE counts as a failure, so a
    sequential judge decides here by truncation instead of holding."""


class Analysis(Protocol):
    """Judges one step from metrics (threshold gates, or the sequential statistical judge)."""

    def analyse(self, ctx: AnalysisContext) -> AnalysisResult: ...


@runtime_checkable
class StreamingAnalysis(Analysis, Protocol):
    """A judge that also looks at the evidence while a step's interval runs, to fail it the moment it is bad.

    ``look`` returns FAIL only on conclusive evidence of a bad canary, and INCONCLUSIVE otherwise (missing
    data included: the end-of-interval ``analyse`` is the one that fails safe on it). It never passes.
    """

    def look(self, ctx: AnalysisContext) -> AnalysisResult: ...


# --------------------------------------------------------------------------- hooks and notifications


class HookPhase(StrEnum):
    PRE_ROLLOUT = "pre-rollout"
    STEP = "step"
    CONFIRM_PROMOTION = "confirm-promotion"
    POST_ROLLOUT = "post-rollout"
    ROLLBACK = "rollback"


@dataclass(frozen=True, slots=True)
class HookResult:
    ok: bool
    detail: str = ""


class Hook(Protocol):
    """An HTTP POST (2xx passes) or an argv command (exit 0 passes); never a shell; always a timeout."""

    # Read-only properties, so frozen dataclasses satisfy the protocol as well as plain attributes do.
    @property
    def name(self) -> str: ...

    @property
    def phase(self) -> HookPhase: ...

    def run(self, payload: JSONObject) -> HookResult: ...


class EventKind(StrEnum):
    STARTED = "started"
    STEP_PASSED = "step_passed"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    rollout_id: RolloutId
    stack: StackName
    service: str
    message: str
    data: JSONObject = field(default_factory=dict)


class Notifier(Protocol):
    """Delivers events (Slack-compatible or generic webhooks). Never raises; secrets are masked."""

    def notify(self, event: Event) -> None: ...


# --------------------------------------------------------------------------- time


@runtime_checkable
class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...
