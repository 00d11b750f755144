"""Health-query templates per data plane: request, error and latency PromQL for a canary and its baseline.

Called by the rollout factory (to feed the analysis) and by ``gantry rollout plan`` (to show the exact
queries). Each template names the metrics and labels its data plane really exports; the sources are:

* ``istio`` (the Istio router, and Gateway API served by Istio): Istio's standard metrics reference
  (istio.io, "Istio Standard Metrics"): the counter ``istio_requests_total`` and the histogram
  ``istio_request_duration_milliseconds`` (milliseconds), labelled ``reporter``,
  ``destination_workload``, ``destination_workload_namespace`` and ``response_code``. Server-side
  reports (``reporter="destination"``) count each request once, at the workload that served it.
* ``nginx`` (the NGINX Ingress router): ingress-nginx's Prometheus metrics (kubernetes/ingress-nginx,
  docs "Monitoring" / "Prometheus metrics"): ``nginx_ingress_controller_requests`` and the histogram
  ``nginx_ingress_controller_request_duration_seconds`` (seconds), labelled ``namespace``, ``ingress``
  and ``status``. Gantry's canary Ingress is named after the canary Service, so each track has its own.
* ``contour`` (Gateway API served by Contour's Envoy): Envoy's cluster statistics as Contour exposes
  them (projectcontour.io, "Collecting Metrics with Prometheus"; Envoy's cluster manager statistics):
  ``envoy_cluster_upstream_rq`` tagged ``envoy_response_code`` and the histogram
  ``envoy_cluster_upstream_rq_time`` (milliseconds); Contour names an upstream cluster after
  ``namespace/service/port`` (``_`` separated in the tag), so each backend Service has its own series.
* ``linkerd`` (the SMI router, as Linkerd serves it): the Linkerd proxy's metrics (linkerd.io, "Proxy
  Metrics"): the counter ``response_total``, labelled ``classification`` (``success`` or ``failure``:
  5xx and gRPC errors) and ``direction``, and the histogram ``response_latency_ms`` (milliseconds); the
  Prometheus that scrapes the proxies adds ``namespace`` and ``deployment`` from the pod. Inbound
  responses (``direction="inbound"``) are counted at the workload that served them.
* ``app`` (the application's own metrics, any router): the prometheus_client conventions
  ``http_requests_total{code}`` and ``http_request_duration_seconds``, with the ``namespace``, ``app``
  and ``track`` target labels that Gantry's scrape configuration copies from the pod labels.

A template is a small value object; ``TemplatedTraffic`` turns one into the analysis' ``TrafficSource``.
Counts are ``increase`` over the window (rounded to whole requests), latency quantiles come from
``histogram_quantile`` over ``rate`` of the buckets, so they carry the histogram's bucket resolution.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from components.spec import Color, RouterKind, Strategy
from infra.errors import InputError
from infra.rollout.errors import MetricsUnavailable
from infra.rollout.metrics.prometheus import PrometheusProvider, duration
from infra.rollout.seams import Track, TrafficCounts

_PLACEHOLDER = re.compile(r"\$\{([a-z]+)\}|\$([a-z]+)")


class DataPlane(StrEnum):
    """Whose metrics a template reads."""

    ISTIO = "istio"
    NGINX = "nginx"
    CONTOUR = "contour"
    LINKERD = "linkerd"
    APP = "app"


class GatewayImplementation(StrEnum):
    """Which Gateway API implementation serves the cluster's HTTPRoutes (its metrics differ)."""

    CONTOUR = "contour"
    ISTIO = "istio"


@dataclass(frozen=True, slots=True)
class QueryTemplate:
    """The series one data plane exports for a track, as PromQL selector templates.

    ``$namespace``, ``$workload`` (the track's Deployment), ``$backend`` (the track's Service),
    ``$ingress`` and ``$port`` are filled per track; ``$window`` per analysis.
    """

    plane: DataPlane
    requests_metric: str
    selector: str
    error_matcher: str
    latency_histogram: str
    latency_unit_ms: float
    """Milliseconds per unit of the histogram's ``le`` bounds (1 for ms histograms, 1000 for seconds)."""
    source: str

    def _sel(self, ids: Mapping[str, str], *more: str) -> str:
        inner = ",".join(p for p in (fill(self.selector, ids), *more) if p)
        return "{" + inner + "}"

    def requests_query(self, ids: Mapping[str, str], window: float) -> str:
        return f"sum(increase({self.requests_metric}{self._sel(ids)}[{duration(window)}]))"

    def errors_query(self, ids: Mapping[str, str], window: float) -> str:
        return f"sum(increase({self.requests_metric}{self._sel(ids, self.error_matcher)}[{duration(window)}]))"

    def error_rate_query(self, ids: Mapping[str, str], window: float) -> str:
        return f"{self.errors_query(ids, window)} / {self.requests_query(ids, window)}"

    def quantile_query(self, ids: Mapping[str, str], q: float, window: float) -> str:
        scale = "" if self.latency_unit_ms == 1 else f" * {self.latency_unit_ms:g}"
        return (f"histogram_quantile({q:g}, sum by (le) (rate({self.latency_histogram}_bucket{self._sel(ids)}"
                f"[{duration(window)}]))){scale}")

    def buckets_query(self, ids: Mapping[str, str], window: float) -> str:
        return f"sum by (le) (increase({self.latency_histogram}_bucket{self._sel(ids)}[{duration(window)}]))"


