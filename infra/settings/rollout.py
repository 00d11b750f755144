"""Typed rollout settings: stack-wide defaults under ``gantry:rollout`` and per-service overrides.

Config layer: loaded by ``infra.config``; read by the rollout engine and the CLI. The pluggable keys
(``target``, ``metrics``, ``hooks``, ``notifications``) validate against the backends registered in
``infra.registry``; this module only declares their common base models and the older spellings it
still accepts (``metrics.provider``, ``metrics.url: sandbox``, ``target: <name>``, hooks without ``kind``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, GetCoreSchemaHandler, model_validator
from pydantic_core import core_schema

from components.spec import Spec
from components.validation import Violation, raise_first
from infra import registry
from infra.secret_value import SecretValue

if TYPE_CHECKING:
    from infra.config import GantryConfig

_DURATION = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | float) -> float:
    """'30s' -> 30.0, '500ms' -> 0.5, '2m' -> 120.0 (a parsed ``Duration`` is returned as its seconds).

    Raises ValueError in the shared template. Only the edges (config, CLI flags) call it with text.
    """
    if isinstance(text, float | int) and not isinstance(text, bool):
        return float(text)
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"duration must be a number with a unit ms, s, m or h (e.g. 30s), but {text!r} was given")
    return float(match["n"]) * _UNIT_SECONDS[match["unit"]]


class Duration(float):
    """Seconds, parsed once from the stack's text (``30s``, ``500ms``); serialises back as that text."""

    text: str

    def __new__(cls, text: str) -> Duration:
        self = super().__new__(cls, parse_duration(text))
        self.text = text.strip()
        return self

    def __repr__(self) -> str:
        return f"Duration({self.text!r})"

    def __str__(self) -> str:
        return self.text

    def __reduce__(self) -> tuple[Any, ...]:
        return (Duration, (self.text,))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def parse(value: object) -> Duration:
            if isinstance(value, Duration):
                return value
            if isinstance(value, str):
                return Duration(value)
            raise ValueError(f"duration must be a number with a unit ms, s, m or h (e.g. 30s), "
                             f"but {value!r} was given")

        return core_schema.no_info_plain_validator_function(
            parse, serialization=core_schema.plain_serializer_function_ser_schema(lambda d: d.text))


def steps_violations(steps: list[int], field: str = "steps") -> list[Violation]:
    """Steps are strictly increasing weights within 1..100."""
    out: list[Violation] = []
    if not steps:
        return [Violation(field, "a non-empty list of weights", steps)]
    for i, w in enumerate(steps):
        if not 1 <= w <= 100:
            out.append(Violation(f"{field}[{i}]", "within 1..100", w))
    if any(b <= a for a, b in itertools.pairwise(steps)):
        out.append(Violation(field, "strictly increasing", steps))
    return out


def _state_url(text: str) -> str:
    from infra.settings.state_url import parse_state_url

    parse_state_url(text)
    return text.strip()


class MetricsBackend(Spec):
    """Base of a metrics backend's settings (``rollout.metrics``, one model per backend, ``kind`` picks it).

    Each backend module subclasses it (through ``infra.rollout.backends``) and registers in
    ``registry.METRICS``; the config layer only asks what the stack alone decides.
    """

    kind: str = Field(description="Metrics backend. Default: prometheus.")
    offers_traffic: ClassVar[bool] = False
    """Gives per-version request, error and latency counts (else ``rollout.gates`` must judge the rollout)."""
    local: ClassVar[bool] = False
    """Reads the local sandbox (so a local stack driven through Pulumi has something to roll out)."""
    requires_gates: ClassVar[bool] = True
    """Without per-version traffic, ``rollout.gates`` must judge the rollout (the no-op backend: hooks do)."""
    needs_kubeconfig: ClassVar[bool] = False
    """Builds its provider from the cluster's kubeconfig (resolved from the stack's outputs when unset)."""

    def violations(self, cfg: GantryConfig, settings: RolloutSettings, prefix: str) -> list[Violation]:
        """What makes these settings unworkable for ``cfg`` (a missing URL or region), keys under ``prefix``."""
        return []

    def secret_values(self, environ: Mapping[str, str]) -> list[str]:
        """The secrets the backend reads from ``environ`` (API keys): masked in every sink."""
        return []

    def service_violations(self, cfg: GantryConfig, service: str, prefix: str) -> list[Violation]:
        """What one service needs from this backend (a health-query template for its router)."""
        return []


