"""DNS failover between a primary and a standby region: the spec and the factory for each cloud's traffic switch.

Called by the Pulumi program for a stack with a ``dr`` section. The switch is health-checked and automatic
on every cloud: Route 53 failover records with health checks (AWS), a Cloud DNS primary/backup routing
policy with a health check (GCP), a Traffic Manager profile with priority routing (Azure). ``gantry dr``
also drives it explicitly, by making the primary unhealthy to the checks or changing priorities.

Secure and fast by default: HTTPS probes with SNI, a 10 s probe interval and 3 failures to fail over, and a
TTL of 30 s. The spec refuses a TTL and detection time that together exceed the RTO: a resolver may keep
the old answer for a whole TTL after the checks have failed over.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

import pulumi
from pydantic import Field, model_validator

from components.spec import Cloud, Spec
from components.validation import Violation, raise_first

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class ProbeSpec(Spec):
    """How each region's health is probed from outside."""

    protocol: Literal["HTTPS", "HTTP"] = Field(default="HTTPS", description="Probe protocol. Default: HTTPS.")
    port: int = Field(default=443, ge=1, le=65535, description="Probe port. Default: 443.")
    path: str = Field(default="/healthz", pattern=r"^/[A-Za-z0-9._~/-]*$", description="Probe path. Default: /healthz.")
    interval_seconds: Literal[10, 30] = Field(
        default=10, description="Seconds between probes (Route 53 offers 10 or 30). Default: 10.")
    failure_threshold: int = Field(default=3, ge=1, le=10, description="Failed probes before failover. Default: 3.")

    @property
    def detection_seconds(self) -> int:
        """Worst-case time for the checks to see a dead region."""
        return self.interval_seconds * self.failure_threshold


class FailoverSpec(Spec):
    """One hostname served by the primary region, failing over to the standby when its probes fail."""

    hostname: str = Field(description="The public name, e.g. web.example.com. Required.")
    zone: str = Field(description="Route 53 hosted zone id, Cloud DNS managed zone name, or the Traffic Manager "
                                  "profile's DNS label (Azure). Required.")
    primary: str = Field(description="The primary region's endpoint: load balancer hostname or IPv4. Required.")
    standby: str = Field(description="The standby region's endpoint: load balancer hostname or IPv4. Required.")
    standby_location: str | None = Field(
        default=None, description="GCP: the standby's region (Cloud DNS backup geo). Default: none.")
    ttl: int = Field(default=30, ge=1, le=300, description="Record TTL in seconds. Default: 30.")
    probe: ProbeSpec = Field(default_factory=ProbeSpec, description="Health probes. Default: HTTPS /healthz, 10 s x 3.")
    rto_seconds: int = Field(default=300, ge=30, le=3600,
                             description="Recovery time objective (the seed: under 5 minutes). Default: 300.")

    @model_validator(mode="after")
    def _check(self) -> FailoverSpec:
        out: list[Violation] = []
        if not _HOSTNAME.match(self.hostname):
            out.append(Violation("hostname", "a lowercase DNS name such as web.example.com", self.hostname))
        for field in ("primary", "standby"):
            value = getattr(self, field)
            if not (_is_ipv4(value) or _HOSTNAME.match(value)):
                out.append(Violation(field, "a load balancer hostname or an IPv4 address", value))
        if self.primary == self.standby:
            out.append(Violation("standby", "different from primary", self.standby))
        worst = self.ttl + self.probe.detection_seconds
        if worst > self.rto_seconds:
            out.append(Violation("ttl", f"at most {self.rto_seconds - self.probe.detection_seconds} so that TTL plus "
                                 f"detection ({self.probe.detection_seconds}s) stays within the RTO "
                                 f"({self.rto_seconds}s)", self.ttl))
        raise_first(out)
        return self

    @property
    def record_type(self) -> Literal["A", "CNAME"]:
        return "A" if _is_ipv4(self.primary) else "CNAME"


def _is_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def build_failover(name: str, spec: FailoverSpec, *, cloud: Cloud, tags: dict[str, str],
                   resource_group_name: pulumi.Input[str] | None = None, project: str | None = None,
                   opts: pulumi.ResourceOptions | None = None) -> pulumi.ComponentResource:
    """The traffic switch for ``cloud``; raises ``ValueError`` for a cloud without one (``local``)."""
    if cloud is Cloud.AWS:
        from components.aws.failover import Route53Failover

        return Route53Failover(name, spec, tags=tags, opts=opts)
    if cloud is Cloud.GCP:
        from components.gcp.failover import CloudDnsFailover

        return CloudDnsFailover(name, spec, labels=tags, project=project, opts=opts)
    if cloud is Cloud.AZURE:
        if resource_group_name is None:
            raise ValueError("resource_group_name must be given for an Azure Traffic Manager profile, but None was")
        from components.azure.failover import TrafficManagerFailover

        return TrafficManagerFailover(name, spec, resource_group_name=resource_group_name, tags=tags, opts=opts)
    raise ValueError(f"cloud must be one of aws, gcp, azure for a DNS failover, but {cloud.value!r} was given; "
                     "the sandbox switches regions in HAProxy")
