"""What a rollout would do, computed from config alone: steps, rendered gate queries, thresholds, hooks, target.

Called by ``gantry rollout plan``. It touches nothing and needs no network: the stack's outputs are not
read, so an endpoint the cluster exports is named as such, and the queries are rendered exactly as the
analysis will send them (window = the analysis interval).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from components.spec import Color, Strategy
from infra.config import GantryConfig, ServiceConfig
from infra.rollout.backends import MetricsContext, as_metrics, as_target
from infra.rollout.seams import JSONObject, JSONValue
from infra.settings.rollout import RolloutSettings

GateKind = Literal["absolute", "comparative"]


@dataclass(frozen=True, slots=True)
class GatePreview:
    """One gate: what it queries, its limit (``max`` or ``min``) and whether it is absolute or comparative."""

    name: str
    query: str
    kind: GateKind
    max: float | None = None
    min: float | None = None
    baseline_query: str | None = None
    unit: str = ""
    note: str = ""

    def as_json(self) -> JSONObject:
        out: dict[str, JSONValue] = {"name": self.name, "query": self.query, "kind": self.kind}
        if self.max is not None:
            out["max"] = self.max
        if self.min is not None:
            out["min"] = self.min
        if self.baseline_query is not None:
            out["baselineQuery"] = self.baseline_query
        if self.unit:
            out["unit"] = self.unit
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True, slots=True)
class RolloutPreview:
    stack: str
    service: str
    image: str
    strategy: Strategy
    steps: list[str]
    interval: str
    threshold: int
    judge: str
    gates: list[GatePreview]
    hooks: list[JSONObject]
    target: str
    metrics: JSONObject
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> JSONObject:
        return {
            "stack": self.stack, "service": self.service, "image": self.image, "strategy": self.strategy.value,
            "steps": list(self.steps), "interval": self.interval, "threshold": self.threshold, "judge": self.judge,
            "gates": [g.as_json() for g in self.gates], "hooks": list(self.hooks), "target": self.target,
            "metrics": self.metrics, "notes": list(self.notes),
        }


def metrics_source(settings: RolloutSettings, config: GantryConfig) -> JSONObject:
    """Where the metrics endpoint will come from, without reading anything remote."""
    return as_metrics(settings.metrics).plan_source(config)


def _step_names(settings: RolloutSettings, strategy: Strategy) -> list[str]:
    if strategy is Strategy.CANARY:
        return [f"canary {w}%" for w in settings.weights()]
    return ["pre-promotion analysis of the preview color", "switch the active Service to the new color",
            f"post-promotion analysis for {settings.post_promotion_window}",
            f"old color idles after {settings.scale_down_delay}"]


def _traffic_gates(settings: RolloutSettings, svc: ServiceConfig, service: str, window: float,
                   new_color: Color | None, new_image: str) -> list[GatePreview]:
    ctx = MetricsContext(settings, Path("."), service=service, svc=svc, image=new_image,
                         baseline_image=svc.image, new_color=new_color)
    planned = as_metrics(settings.metrics).plan_queries(ctx, window)
    if planned is None:
        return []
    canary, baseline = planned.canary, planned.baseline
    gates = [
        GatePreview("error-rate", canary["error_rate"], "absolute", max=settings.max_error_rate, unit="ratio",
                    note=f"{planned.plane}; the analysis sums errors and requests separately and divides"),
        GatePreview("p95-latency", canary["p95"], "absolute", max=settings.max_p95_ms, unit="ms"),
    ]
    if settings.judge == "sprt":
        gates.append(GatePreview(
            "error-rate-sprt", canary["error_rate"], "comparative", max=settings.max_error_rate,
            baseline_query=baseline["error_rate"], unit="ratio",
            note="Wald's sequential test of the canary's errors against the baseline's rate (healthy floor "
                 "when the baseline has too few requests)"))
        gates.append(GatePreview(
            "latency-mann-whitney", canary["buckets"], "comparative", max=0.10, baseline_query=baseline["buckets"],
            unit="relative median shift", note="fails when slower with p < 0.02 and the median is >10% higher"))
    return gates


def _hook_plan(raw: dict[str, JSONValue]) -> JSONObject:
    """A hook as ``rollout plan`` shows it: its settings, with a URL (a secret, often) hidden."""
    out: dict[str, JSONValue] = {k: raw[k] for k in ("name", "phase", "timeout")}
    if "argv" in raw:
        out["argv"] = raw["argv"]
    if "url" in raw:
        out["url"] = "[url]"
    return out


def preview(config: GantryConfig, *, stack: str, service: str, image: str, strategy: Strategy,
            settings: RolloutSettings) -> RolloutPreview:
    """The whole plan of one rollout, rendered."""
    svc = config.services[service]
    window = float(settings.interval)
    new_color = svc.active_color.other if strategy is Strategy.BLUEGREEN else None
    gates: list[GatePreview] = []
    notes: list[str] = []
    gates += _traffic_gates(settings, svc, service, window, new_color, image)
    target_backend = as_target(settings.target)
    restarts = target_backend.restarts_plan(service, svc, strategy, new_color, settings)
    if restarts is not None:
        gates.append(GatePreview("restarts", restarts[0], "absolute", max=float(settings.max_restarts),
                                 unit="restarts", note=restarts[1]))
    for g in settings.gates:
        gates.append(GatePreview(g.name, g.expr, "absolute", max=g.max, note=f"{settings.metrics.kind} gate"))
    hooks: list[JSONObject] = [_hook_plan(h.model_dump(by_alias=True, mode="json")) for h in settings.hooks]
    target = target_backend.describe(stack, service)
    if settings.judge == "sprt":
        notes.append("Absolute gates fail the canary alone; comparative gates judge it against the baseline.")
    return RolloutPreview(
        stack=stack, service=service, image=image, strategy=strategy, steps=_step_names(settings, strategy),
        interval=str(settings.interval), threshold=settings.threshold, judge=settings.judge, gates=gates, hooks=hooks,
        target=target, metrics=metrics_source(settings, config), notes=notes)
