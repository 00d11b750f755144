"""The sandbox's backends: the ``haproxy`` rollout target and the ``sandbox`` metrics (its own Prometheus series).

Registered like any other backend (``infra.plugins`` imports this module). The sandbox's machinery
(``infra.sandbox.target``, its HAProxy runtime API, processes and httpx) is imported only when a rollout
builds one, so registering costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from components.spec import Color, ServiceSpec, Strategy
from infra import registry
from infra.config import GantryConfig, ServiceConfig
from infra.rollout.backends import (
    MetricsContext,
    MetricsEndpoint,
    MetricsSource,
    PlannedQueries,
    RolloutTarget,
    TargetContext,
)
from infra.rollout.seams import JSONValue, MetricsProvider, Target, Track
from infra.settings.rollout import RolloutSettings

if TYPE_CHECKING:
    from infra.rollout.analysis import TrafficSource


# --------------------------------------------------------------------------- the backends


@registry.TARGETS.register
class HaproxyTargetSettings(RolloutTarget):
    """Shift the local sandbox's HAProxy backend ``be_<service>`` through its runtime API."""

    kind: Literal["haproxy"] = "haproxy"

    default_metrics: ClassVar[str | None] = "sandbox"

    def build(self, ctx: TargetContext) -> Target:
        from infra.sandbox.target import HaproxyTarget

        return HaproxyTarget(ctx.project, ctx.config, ctx.service)

    def describe(self, stack: str, service: str) -> str:
        return f"sandbox HAProxy backend be_{service} (runtime API)"

    def restarts_plan(self, service: str, svc: ServiceConfig, strategy: Strategy, new_color: Color | None,
                      settings: RolloutSettings) -> tuple[str, str] | None:
        return f"sandbox supervisor: restarts of the canary's demo process ({service})", ""


@registry.METRICS.register
class SandboxMetricsSettings(MetricsSource):
    """The running sandbox's Prometheus: the demo app's series by version and status (``metrics.url: sandbox``)."""

    kind: Literal["sandbox"] = "sandbox"
    url: str | None = Field(default=None, description="Prometheus base URL. Default: the running sandbox's, "
                                                      "read from .gantry/sandbox/state.json when the rollout starts.")

    offers_traffic: ClassVar[bool] = True
    local: ClassVar[bool] = True

    def endpoint(self, ctx: MetricsContext) -> MetricsEndpoint:
        return MetricsEndpoint(self.url, "none", None, "the running sandbox's Prometheus")

    def build(self, ctx: MetricsContext) -> MetricsProvider:
        from infra.rollout.metrics.prometheus import PrometheusProvider
        from infra.sandbox.state import resolve_prometheus_url

        return PrometheusProvider(url=resolve_prometheus_url(self.url, ctx.project))

    def traffic(self, ctx: MetricsContext, provider: MetricsProvider) -> TrafficSource | None:
        from infra.rollout.metrics.prometheus import PrometheusProvider
        from infra.sandbox.target import sandbox_traffic

        if not isinstance(provider, PrometheusProvider):
            return None
        return sandbox_traffic(provider, ctx.service, ctx.image, ctx.baseline_image)

    def plan_source(self, config: GantryConfig) -> dict[str, JSONValue]:
        return {"provider": self.kind, "url": self.url or "sandbox",
                "source": "the running sandbox's Prometheus (.gantry/sandbox/state.json)", "auth": "none",
                "region": None}

    def plan_queries(self, ctx: MetricsContext, window: float) -> PlannedQueries | None:
        svc, service = ctx.svc, ctx.service
        if svc is None or service is None:
            return None
        return PlannedQueries("sandbox demo-app",
                              _sandbox_queries(service, svc, ctx.image, Track.CANARY, window),
                              _sandbox_queries(service, svc, ctx.image, Track.BASELINE, window))


def _sandbox_queries(service: str, svc: ServiceSpec, new_image: str, track: Track, window: float) -> dict[str, str]:
    """The sandbox's own series, exactly as ``sandbox_traffic`` selects them (by demo version and service)."""
    from infra.rollout.metrics.prometheus import PrometheusProvider, duration
    from infra.sandbox.target import sandbox_traffic

    traffic = sandbox_traffic(PrometheusProvider(url="http://sandbox.invalid"), service, new_image, svc.image)
    w = duration(window)
    sel = traffic._selector(track)
    err = traffic._selector(track, f'{traffic.status_label}=~"{traffic.error_status_regex}"')
    return {
        "error_rate": f"sum(increase({traffic.requests_metric}{err}[{w}])) / "
                      f"sum(increase({traffic.requests_metric}{sel}[{w}]))",
        "p95": f"histogram_quantile(0.95, sum by (le) (rate({traffic.latency_histogram}_bucket{sel}[{w}]))) * 1000",
        "buckets": f"sum by (le) (increase({traffic.latency_histogram}_bucket{sel}[{w}]))",
    }