def fill(text: str, values: Mapping[str, str]) -> str:
    """Fill ``$name`` / ``${name}`` placeholders; a missing value is a programming error, never an empty label."""
    def one(match: re.Match[str]) -> str:
        key = match.group(1) or match.group(2)
        if key not in values:
            raise KeyError(f"template placeholder ${key} has no value")
        return values[key]

    return _PLACEHOLDER.sub(one, text)


TEMPLATES: dict[DataPlane, QueryTemplate] = {
    DataPlane.ISTIO: QueryTemplate(
        plane=DataPlane.ISTIO,
        requests_metric="istio_requests_total",
        selector='reporter="destination",destination_workload_namespace="$namespace",'
                 'destination_workload="$workload"',
        error_matcher='response_code=~"5.."',
        latency_histogram="istio_request_duration_milliseconds",
        latency_unit_ms=1.0,
        source="istio.io: Istio Standard Metrics",
    ),
    DataPlane.NGINX: QueryTemplate(
        plane=DataPlane.NGINX,
        requests_metric="nginx_ingress_controller_requests",
        selector='namespace="$namespace",ingress="$ingress"',
        error_matcher='status=~"5.."',
        latency_histogram="nginx_ingress_controller_request_duration_seconds",
        latency_unit_ms=1000.0,
        source="kubernetes/ingress-nginx: docs/user-guide/monitoring (Prometheus metrics)",
    ),
    DataPlane.CONTOUR: QueryTemplate(
        plane=DataPlane.CONTOUR,
        requests_metric="envoy_cluster_upstream_rq",
        selector='envoy_cluster_name=~"${namespace}_${backend}_${port}(_.+)?"',
        error_matcher='envoy_response_code=~"5.."',
        latency_histogram="envoy_cluster_upstream_rq_time",
        latency_unit_ms=1.0,
        source="projectcontour.io: Collecting Metrics with Prometheus; Envoy cluster manager statistics",
    ),
    DataPlane.LINKERD: QueryTemplate(
        plane=DataPlane.LINKERD,
        requests_metric="response_total",
        selector='direction="inbound",namespace="$namespace",deployment="$workload"',
        error_matcher='classification="failure"',
        latency_histogram="response_latency_ms",
        latency_unit_ms=1.0,
        source="linkerd.io: Proxy Metrics (response_total, response_latency_ms)",
    ),
    DataPlane.APP: QueryTemplate(
        plane=DataPlane.APP,
        requests_metric="http_requests_total",
        selector='namespace="$namespace",app="$service",track="$track"',
        error_matcher='code=~"5.."',
        latency_histogram="http_request_duration_seconds",
        latency_unit_ms=1000.0,
        source="prometheus/client_python conventions; Gantry's scrape config adds namespace, app and track",
    ),
}


ROUTER_PLANES: dict[RouterKind, DataPlane] = {
    RouterKind.ISTIO: DataPlane.ISTIO,
    RouterKind.NGINX: DataPlane.NGINX,
    RouterKind.SMI: DataPlane.LINKERD,
}
"""Whose metrics judge a service behind each router (Gateway API: see ``GATEWAY_PLANES``)."""

GATEWAY_PLANES: dict[GatewayImplementation, DataPlane] = {
    GatewayImplementation.CONTOUR: DataPlane.CONTOUR,
    GatewayImplementation.ISTIO: DataPlane.ISTIO,
}


def plane_for(router: RouterKind, gateway: GatewayImplementation = GatewayImplementation.CONTOUR) -> DataPlane:
    """The data plane whose metrics judge a service behind ``router``."""
    valid = ", ".join(k.value for k in (*ROUTER_PLANES, RouterKind.GATEWAY_API))
    try:
        router = RouterKind(router)
    except ValueError:
        raise InputError(f"router must be one of {valid} to have a health-query template, "
                         f"but {router!r} was given") from None
    if router is RouterKind.GATEWAY_API:
        return GATEWAY_PLANES[GatewayImplementation(gateway)]
    if router not in ROUTER_PLANES:
        raise InputError(f"router must be one of {valid} to have a health-query template, but {router!r} was given")
    return ROUTER_PLANES[router]