class TargetBackend(Spec):
    """Base of a rollout target's settings (``rollout.target``: a name, or ``{kind: <name>, ...}``)."""

    kind: str = Field(description="What is shifted. Default: pulumi.")
    default_metrics: ClassVar[str | None] = None
    """The metrics backend a stack gets when it names none (the sandbox target: the sandbox's Prometheus)."""
    program_routes: ClassVar[bool] = False
    """The stack's Pulumi program renders the routing this target shifts (so it renders it for the service)."""

    def local_problem(self, cfg: GantryConfig, settings: RolloutSettings) -> str | None:
        """Why this target has nothing to roll out on ``cfg`` (None when it has)."""
        return None


class NotifierBackend(Spec):
    """Base of a notifier's settings (one entry of ``rollout.notifications``)."""

    kind: str = Field(description="Notifier. Default: webhook.")

    def secret_values(self, index: int, environ: Mapping[str, str]) -> list[str]:
        """The secrets this notifier holds once resolved from ``environ`` (a URL); InputError when unset."""
        return []


HookPhaseName = Literal["pre-rollout", "step", "confirm-promotion", "post-rollout", "rollback"]


class HookBackend(Spec):
    """Base of a hook's settings (one entry of ``rollout.hooks``): a name, a phase and a timeout."""

    kind: str = Field(description="http (POST a JSON payload) or command (run argv, never a shell). Required, "
                                  "or implied by url / argv.")
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$", description="Hook name. Required.")
    phase: HookPhaseName = Field(description="When it runs. Required.")
    timeout: Duration = Field(default=Duration("30s"), description="Kill / give up after this. Default: 30s.")

    def resolved_env(self, index: int, environ: Mapping[str, str]) -> dict[str, str]:
        """The variables the hook is given, resolved from ``environ``; InputError when one is unset."""
        return {}

    def secret_values(self, env: Mapping[str, str]) -> list[str]:
        """Which of the resolved ``env`` values are secrets."""
        return []


def refuse_secure(value: object, how: str) -> object:
    """A ``secure:`` value cannot be decrypted offline: refuse it at load, saying what to do instead."""
    if isinstance(value, SecretValue):
        # Worded "<field> must be ..." so the config loader reports it against the key, in the one template.
        raise ValueError(f"value must be a plain value, but a secure: value was given; Gantry reads stack files "
                         f"offline and cannot decrypt it: {how}")
    return value


# Older and shorter spellings, turned into `{kind: ...}` before validation (data only, never a module).

def _metrics_shorthand(value: object) -> object:
    if not isinstance(value, dict):
        return value
    out = dict(value)
    if "provider" in out and "kind" not in out:
        out["kind"] = out.pop("provider")
    if out.get("url") == "sandbox" and out.get("kind", "prometheus") == "prometheus":
        out.pop("url")
        out["kind"] = "sandbox"  # `metrics.url: sandbox` is the sandbox's own Prometheus
    return out


def _target_shorthand(value: object) -> object:
    return {"kind": value} if isinstance(value, str) else value


def _hook_shorthand(value: object) -> object:
    if not isinstance(value, dict) or "kind" in value:
        return value
    has_url, has_argv = value.get("url") is not None, value.get("argv") is not None
    if has_url == has_argv:
        return value  # neither or both: "kind must be one of command, http"
    return {"kind": "http" if has_url else "command", **value}


registry.METRICS.shorthand = _metrics_shorthand
registry.TARGETS.shorthand = _target_shorthand
registry.HOOKS.shorthand = _hook_shorthand


class RestartsSettings(Spec):
    """The restarts gate: container restarts of the canary's pods (the seed: more than 5 rolls back)."""

    kubeconfig: str | None = Field(
        default=None,
        description="Path to a kubeconfig. Default: the cluster stack's exported kubeconfig output.")
    context: str | None = Field(default=None, description="Kubeconfig context. Default: its current context.")


