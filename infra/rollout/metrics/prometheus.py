"""Prometheus provider: PromQL instant queries over the HTTP API, plus per-version traffic helpers.

Registers the ``prometheus`` metrics backend (``PrometheusSettings``); ``PrometheusTraffic`` feeds the
analysis with request and error counts, latency quantiles and histogram-bucket latency samples for one
track over the analysis window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from string import Template
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from components.spec import Cloud
from components.validation import Violation
from infra import registry
from infra.config import GantryConfig, ServiceConfig
from infra.errors import InputError
from infra.rollout.backends import MetricsContext, MetricsEndpoint, MetricsSource, PlannedQueries
from infra.rollout.errors import MetricsUnavailable
from infra.rollout.seams import JSONValue, MetricQuery, MetricsProvider, Sample, Track, TrafficCounts
from infra.settings.checks import exports_metrics
from infra.settings.rollout import RolloutSettings

if TYPE_CHECKING:
    import httpx

    from infra.rollout.analysis import TrafficSource
    from infra.rollout.metrics.templates import DataPlane


def duration(seconds: float) -> str:
    """A PromQL range duration; whole seconds, at least 1s."""
    return f"{max(1, round(seconds))}s"


def render(expr: str, query: MetricQuery) -> str:
    """Fill ``$window``, ``$track`` and ``$<label>`` placeholders; unknown ``$names`` stay as written."""
    values = {"window": duration(query.window_seconds), "track": query.track.value, **query.labels}
    return Template(expr).safe_substitute(values)


@dataclass(frozen=True, slots=True)
class Series:
    labels: Mapping[str, str]
    value: float


class PrometheusProvider:
    """Runs instant queries against ``url`` (e.g. ``http://127.0.0.1:9090``)."""

    name = "prometheus"

    def __init__(self, url: str | None = None, timeout: float = 5.0, headers: Mapping[str, str] | None = None,
                 client: httpx.Client | None = None, auth: httpx.Auth | None = None) -> None:
        import httpx

        if not url or not url.startswith(("http://", "https://")):
            raise InputError(f"metrics.url must be the Prometheus base URL (http://host:9090), but {url!r} was given")
        self.url = url.rstrip("/")
        # ``auth`` signs or bears every request (the clouds' managed Prometheus; see ``metrics.auth``).
        self._client = client or httpx.Client(timeout=timeout, headers=dict(headers or {}), auth=auth)

    def vector(self, promql: str) -> list[Series]:
        """Evaluate ``promql`` now; a scalar result comes back as one unlabelled series."""
        import httpx

        try:
            response = self._client.get(f"{self.url}/api/v1/query", params={"query": promql})
        except httpx.HTTPError as exc:
            raise MetricsUnavailable(f"prometheus at {self.url} is unreachable: {exc}") from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise MetricsUnavailable(f"prometheus answered HTTP {response.status_code} without JSON") from exc
        if response.status_code != 200 or body.get("status") != "success":
            raise MetricsUnavailable(f"prometheus rejected {promql!r}: {body.get('error', response.status_code)}")
        data = body.get("data", {})
        kind, result = data.get("resultType"), data.get("result", [])
        if kind == "scalar":
            return [Series({}, float(result[1]))]
        if kind != "vector":
            raise MetricsUnavailable(f"prometheus query must give an instant vector, but {kind} was returned")
        return [Series(dict(item.get("metric", {})), float(item["value"][1])) for item in result]

    def query(self, query: MetricQuery) -> Sample:
        """The sum over the returned series; no series or a NaN (0/0) is no data, count 0."""
        series = self.vector(render(query.expr, query))
        values = [s.value for s in series if not math.isnan(s.value)]
        if not values:
            return Sample(value=math.nan, count=0)
        return Sample(value=sum(values), count=len(values), observations=tuple(values))

    def is_online(self) -> bool:
        import httpx

        try:
            return self._client.get(f"{self.url}/-/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self._client.close()


@dataclass(frozen=True, slots=True)
class PrometheusTraffic:
    """Per-track traffic read from a request counter and a latency histogram (seconds), split by a label.

    Defaults fit the prometheus_client conventions: ``http_requests_total{version=..., code=...}`` and
    ``http_request_duration_seconds_bucket{version=..., le=...}``.
    """

    provider: PrometheusProvider
    versions: Mapping[Track, str] = field(
        default_factory=lambda: {Track.CANARY: "canary", Track.BASELINE: "stable"})
    requests_metric: str = "http_requests_total"
    latency_histogram: str = "http_request_duration_seconds"
    version_label: str = "version"
    status_label: str = "code"
    error_status_regex: str = "5.."
    extra_selector: str = ""

    def _selector(self, track: Track, *more: str) -> str:
        if track not in self.versions:
            raise MetricsUnavailable(f"no version label configured for the {track.value} track")
        parts = [f'{self.version_label}="{self.versions[track]}"', *more]
        if self.extra_selector:
            parts.append(self.extra_selector)
        return "{" + ",".join(parts) + "}"

    def _scalar(self, promql: str) -> float | None:
        series = self.provider.vector(promql)
        values = [s.value for s in series if not math.isnan(s.value)]
        return sum(values) if values else None

    @staticmethod
    def counted(series: str, window_seconds: float) -> str:
        """PromQL for what counter ``series`` counted between the last scrape before the window opened and the
        latest scrape, per series.

        Exact whole counts, unlike ``increase()``, which extrapolates to the range's edges and can inflate a
        short window's counts (and with them a likelihood ratio) by up to twice, and which sees nothing in a
        range holding a single scrape. Per series: the difference from its value ``window`` ago, or its whole
        value for a series born since (counters start at 0); a counter that went down (a restart) gives 0.
        """
        ago = f"{max(1, round(window_seconds * 1000))}ms"
        return f"(clamp_min({series} - {series} offset {ago}, 0) or ({series} unless {series} offset {ago}))"

    def _counted(self, selector: str, window_seconds: float) -> float | None:
        """Requests counted in the window (see ``counted``); None when no series exists at all."""
        return self._scalar(f"sum({self.counted(self.requests_metric + selector, window_seconds)})")

    def requests(self, track: Track, window_seconds: float) -> tuple[int, int]:
        """(requests, errors) scraped since the window opened: exact counter differences (see ``_counted``)."""
        total = self._counted(self._selector(track), window_seconds)
        if total is None:
            raise MetricsUnavailable(f"prometheus has no {self.requests_metric} series for {self.versions[track]}")
        errors = self._counted(self._selector(track, f'{self.status_label}=~"{self.error_status_regex}"'),
                               window_seconds) or 0.0
        n = round(total)
        return n, min(n, round(errors))

    def quantile_ms(self, track: Track, q: float, window_seconds: float) -> float | None:
        buckets = self.counted(f"{self.latency_histogram}_bucket{self._selector(track)}", window_seconds)
        v = self._scalar(f"histogram_quantile({q}, sum by (le) ({buckets}))")
        return None if v is None or math.isinf(v) or math.isnan(v) else v * 1000.0

    def buckets(self, track: Track, window_seconds: float) -> list[tuple[float, float]]:
        """(upper bound in seconds, cumulative count) per bucket over the window (exact, see ``counted``)."""
        counted = self.counted(f"{self.latency_histogram}_bucket{self._selector(track)}", window_seconds)
        series = self.provider.vector(f"sum by (le) ({counted})")
        out = [(float(s.labels["le"]), s.value) for s in series if "le" in s.labels and not math.isnan(s.value)]
        return sorted(out)

    def latency_samples_ms(self, track: Track, window_seconds: float, limit: int = 5000) -> tuple[float, ...]:
        """Reconstruct per-request latencies from bucket counts (each request at its bucket's midpoint).

        Binned values tie heavily; Mann-Whitney's tie correction handles that. The +Inf bucket takes its
        lower bound. Capped at ``limit`` values by scaling counts, which keeps the rank test's shape.
        """
        buckets = self.buckets(track, window_seconds)
        if not buckets:
            return ()
        total = buckets[-1][1]
        scale = min(1.0, limit / total) if total > 0 else 0.0
        out: list[float] = []
        lower, prev = 0.0, 0.0
        for upper, cumulative in buckets:
            n = round((cumulative - prev) * scale)
            point = lower if math.isinf(upper) else (lower + upper) / 2.0
            out.extend([point * 1000.0] * max(0, n))
            prev = cumulative
            if not math.isinf(upper):
                lower = upper
        return tuple(out)

    def counts(self, track: Track, window_seconds: float) -> TrafficCounts:
        requests, errors = self.requests(track, window_seconds)
        return TrafficCounts(
            requests=requests,
            errors=errors,
            latencies_ms=self.latency_samples_ms(track, window_seconds),
            p95_ms=self.quantile_ms(track, 0.95, window_seconds),
            p99_ms=self.quantile_ms(track, 0.99, window_seconds),
        )


# --------------------------------------------------------------------------- the backend


@registry.METRICS.register
class PrometheusSettings(MetricsSource):
    """``rollout.metrics`` for Prometheus: a self-run one at ``url``, or the managed one the cluster exports."""

    kind: Literal["prometheus"] = "prometheus"
    url: str | None = Field(
        default=None,
        description="Prometheus base URL. Default: the query endpoint the cluster stack exports "
                    "(its managed Prometheus); set it for a self-run Prometheus.")
    auth: Literal["none", "sigv4", "google", "azure"] | None = Field(
        default=None,
        description="How queries authenticate: sigv4 (Amazon Managed Prometheus), google (Google Cloud Managed "
                    "Prometheus), azure (Azure Monitor) or none. Default: the exported endpoint's auth, else none.")
    region: str | None = Field(
        default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$",
        description="AWS region for sigv4. Default: the stack's gantry:region.")
    queries: Literal["router", "app"] = Field(
        default="router",
        description="Health queries from the service's router data plane, or from the app's own "
                    "http_requests_total / http_request_duration_seconds. Default: router.")
    gateway: Literal["contour", "istio"] = Field(
        default="contour",
        description="Gateway API implementation whose metrics judge gateway-api services. Default: contour.")

    offers_traffic: ClassVar[bool] = True

    def violations(self, cfg: GantryConfig, settings: RolloutSettings, prefix: str) -> list[Violation]:
        out: list[Violation] = []
        if self.url is None and not exports_metrics(cfg):
            out.append(Violation(f"{prefix}metrics.url", "set (a Prometheus base URL), or exported by the cluster "
                                 "(cluster.managedPrometheus: true on a cloud stack)", None))
        if self.auth == "sigv4" and self.region is None and not (cfg.cloud is Cloud.AWS and cfg.region):
            out.append(Violation(f"{prefix}metrics.region", f"set (an AWS region) for prometheus auth sigv4 on a "
                                 f"{cfg.cloud.value} stack", None))
        return out

    def service_violations(self, cfg: GantryConfig, service: str, prefix: str) -> list[Violation]:
        """Every service judged by router queries needs a template for its router."""
        from infra.rollout.metrics.templates import GatewayImplementation, plane_for

        if self.queries != "router":
            return []
        svc = cfg.services[service]
        try:
            plane_for(svc.router, GatewayImplementation(self.gateway))
        except InputError:
            return [Violation(f"services.{service}.router", "a router with a health-query template "
                              f"(or {prefix}metrics.queries: app)", svc.router)]
        return []

    def endpoint(self, ctx: MetricsContext) -> MetricsEndpoint:
        """``url`` wins; else the cluster's exported managed Prometheus (stack output ``metrics``)."""
        cfg = ctx.config
        region = self.region or (cfg.region if cfg is not None and cfg.cloud is Cloud.AWS else None)
        if self.url is not None:
            return MetricsEndpoint(self.url, self.auth or "none", region, "config rollout.metrics.url")
        exported = ctx.outputs.stack_output("metrics") if ctx.outputs is not None else None
        if isinstance(exported, Mapping) and isinstance(exported.get("url"), str) and exported["url"]:
            return MetricsEndpoint(str(exported["url"]), self.auth or str(exported.get("auth") or "none"),
                                   self.region or (str(exported["region"]) if exported.get("region") else region),
                                   "stack output metrics.url (the cluster's managed Prometheus)")
        return MetricsEndpoint(None, self.auth or "none", region, "none")

    def build(self, ctx: MetricsContext) -> MetricsProvider:
        endpoint = ctx.endpoint or MetricsEndpoint(self.url, self.auth or "none", self.region, "config")
        if endpoint.url is None:
            raise InputError("rollout.metrics.url must be set, or exported by the cluster stack as output "
                             "metrics.url (run `pulumi up` first), but neither was found")
        auth = None
        if endpoint.auth != "none":
            from infra.rollout.metrics.auth import make_auth

            auth = make_auth(endpoint.auth, region=endpoint.region)
        return PrometheusProvider(url=endpoint.url, auth=auth)

    def traffic(self, ctx: MetricsContext, provider: MetricsProvider) -> TrafficSource | None:
        """The health-query template of the service's router data plane (or of the app's own metrics)."""
        from infra.rollout.metrics.templates import TEMPLATES, TemplatedTraffic, track_ids

        if not isinstance(provider, PrometheusProvider):
            return None
        if ctx.svc is None or ctx.service is None:
            raise InputError("service must be given to pick its health-query template, but none was given")
        ids = track_ids(ctx.service, ctx.svc.namespace, ctx.svc.service_port, ctx.svc.strategy, ctx.new_color)
        return TemplatedTraffic(provider, TEMPLATES[self._plane(ctx.svc)], ids)

    def _plane(self, svc: ServiceConfig) -> DataPlane:
        from infra.rollout.metrics.templates import DataPlane, GatewayImplementation, plane_for

        return DataPlane.APP if self.queries == "app" else plane_for(svc.router, GatewayImplementation(self.gateway))

    def plan_source(self, config: GantryConfig) -> dict[str, JSONValue]:
        auth: str
        if self.url is not None:
            url, source, auth = self.url, "config rollout.metrics.url", self.auth or "none"
        elif exports_metrics(config):
            url, source = None, ("stack output metrics.url (the cluster's managed Prometheus), read when the "
                                 "rollout starts")
            auth = self.auth or {"aws": "sigv4", "gcp": "google", "azure": "azure"}.get(config.cloud.value, "none")
        else:
            url, source, auth = None, "none", self.auth or "none"
        region = self.region or (config.region if config.cloud is Cloud.AWS else None)
        return {"provider": self.kind, "url": url, "source": source, "auth": auth, "region": region}

    def plan_queries(self, ctx: MetricsContext, window: float) -> PlannedQueries | None:
        from infra.rollout.metrics.templates import TEMPLATES, track_ids

        svc, service = ctx.svc, ctx.service
        if svc is None or service is None:
            return None
        plane = self._plane(svc)
        ids = track_ids(service, svc.namespace, svc.service_port, svc.strategy, ctx.new_color)
        t = TEMPLATES[plane]
        c, b = ids[Track.CANARY].as_map(), ids[Track.BASELINE].as_map()
        return PlannedQueries(
            f"{svc.router.value} router, {plane.value} metrics",
            {"error_rate": t.error_rate_query(c, window), "p95": t.quantile_query(c, 0.95, window),
             "buckets": t.buckets_query(c, window)},
            {"error_rate": t.error_rate_query(b, window), "buckets": t.buckets_query(b, window)})
