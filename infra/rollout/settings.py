"""Typed rollout settings: stack-wide defaults under ``gantry:rollout`` and per-service overrides.

Loaded by ``infra.config``; read by the rollout engine and the CLI.
"""

from __future__ import annotations

import itertools
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from components.spec import Spec
from components.validation import Violation, raise_first
from infra.secret_value import SecretValue

_DURATION = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """'30s' -> 30.0, '500ms' -> 0.5, '2m' -> 120.0. Raises ValueError in the shared template."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"duration must be a number with a unit ms, s, m or h (e.g. 30s), but {text!r} was given")
    return float(match["n"]) * _UNIT_SECONDS[match["unit"]]


def _duration(text: str) -> str:
    parse_duration(text)
    return text


Duration = Annotated[str, AfterValidator(_duration)]


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
    from infra.rollout.state.url import parse_state_url

    parse_state_url(text)
    return text.strip()


class MetricsSettings(Spec):
    """Where analysis metrics come from, how to authenticate there, and which health queries run."""

    provider: Literal["prometheus", "http", "cloudwatch", "kubernetes", "command"] = Field(
        default="prometheus", description="Metrics backend. Default: prometheus."
    )
    url: str | None = Field(
        default=None,
        description="Prometheus base URL or probe URL. Default: the query endpoint the cluster stack exports "
                    "(its managed Prometheus); set it for a self-run Prometheus.")
    auth: Literal["none", "sigv4", "google", "azure"] | None = Field(
        default=None,
        description="How queries authenticate: sigv4 (Amazon Managed Prometheus), google (Google Cloud Managed "
                    "Prometheus), azure (Azure Monitor) or none. Default: the exported endpoint's auth, else none.")
    region: str | None = Field(
        default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$",
        description="AWS region for cloudwatch and sigv4. Default: the stack's gantry:region.")
    queries: Literal["router", "app"] = Field(
        default="router",
        description="Health queries from the service's router data plane, or from the app's own "
                    "http_requests_total / http_request_duration_seconds. Default: router.")
    gateway: Literal["contour", "istio"] = Field(
        default="contour",
        description="Gateway API implementation whose metrics judge gateway-api services. Default: contour.")
    kubeconfig: str | None = Field(
        default=None,
        description="kubernetes provider: path to a kubeconfig. Default: the cluster stack's kubeconfig output.")
    context: str | None = Field(default=None, description="kubernetes provider: kubeconfig context. Default: current.")
    namespace: str | None = Field(
        default=None, description="kubernetes provider: namespace of the gates' pods. Default: the service's.")


class RestartsSettings(Spec):
    """The restarts gate: container restarts of the canary's pods (the seed: more than 5 rolls back)."""

    kubeconfig: str | None = Field(
        default=None,
        description="Path to a kubeconfig. Default: the cluster stack's exported kubeconfig output.")
    context: str | None = Field(default=None, description="Kubeconfig context. Default: its current context.")


HookPhaseName = Literal["pre-rollout", "step", "confirm-promotion", "post-rollout", "rollback"]

HOOK_BASE_ENV = ("PATH", "HOME")
"""What every command hook gets from Gantry's own environment; anything else must be listed in its ``env``."""
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


def _refuse_secure(value: object, how: str) -> object:
    if isinstance(value, SecretValue):
        # Worded "<field> must be ..." so the config loader reports it against the key, in the one template.
        raise ValueError(f"value must be a plain value, but a secure: value was given; Gantry reads stack files "
                         f"offline and cannot decrypt it: {how}")
    return value


class HookEnvSettings(Spec):
    """One variable a command hook may see: passed through from Gantry's environment, or set to ``value``."""

    name: str = Field(pattern=_ENV_NAME, description="Variable name. Required.")
    value: Annotated[str | None, BeforeValidator(lambda v: _refuse_secure(
        v, "keep the secret in the pipeline's environment and list the variable by name with secret: true"))] = (
        Field(default=None, description="Literal value. Default: none (Gantry's own value of the variable, "
                                        "which must be set)."))
    secret: bool = Field(default=False, description="Mask the value in the journal, logs and output. "
                                                    "Default: false.")

    @model_validator(mode="after")
    def _not_reserved(self) -> HookEnvSettings:
        if self.name.startswith("GANTRY_"):
            raise_first([Violation("name", "a name outside GANTRY_* (Gantry sets those itself)", self.name)])
        return self