class GateSettings(Spec):
    """An extra metric gate on the stack's metrics provider: ``expr`` must be at most ``max``."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$", description="Gate name. Required.")
    expr: str = Field(description="Provider-specific query (PromQL, argv, metric name). Required.")
    max: float = Field(description="Highest passing value. Required.")
    min_count: int = Field(default=1, ge=1, description="Data points needed; fewer fails safe. Default: 1.")


class SprtSettings(Spec):
    """The sequential judge's hypotheses and error probabilities (see ``infra.rollout.analysis``).

    By default the hypotheses straddle the strategy's error gate ``L`` (``1 - minSuccessRate`` for a canary,
    ``blueGreenMaxErrorRate`` for blue/green): ``p0 = 0.6 L`` and ``p1 = 4 L`` for a canary, which is 0.3%
    against 2% for the seed's 99.5% gate; ``p0 = L / 2`` and ``p1 = 2 L`` for blue/green (0.5% against 2%),
    whose windows after the switch see all the traffic and can afford a test that is indifferent at the gate.
    """

    p0: float | None = Field(default=None, gt=0, lt=1,
                             description="Healthy error probability (H0). Default: 0.6 x the canary gate, "
                                         "0.5 x the blue/green gate.")
    p1: float | None = Field(default=None, gt=0, lt=1,
                             description="Bad error probability (H1). Default: 4 x the canary gate, "
                                         "2 x the blue/green gate.")
    alpha: float = Field(default=0.01, gt=0, lt=0.5,
                         description="Chance a step fails a canary at p0 (a needless rollback). Default: 0.01.")
    beta: float = Field(default=0.05, gt=0, lt=0.5,
                        description="Chance a step passes a canary at p1 (a missed rollback). Default: 0.05.")

    @model_validator(mode="after")
    def _ordered(self) -> SprtSettings:
        if self.p0 is not None and self.p1 is not None and not self.p0 < self.p1:
            raise_first([Violation("sprt.p1", f"greater than p0 ({self.p0})", self.p1)])
        return self


HYPOTHESES_PER_GATE = {"canary": (0.6, 4.0), "bluegreen": (0.5, 2.0)}
"""Default (H0, H1) as multiples of the strategy's error gate (see ``SprtSettings``)."""


