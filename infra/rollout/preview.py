"""What a rollout would do, computed from config alone: steps, rendered gate queries, thresholds, hooks, target.

Called by ``gantry rollout plan``. It touches nothing and needs no network: the stack's outputs are not
read, so an endpoint the cluster exports is named as such, and the queries are rendered exactly as the
analysis will send them (window = the analysis interval).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from components.spec import Color, Strategy
from infra.config import GantryConfig, ServiceConfig
from infra.rollout.readiness import exports_metrics
from infra.rollout.seams import JSONObject, JSONValue, Track
from infra.rollout.settings import RolloutSettings, parse_duration

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
    m = settings.metrics
    auth: str
    if m.url is not None:
        url, source, auth = m.url, "config rollout.metrics.url", m.auth or "none"
        if settings.target == "haproxy" and m.url == "sandbox":
            source = "the running sandbox's Prometheus (.gantry/sandbox/state.json)"
    elif exports_metrics(config):
        url, source = None, "stack output metrics.url (the cluster's managed Prometheus), read when the rollout starts"
        auth = m.auth or {"aws": "sigv4", "gcp": "google", "azure": "azure"}.get(config.cloud.value, "none")
    else:
        url, source, auth = None, "none", m.auth or "none"
    region = m.region or (config.region if config.cloud.value == "aws" else None)
    return {"provider": m.provider, "url": url, "source": source, "auth": auth, "region": region}


def _step_names(settings: RolloutSettings, strategy: Strategy) -> list[str]:
    if strategy is Strategy.CANARY:
        return [f"canary {w}%" for w in settings.weights()]
    return ["pre-promotion analysis of the preview color", "switch the active Service to the new color",
            f"post-promotion analysis for {settings.post_promotion_window}",
            f"old color idles after {settings.scale_down_delay}"]


def _traffic_gates(settings: RolloutSettings, svc: ServiceConfig, service: str, window: float,
                   new_color: Color | None, new_image: str) -> list[GatePreview]:
    from infra.rollout.metrics.templates import (
        TEMPLATES,
        DataPlane,
        GatewayImplementation,
        plane_for,
        track_ids,
    )

    if settings.target == "haproxy":
        plane_name = "sandbox demo-app"
        canary = _sandbox_queries(service, svc.image, new_image, Track.CANARY, window)
        baseline = _sandbox_queries(service, svc.image, new_image, Track.BASELINE, window)
    else:
        plane = (DataPlane.APP if settings.metrics.queries == "app"
                 else plane_for(svc.router, GatewayImplementation(settings.metrics.gateway)))
        ids = track_ids(service, svc.namespace, svc.service_port, svc.strategy, new_color)
        t = TEMPLATES[plane]
        c, b = ids[Track.CANARY].as_map(), ids[Track.BASELINE].as_map()
        plane_name = f"{svc.router.value} router, {plane.value} metrics"
        canary = {"error_rate": t.error_rate_query(c, window), "p95": t.quantile_query(c, 0.95, window),
                  "buckets": t.buckets_query(c, window)}
        baseline = {"error_rate": t.error_rate_query(b, window), "buckets": t.buckets_query(b, window)}
    gates = [
        GatePreview("error-rate", canary["error_rate"], "absolute", max=settings.max_error_rate, unit="ratio",
                    note=f"{plane_name}; the analysis sums errors and requests separately and divides"),
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


def _sandbox_queries(service: str, stable_image: str, new_image: str, track: Track,
                     window: float) -> dict[str, str]:
    """The sandbox's own series, exactly as ``sandbox_traffic`` selects them (by demo version and service)."""
    from infra.rollout.metrics.prometheus import PrometheusProvider, duration
    from infra.sandbox.target import sandbox_traffic

    traffic = sandbox_traffic(PrometheusProvider(url="http://sandbox.invalid"), service, new_image, stable_image)
    w = duration(window)
    sel = traffic._selector(track)
    err = traffic._selector(track, f'{traffic.status_label}=~"{traffic.error_status_regex}"')
    return {
        "error_rate": f"sum(increase({traffic.requests_metric}{err}[{w}])) / "
                      f"sum(increase({traffic.requests_metric}{sel}[{w}]))",
        "p95": f"histogram_quantile(0.95, sum by (le) (rate({traffic.latency_histogram}_bucket{sel}[{w}]))) * 1000",
        "buckets": f"sum by (le) (increase({traffic.latency_histogram}_bucket{sel}[{w}]))",
    }


def preview(config: GantryConfig, *, stack: str, service: str, image: str, strategy: Strategy,
            settings: RolloutSettings) -> RolloutPreview:
    """The whole plan of one rollout, rendered."""
    from infra.rollout.factory import restarts_selector

    svc = config.services[service]
    window = parse_duration(settings.interval)
    new_color = svc.active_color.other if strategy is Strategy.BLUEGREEN else None
    gates: list[GatePreview] = []
    notes: list[str] = []
    if settings.metrics.provider == "prometheus":
        gates += _traffic_gates(settings, svc, service, window, new_color, image)
    if settings.target == "pulumi":
        selector = restarts_selector(service, strategy, new_color)
        kube = settings.restarts.kubeconfig or "the stack's kubeconfig output"
        gates.append(GatePreview(
            "restarts", f"kubernetes: sum of restartCount over pods {selector} in namespace {svc.namespace}",
            "absolute", max=float(settings.max_restarts), unit="restarts", note=f"via {kube}"))
    elif settings.target == "haproxy":
        gates.append(GatePreview("restarts", f"sandbox supervisor: restarts of the canary's demo process ({service})",
                                 "absolute", max=float(settings.max_restarts), unit="restarts"))
    for g in settings.gates:
        gates.append(GatePreview(g.name, g.expr, "absolute", max=g.max, note=f"{settings.metrics.provider} gate"))
    hooks: list[JSONObject] = [
        {"name": h.name, "phase": h.phase, "timeout": h.timeout,
         **({"argv": list(h.argv)} if h.argv is not None else {"url": "[url]"})}
        for h in settings.hooks
    ]
    target = {"pulumi": f"Pulumi stack {stack} (Automation API: config gantry:services.{service}.*, then up)",
              "haproxy": f"sandbox HAProxy backend be_{service} (runtime API)",
              "file": f".gantry/targets/{stack}-{service}.json (drills)"}.get(settings.target, settings.target)
    if settings.judge == "sprt":
        notes.append("Absolute gates fail the canary alone; comparative gates judge it against the baseline.")
    return RolloutPreview(
        stack=stack, service=service, image=image, strategy=strategy, steps=_step_names(settings, strategy),
        interval=settings.interval, threshold=settings.threshold, judge=settings.judge, gates=gates, hooks=hooks,
        target=target, metrics=metrics_source(settings, config), notes=notes)
