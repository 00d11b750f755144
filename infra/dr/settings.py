"""Typed ``gantry:dr`` stack config: the primary and standby stacks, warm size, health checks, RTO, replication lag.

Loaded by ``infra.config`` as ``GantryConfig.dr``; read by ``infra.dr`` (the failover engine and its
targets), ``gantry dr`` and the Pulumi program (which region the traffic switch points at).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.failover import FailoverSpec
from components.spec import Spec
from components.validation import Violation, raise_first
from infra.settings.rollout import Duration

PROMETHEUS_SENTINEL = "sandbox"
"""``url: sandbox``: the running sandbox's Prometheus (the sandbox package resolves it)."""

DEFAULT_RTO = "5m"
"""The seed's recovery time objective: under 5 minutes."""

Role = Literal["primary", "standby"]
_STACK = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class HealthCheckSettings(Spec):
    """One HTTP check run against each region; a region is healthy when every check answers 2xx."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$", description="Check name (usually the service). Required.")
    primary_url: str | None = Field(
        default=None, description="URL probed in the primary region. Required unless the stack is cloud local "
                                  "(the sandbox probes each region's demo processes).")
    standby_url: str | None = Field(default=None, description="URL probed in the standby region. Same rule.")
    timeout: Duration = Field(default=Duration("2s"), description="A probe that takes longer fails. Default: 2s.")
    interval: Duration = Field(
        default=Duration("10s"), description="Between probes. Default: 10s (Route 53's fast checks).")
    failure_threshold: int = Field(
        default=3, ge=1, le=10, description="Consecutive failed probes before a region counts as down. Default: 3.")

    @model_validator(mode="after")
    def _check(self) -> HealthCheckSettings:
        out: list[Violation] = []
        for field in ("primary_url", "standby_url"):
            url = getattr(self, field)
            if url is not None and not url.startswith(("https://", "http://")):
                out.append(Violation(_camel(field), "an http:// or https:// URL", url))
        if float(self.timeout) > float(self.interval):
            out.append(Violation("timeout", f"<= interval ({self.interval})", self.timeout))
        raise_first(out)
        return self

    @property
    def detection_seconds(self) -> float:
        """How long a dead region takes to be confirmed down by this check, at worst."""
        return float(self.interval) * self.failure_threshold


class ReplicationLagSettings(Spec):
    """The data-consistency check run after a failover: a metrics query whose value must stay under ``max``."""

    url: str = Field(description="Prometheus base URL, or `sandbox` for the running sandbox's. Required.")
    query: str = Field(min_length=1, max_length=2000,
                       description="PromQL giving the standby's replication lag in seconds. Required.")
    max: float = Field(ge=0, description="Largest acceptable lag, in seconds. Required.")

    @model_validator(mode="after")
    def _check(self) -> ReplicationLagSettings:
        if self.url != PROMETHEUS_SENTINEL and not self.url.startswith(("http://", "https://")):
            raise_first([Violation("url", f"an http(s) URL or {PROMETHEUS_SENTINEL!r}", self.url)])
        return self


class DrSettings(Spec):
    """How a service stack fails over to its standby (the same section in both stacks)."""

    primary: str = Field(pattern=_STACK, description="The primary stack, e.g. prod. Required.")
    standby: str = Field(pattern=_STACK, description="The standby stack, e.g. prod-dr (for cloud local: the "
                                                     "sandbox's second region). Required.")
    traffic_stack: str | None = Field(
        default=None, pattern=_STACK,
        description="The stack whose `gantry:dr.active` the traffic switch reads. Default: the primary.")
    active: Role = Field(default="primary", description="Where traffic goes now; `gantry dr` writes it. "
                                                        "Default: primary.")
    warm_size: int = Field(default=1, ge=0, le=1000,
                           description="Replicas per service the standby keeps while idle (pilot light). Default: 1.")
    active_size: int = Field(default=3, ge=1, le=1000,
                             description="Replicas per service the standby scales to on failover. Default: 3 "
                                         "(the seed's).")
    rto: Duration = Field(
        default=Duration(DEFAULT_RTO), description="Recovery time objective. Default: 5m (the seed's).")
    health_checks: list[HealthCheckSettings] = Field(
        min_length=1, max_length=50, description="Checks that decide whether a region is healthy. Required.")
    verify_probes: int = Field(
        default=3, ge=1, le=100,
        description="Consecutive passing probes of the new region, after the switch, that verify it. Default: 3.")
    replication_lag: ReplicationLagSettings | None = Field(
        default=None, description="Data-consistency check after a failover. Default: none (reported as skipped).")
    records: list[FailoverSpec] = Field(
        default_factory=list,
        description="DNS failover records the traffic stack renders (Route 53, Cloud DNS or Traffic Manager). "
                    "Default: none.")

    @model_validator(mode="after")
    def _check(self) -> DrSettings:
        out: list[Violation] = []
        if self.standby == self.primary:
            out.append(Violation("standby", f"a stack other than the primary ({self.primary})", self.standby))
        if self.warm_size >= self.active_size:
            out.append(Violation("warmSize", f"< activeSize ({self.active_size}): the standby scales up on failover",
                                 self.warm_size))
        names = [c.name for c in self.health_checks]
        for name in sorted({n for n in names if names.count(n) > 1}):
            out.append(Violation("healthChecks", "named uniquely", name))
        rto = float(self.rto)
        if rto <= 0:
            out.append(Violation("rto", "a positive duration", self.rto))
        for i, check in enumerate(self.health_checks):
            if check.detection_seconds >= rto:
                out.append(Violation(f"healthChecks[{i}].failureThreshold",
                                     f"such that interval x failureThreshold stays under the RTO ({self.rto})",
                                     check.failure_threshold))
        raise_first(out)
        return self

    @property
    def rto_seconds(self) -> float:
        return float(self.rto)

    @property
    def traffic(self) -> str:
        """The stack that holds the traffic switch."""
        return self.traffic_stack or self.primary

    def role_of(self, stack: str) -> Role | None:
        if stack == self.primary:
            return "primary"
        if stack == self.standby:
            return "standby"
        return None


PROD_MIN_REPLICAS = 2
"""The delivery components refuse fewer replicas in prod (a pod must be able to go during a node drain)."""


def dr_violations(dr: DrSettings, *, local: bool, services: list[str], prod: bool = False) -> list[Violation]:
    """Cross-field rules that need the rest of the stack: URLs for clouds, the sandbox for local, prod's floor."""
    out: list[Violation] = []
    if prod and dr.warm_size < PROD_MIN_REPLICAS:
        out.append(Violation("dr.warmSize", f">= {PROD_MIN_REPLICAS} in prod (the standby's services run at least "
                             f"{PROD_MIN_REPLICAS} replicas)", dr.warm_size))
    for i, check in enumerate(dr.health_checks):
        if local:
            if check.name not in services:
                out.append(Violation(f"dr.healthChecks[{i}].name",
                                     f"one of the stack's services ({', '.join(sorted(services)) or 'none'}) in the "
                                     "sandbox", check.name))
            continue
        for field in ("primary_url", "standby_url"):
            if getattr(check, field) is None:
                out.append(Violation(f"dr.healthChecks[{i}].{_camel(field)}", "set for a cloud stack", None))
    if local and dr.records:
        out.append(Violation("dr.records", "empty for cloud local (the sandbox switches regions in HAProxy)",
                             f"{len(dr.records)} record(s)"))
    if dr.replication_lag is not None and not local and dr.replication_lag.url == PROMETHEUS_SENTINEL:
        out.append(Violation("dr.replicationLag.url", "an http(s) URL for a cloud stack", PROMETHEUS_SENTINEL))
    return out


def _camel(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(p.title() for p in rest)
