"""Whether a stack's rollout settings can work: the checks ``GantryConfig`` runs when a stack loads.

Config layer. Only what the config alone decides is checked, and each backend decides for itself through
its registered settings model: a metrics source that exists, a region where one is needed, a query
template for every service's router; gates where the backend gives no per-version traffic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from components.spec import Cloud
from components.validation import Violation
from infra.settings.rollout import RolloutSettings

if TYPE_CHECKING:
    from infra.config import GantryConfig


def exports_metrics(cfg: GantryConfig) -> bool:
    """Whether the stack's program exports a managed Prometheus query endpoint (output ``metrics``)."""
    return cfg.cloud is not Cloud.LOCAL and cfg.cluster is not None and cfg.cluster.managed_prometheus


def offline_only(cfg: GantryConfig, settings: RolloutSettings) -> bool:
    """Nothing to roll out (a local stack driven through Pulumi without the sandbox's metrics): only render
    and check apply. Such settings are not load errors, so the stack still renders; ``readiness`` says why."""
    return settings.target.local_problem(cfg, settings) is not None


def settings_violations(cfg: GantryConfig, settings: RolloutSettings, prefix: str) -> list[Violation]:
    """What makes one set of rollout settings unworkable, with keys under ``prefix`` (``rollout.``)."""
    if offline_only(cfg, settings):
        return []
    m = settings.metrics
    out = m.violations(cfg, settings, prefix)
    if not m.offers_traffic and m.requires_gates and not settings.gates:
        out.append(Violation(f"{prefix}gates", f"non-empty when metrics.kind is {m.kind} (it gives no "
                             "per-version traffic)", []))
    return out


def rollout_violations(cfg: GantryConfig) -> list[Violation]:
    """Every rollout problem of the stack: its defaults and each service's overrides."""
    out: list[Violation] = []
    if cfg.services:
        out += settings_violations(cfg, cfg.rollout, "rollout.")
    for name, svc in cfg.services.items():
        if svc.rollout is not None:
            out += settings_violations(cfg, svc.rollout, f"services.{name}.rollout.")
        settings = cfg.rollout_for(name)
        prefix = f"services.{name}.rollout." if svc.rollout is not None else "rollout."
        if not offline_only(cfg, settings):
            out += settings.metrics.service_violations(cfg, name, prefix)
    return out
