"""Whether a stack's rollout settings can work: checked when the config loads, and listed by ``gantry stacks``.

Called by ``GantryConfig`` validation (each problem is a config error naming its key) and by
``gantry stacks --format json`` (its ``rollout`` object). Only what the config alone decides is
checked here: a metrics source that exists, a region where one is needed, a query template for every
service's router, gates where the provider gives no per-version traffic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from components.spec import Cloud
from components.validation import Violation
from infra.errors import InputError
from infra.rollout.settings import RolloutSettings

if TYPE_CHECKING:
    from infra.config import GantryConfig

TRAFFIC_PROVIDERS = ("prometheus",)
"""Providers that give per-version request, error and latency counts (the others need explicit gates)."""


def exports_metrics(cfg: GantryConfig) -> bool:
    """Whether the stack's program exports a managed Prometheus query endpoint (output ``metrics``)."""
    return cfg.cloud is not Cloud.LOCAL and cfg.cluster is not None and cfg.cluster.managed_prometheus


def engine_sandbox(cfg: GantryConfig, settings: RolloutSettings) -> bool:
    """The engine-driven sandbox (stack local-engine): a local stack whose program routes the sandbox's
    HAProxy (target ``pulumi``) and whose metrics are the sandbox's Prometheus (``metrics.url: sandbox``)."""
    from infra.sandbox.settings import PROMETHEUS_SENTINEL

    return cfg.cloud is Cloud.LOCAL and settings.target == "pulumi" and settings.metrics.url == PROMETHEUS_SENTINEL


def offline_only(cfg: GantryConfig, settings: RolloutSettings) -> bool:
    """A local stack driven through Pulumi has nothing to roll out (no cluster): only render and check apply.

    Its settings are not load errors, so such a stack still renders; ``readiness`` reports it not ready.
    The engine-driven sandbox is the exception: its program's resources are the sandbox's routing.
    """
    return cfg.cloud is Cloud.LOCAL and settings.target == "pulumi" and not engine_sandbox(cfg, settings)


def settings_violations(cfg: GantryConfig, settings: RolloutSettings, prefix: str) -> list[Violation]:
    """What makes one set of rollout settings unworkable, with keys under ``prefix`` (``rollout.``)."""
    out: list[Violation] = []
    if offline_only(cfg, settings):
        return out
    m = settings.metrics
    sandbox = settings.target == "haproxy"
    if m.provider == "prometheus" and m.url is None and not sandbox and not exports_metrics(cfg):
        out.append(Violation(f"{prefix}metrics.url", "set (a Prometheus base URL), or exported by the cluster "
                             "(cluster.managedPrometheus: true on a cloud stack)", None))
    needs_region = m.provider == "cloudwatch" or m.auth == "sigv4"
    if needs_region and m.region is None and not (cfg.cloud is Cloud.AWS and cfg.region):
        out.append(Violation(f"{prefix}metrics.region", f"set (an AWS region) for {m.provider} "
                             f"{'auth sigv4' if m.auth == 'sigv4' else 'metrics'} on a {cfg.cloud.value} stack",
                             None))
    if m.provider not in TRAFFIC_PROVIDERS and not settings.gates:
        out.append(Violation(f"{prefix}gates", f"non-empty when metrics.provider is {m.provider} (it gives no "
                             "per-version traffic)", []))
    return out


def template_violations(cfg: GantryConfig, service: str, settings: RolloutSettings, prefix: str) -> list[Violation]:
    """Every service judged by router queries needs a template for its router."""
    from infra.rollout.metrics.templates import GatewayImplementation, plane_for

    if settings.metrics.provider != "prometheus" or settings.metrics.queries != "router":
        return []
    if settings.target == "haproxy" or engine_sandbox(cfg, settings) or offline_only(cfg, settings):
        return []  # the sandbox's own series (demo app metrics by version), or nothing to roll out
    svc = cfg.services[service]
    try:
        plane_for(svc.router, GatewayImplementation(settings.metrics.gateway))
    except InputError:
        return [Violation(f"services.{service}.router", "a router with a health-query template "
                          f"(or {prefix}metrics.queries: app)", svc.router)]
    return []


def rollout_violations(cfg: GantryConfig) -> list[Violation]:
    """Every rollout problem of the stack: its defaults and each service's overrides."""
    out: list[Violation] = []
    if cfg.services:
        out += settings_violations(cfg, cfg.rollout, "rollout.")
    for name, svc in cfg.services.items():
        if svc.rollout is not None:
            out += settings_violations(cfg, svc.rollout, f"services.{name}.rollout.")
        prefix = f"services.{name}.rollout." if svc.rollout is not None else "rollout."
        out += template_violations(cfg, name, cfg.rollout_for(name), prefix)
    return out


def readiness(cfg: GantryConfig) -> list[str]:
    """Problems that keep a valid stack from rolling out (none for a ready stack)."""
    problems = [str(v) for v in rollout_violations(cfg)]
    for name in cfg.services:
        if offline_only(cfg, cfg.rollout_for(name)):
            problems.append(f"services.{name}.rollout.target must be haproxy (the sandbox) on a local stack, "
                            "or pulumi with metrics.url sandbox (the engine-driven sandbox), but 'pulumi' "
                            "was given")
    if not cfg.services:
        problems.append("services must name at least one service to roll out, but none was given")
    return problems