@dataclass(frozen=True, slots=True)
class TrackIds:
    """What identifies one track's series: the values the templates' placeholders take."""

    namespace: str
    service: str
    workload: str
    backend: str
    ingress: str
    port: int
    track: str

    def as_map(self) -> dict[str, str]:
        return {"namespace": self.namespace, "service": self.service, "workload": self.workload,
                "backend": self.backend, "ingress": self.ingress, "port": str(self.port), "track": self.track}


def track_ids(service: str, namespace: str, service_port: int, strategy: Strategy,
              new_color: Color | None = None) -> dict[Track, TrackIds]:
    """The canary's and the baseline's identities, named as Gantry's delivery components name them.

    Canary: Deployments ``<svc>-stable``/``<svc>-canary``, Services (and NGINX Ingresses) ``<svc>`` and
    ``<svc>-canary``. Blue/green: the new color's Deployment behind the active Service ``<svc>`` (it
    is judged after the switch, when it serves everything), with the old color as the baseline.
    """
    if strategy is Strategy.CANARY:
        canary = TrackIds(namespace, service, f"{service}-canary", f"{service}-canary", f"{service}-canary",
                          service_port, "canary")
        stable = TrackIds(namespace, service, f"{service}-stable", service, service, service_port, "stable")
        return {Track.CANARY: canary, Track.BASELINE: stable}
    new = new_color or Color.GREEN
    old = Color.BLUE if new is Color.GREEN else Color.GREEN
    return {
        Track.CANARY: TrackIds(namespace, service, f"{service}-{new.value}", service, service, service_port,
                               new.value),
        Track.BASELINE: TrackIds(namespace, service, f"{service}-{old.value}", f"{service}-preview",
                                 f"{service}-preview", service_port, old.value),
    }


@dataclass(frozen=True, slots=True)
class TemplatedTraffic:
    """The analysis' ``TrafficSource`` over one template and the two tracks' identities."""

    provider: PrometheusProvider
    template: QueryTemplate
    ids: Mapping[Track, TrackIds]
    latency_sample_limit: int = 5000

    def _ids(self, track: Track) -> dict[str, str]:
        if track not in self.ids:
            raise MetricsUnavailable(f"no series identity is configured for the {track.value} track")
        return self.ids[track].as_map()

    def _scalar(self, promql: str) -> float | None:
        values = [s.value for s in self.provider.vector(promql) if not math.isnan(s.value)]
        return sum(values) if values else None

    def queries(self, track: Track, window: float) -> dict[str, str]:
        """Every query this source runs for ``track``, rendered (for ``gantry rollout plan``)."""
        ids = self._ids(track)
        t = self.template
        return {"requests": t.requests_query(ids, window), "errors": t.errors_query(ids, window),
                "p95_ms": t.quantile_query(ids, 0.95, window), "p99_ms": t.quantile_query(ids, 0.99, window),
                "buckets": t.buckets_query(ids, window)}

    def error_rate(self, track: Track, window_seconds: float) -> float | None:
        """Errors over requests in the window, as one query (no rounding); None when nothing was served."""
        ids = self._ids(track)
        return self._quantile(self.template.error_rate_query(ids, window_seconds))

    def counts(self, track: Track, window_seconds: float) -> TrafficCounts:
        q = self.queries(track, window_seconds)
        total = self._scalar(q["requests"])
        if total is None:
            raise MetricsUnavailable(f"prometheus has no {self.template.requests_metric} series for the "
                                     f"{track.value} track ({self.ids[track].workload})")
        errors = self._scalar(q["errors"]) or 0.0
        n = round(total)
        return TrafficCounts(
            requests=n,
            errors=min(n, round(errors)),
            latencies_ms=self._latency_samples(q["buckets"]),
            p95_ms=self._quantile(q["p95_ms"]),
            p99_ms=self._quantile(q["p99_ms"]),
        )

    def _quantile(self, promql: str) -> float | None:
        v = self._scalar(promql)
        return None if v is None or math.isinf(v) else v

    def _latency_samples(self, promql: str) -> tuple[float, ...]:
        """Per-request latencies rebuilt from bucket counts, each at its bucket's midpoint (ms)."""
        series = self.provider.vector(promql)
        buckets = sorted((float(s.labels["le"]), s.value) for s in series
                         if "le" in s.labels and not math.isnan(s.value))
        if not buckets or buckets[-1][1] <= 0:
            return ()
        scale = min(1.0, self.latency_sample_limit / buckets[-1][1])
        unit = self.template.latency_unit_ms
        out: list[float] = []
        lower, prev = 0.0, 0.0
        for upper, cumulative in buckets:
            point = lower if math.isinf(upper) else (lower + upper) / 2.0
            out.extend([point * unit] * max(0, round((cumulative - prev) * scale)))
            prev = cumulative
            if not math.isinf(upper):
                lower = upper
        return tuple(out)


__all__ = ["TEMPLATES", "DataPlane", "GatewayImplementation", "QueryTemplate", "TemplatedTraffic", "TrackIds",
           "plane_for", "track_ids"]