def _env_entry(value: object) -> object:
    # `env: [KUBECONFIG]` is shorthand for `env: [{name: KUBECONFIG}]`.
    return {"name": value} if isinstance(value, str) else value


class HookSettings(Spec):
    """One hook: an HTTP POST (``url``, 2xx passes) or an argv command (``argv``, exit 0 passes); never a shell."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$", description="Hook name. Required.")
    phase: HookPhaseName = Field(description="When it runs. Required.")
    url: Annotated[str | None, BeforeValidator(lambda v: _refuse_secure(
        v, "use an argv hook instead and pass the token in its env with secret: true"))] = Field(
        default=None, description="POST a JSON payload here. Default: none.")
    argv: list[str] | None = Field(default=None, description="Command and arguments. Default: none.")
    timeout: Duration = Field(default="30s", description="Kill / give up after this. Default: 30s.")
    env: list[Annotated[HookEnvSettings, BeforeValidator(_env_entry)]] = Field(
        default_factory=list,
        description="Variables an argv hook sees besides PATH, HOME and GANTRY_*: names passed through from "
                    "Gantry's environment, or {name, value, secret}. Default: none (a minimal environment).")

    @model_validator(mode="after")
    def _one_kind(self) -> HookSettings:
        if (self.url is None) == (self.argv is None):
            raise_first([Violation("url", "set exactly when argv is not", self.url)])
        if self.argv is not None and not self.argv:
            raise_first([Violation("argv", "a non-empty list of arguments", self.argv)])
        if self.env and self.argv is None:
            raise_first([Violation("env", "empty for an HTTP hook (it runs no process)", [e.name for e in self.env])])
        names = [e.name for e in self.env]
        if len(set(names)) != len(names):
            raise_first([Violation("env", "a list of distinct variable names", names)])
        return self


class NotificationSettings(Spec):
    """A webhook that receives rollout events (started, step passed, promoted, rolled back, failed)."""

    kind: Literal["slack", "webhook"] = Field(default="webhook", description="Payload shape. Default: webhook.")
    url: Annotated[str | None, BeforeValidator(lambda v: _refuse_secure(
        v, "put the URL in the pipeline's secret store and set urlEnv to the variable's name"))] = Field(
        default=None, description="Webhook URL. Default: none (use urlEnv).")
    url_env: str | None = Field(
        default=None, pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="Environment variable holding the URL, so the secret stays in the pipeline's "
                    "secret store. Default: none.")

    @model_validator(mode="after")
    def _one_source(self) -> NotificationSettings:
        if (self.url is None) == (self.url_env is None):
            raise_first([Violation("url", "set exactly when urlEnv is not", "[hidden]" if self.url else None)])
        return self


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
    interval: Duration = Field(default="30s", description="Wait before each analysis. Default: 30s.")
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
        default="1s",
        description="How often the sequential judge looks at new evidence during a step, to fail it the moment "
                    "Wald's boundary is crossed. Default: 1s (the sandbox's scrape interval).")
    judge: Literal["sprt", "threshold"] = Field(default="sprt", description="Analysis judge. Default: sprt.")
    min_samples: int = Field(default=50, ge=1, description="Requests needed for a verdict. Default: 50.")
    post_promotion_window: Duration = Field(default="60s", description="Blue/green watch window. Default: 60s.")
    scale_down_delay: Duration = Field(default="30s", description="Before the old color idles. Default: 30s.")
    target: Literal["pulumi", "haproxy", "file"] = Field(
        default="pulumi",
        description="What is shifted: pulumi (Automation API), haproxy (the local sandbox) or file (a JSON "
                    "file under .gantry/targets/, for drills with no infrastructure). Default: pulumi.")
    metrics: MetricsSettings = Field(default_factory=MetricsSettings, description="Default: prometheus.")
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
    lock_ttl: Duration = Field(default="60s", description="Stack lease lifetime without a heartbeat. Default: 60s.")
    state: Annotated[str, AfterValidator(_state_url)] = Field(
        default="sqlite",
        description="Where the journal, lease and checkpoints live (stack-wide; see infra.rollout.state.url): "
                    "sqlite, or dynamodb://<table>?region=<region>[&checkpoints=s3://<bucket>/<prefix>]. "
                    "Default: sqlite (.gantry/journal.db on this machine).")
    hooks: list[HookSettings] = Field(default_factory=list, description="Webhooks and commands. Default: none.")
    notifications: list[NotificationSettings] = Field(default_factory=list, description="Default: none.")
    gates: list[GateSettings] = Field(default_factory=list, description="Extra metric gates. Default: none.")

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