class RolloutSettings(Spec):
    """How a rollout proceeds and when it is judged failed. Defaults follow Flagger and the seed rules."""

    steps: list[int] = Field(default_factory=lambda: [10, 25, 50, 100], description="Default: 10,25,50,100.")
    interval: Duration = Field(default=Duration("30s"), description="Wait before each analysis. Default: 30s.")
    threshold: int = Field(default=2, ge=1, le=100, description="Failed analyses before rollback. Default: 2.")
    max_error_rate: float = Field(default=0.05, ge=0, le=1, description="Error-rate limit. Default: 0.05.")
    max_p95_ms: float = Field(default=2000, gt=0, description="p95 latency limit in ms. Default: 2000.")
    max_restarts: int = Field(default=5, ge=0, description="Container restarts limit. Default: 5.")
    min_success_rate: float = Field(
        default=0.995, gt=0, le=1,
        description="Canary gate (the seed's): the canary's success rate must stay at or above this. "
                    "Default: 0.995.")
    blue_green_max_error_rate: float = Field(
        default=0.01, ge=0, le=1,
        description="Blue/green gate (the seed's): more errors than this after the switch switches back. "
                    "Default: 0.01.")
    sprt: SprtSettings = Field(default_factory=SprtSettings,
                               description="Sequential judge hypotheses. Default: derived from the gate.")
    poll_interval: Duration = Field(
        default=Duration("1s"),
        description="How often the sequential judge looks at new evidence during a step, to fail it the moment "
                    "Wald's boundary is crossed. Default: 1s (the sandbox's scrape interval).")
    judge: Literal["sprt", "threshold"] = Field(default="sprt", description="Analysis judge. Default: sprt.")
    min_samples: int = Field(default=50, ge=1, description="Requests needed for a verdict. Default: 50.")
    post_promotion_window: Duration = Field(default=Duration("60s"),
                                            description="Blue/green watch window. Default: 60s.")
    scale_down_delay: Duration = Field(default=Duration("30s"), description="Before the old color idles. Default: 30s.")
    target: Annotated[TargetBackend, registry.TARGETS.field()] = Field(
        default_factory=lambda: registry.TARGETS.make_default(),
        description="What is shifted: a registered target (pulumi: the Automation API; haproxy: the local "
                    "sandbox), by name or as {kind: <name>, ...}. Default: pulumi.")
    metrics: Annotated[MetricsBackend, registry.METRICS.field()] = Field(
        default_factory=lambda: registry.METRICS.make_default(),
        description="Metrics backend, {kind: <name>, ...its settings}. Default: prometheus (the target's own, "
                    "if it has one).")
    restarts: RestartsSettings = Field(
        default_factory=RestartsSettings,
        description="Where the restarts gate counts restarts. Default: the cluster's kubeconfig output.")
    step_weight: int | None = Field(
        default=None,
        description="Linear canary: weight added per step (with maxWeight); replaces steps. Default: none.")
    max_weight: int | None = Field(default=None, description="Linear canary: last weight. Default: none.")
    max_holds: int = Field(
        default=3, ge=1, le=100,
        description="Consecutive inconclusive analyses that count as one failure. Default: 3.")
    lock_ttl: Duration = Field(default=Duration("60s"),
                               description="Stack lease lifetime without a heartbeat. Default: 60s.")
    state: Annotated[str, AfterValidator(_state_url)] = Field(
        default="sqlite",
        description="Where the journal, lease and checkpoints live (stack-wide; see infra.settings.state_url): "
                    "sqlite, or dynamodb://<table>?region=<region>[&checkpoints=s3://<bucket>/<prefix>]. "
                    "Default: sqlite (.gantry/journal.db on this machine).")
    hooks: list[Annotated[HookBackend, registry.HOOKS.field()]] = Field(
        default_factory=list, description="Webhooks and commands, each {kind: http | command, ...}. Default: none.")
    notifications: list[Annotated[NotifierBackend, registry.NOTIFIERS.field()]] = Field(
        default_factory=list, description="Event notifiers, each {kind: webhook | slack | noop, ...}. Default: none.")
    gates: list[GateSettings] = Field(default_factory=list, description="Extra metric gates. Default: none.")

    @model_validator(mode="before")
    @classmethod
    def _target_metrics(cls, data: object) -> object:
        # A target with metrics of its own (the sandbox's Prometheus) provides them when the stack names none.
        if isinstance(data, dict) and "metrics" not in data:
            target = registry.TARGETS.normalise(data.get("target", {}))
            kind = target.get("kind") if isinstance(target, dict) else getattr(target, "kind", None)
            if isinstance(kind, str) and kind in registry.TARGETS:
                default = getattr(registry.TARGETS.model(kind), "default_metrics", None)
                if default is not None:
                    return {**data, "metrics": {"kind": default}}
        return data

    @model_validator(mode="after")
    def _check(self) -> RolloutSettings:
        raise_first(steps_violations(self.steps))
        raise_first(linear_violations(self.step_weight, self.max_weight))
        names = [h.name for h in self.hooks]
        if len(set(names)) != len(names):
            raise_first([Violation("hooks", "uniquely named", names)])
        for strategy in ("canary", "bluegreen"):
            self.sprt_hypotheses(strategy)  # conflicting overrides fail at load, not at the first analysis
        return self

    def error_gate(self, strategy: str) -> float:
        """The error-rate gate for ``strategy`` ("canary" or "bluegreen"), never above the absolute limit."""
        # Rounded: 1 - 0.995 is 0.0050000000000000044 in binary floating point, and limits are shown to users.
        gate = round(1.0 - self.min_success_rate, 12) if strategy == "canary" else self.blue_green_max_error_rate
        return min(gate, self.max_error_rate)

    def sprt_hypotheses(self, strategy: str) -> tuple[float, float]:
        """(p0, p1) of the sequential judge for ``strategy``: the stack's values, else derived from the gate."""
        gate = self.error_gate(strategy)
        low, high = HYPOTHESES_PER_GATE["canary" if strategy == "canary" else "bluegreen"]
        p0 = self.sprt.p0 if self.sprt.p0 is not None else low * gate
        p1 = self.sprt.p1 if self.sprt.p1 is not None else high * gate
        if not 0 < p0 < p1 < 1:
            raise_first([Violation("sprt", f"hypotheses 0 < p0 < p1 < 1 for the {strategy} gate of {gate:g}",
                                   {"p0": p0, "p1": p1})])
        return p0, p1

    def weights(self) -> list[int]:
        """The canary weights: the linear series when stepWeight is set, else ``steps``."""
        if self.step_weight is not None:
            top = self.max_weight if self.max_weight is not None else 100
            out = list(range(self.step_weight, top + 1, self.step_weight))
            return out if out and out[-1] == top else [*out, top]
        return list(self.steps)


def linear_violations(step_weight: int | None, max_weight: int | None, prefix: str = "") -> list[Violation]:
    """stepWeight within 1..100 and maxWeight within stepWeight..100; maxWeight needs stepWeight."""
    if step_weight is None:
        return [Violation(f"{prefix}maxWeight", "unset unless stepWeight is set", max_weight)] if max_weight else []
    if not 1 <= step_weight <= 100:
        return [Violation(f"{prefix}stepWeight", "within 1..100", step_weight)]
    top = 100 if max_weight is None else max_weight
    if not step_weight <= top <= 100:
        return [Violation(f"{prefix}maxWeight", f"within stepWeight ({step_weight})..100", max_weight)]
    return []

