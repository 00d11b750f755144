"""Cloud DNS failover: a primary/backup routing policy health-checked from three regions. Built by ``build_failover``.

Cloud DNS health-checks external endpoints only by IP address, so GCP failover records are ``A`` records.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_gcp as gcp

from components.failover import FailoverSpec

SOURCE_REGIONS = ("us-east4", "europe-west1", "asia-southeast1")
"""Where the probes come from: Cloud DNS needs exactly three source regions for external endpoints."""


class CloudDnsFailover(pulumi.ComponentResource):
    """Cloud DNS answers with the primary while it is healthy, else with the standby (trickle ratio 0)."""

    def __init__(self, name: str, spec: FailoverSpec, *, labels: Mapping[str, str], project: str | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gantry:gcp:CloudDnsFailover", name, None, opts)
        if spec.record_type != "A":
            raise ValueError(f"primary must be an IPv4 address for Cloud DNS health-checked failover, "
                             f"but {spec.primary!r} was given")
        if spec.standby_location is None:
            raise ValueError("standbyLocation must be set (the standby's region) for Cloud DNS failover, "
                             "but None was given")
        child = pulumi.ResourceOptions(parent=self)
        probe = spec.probe
        check_args = {"port": probe.port, "request_path": probe.path}
        check = gcp.compute.HealthCheck(
            f"{name}-check",
            project=project,
            check_interval_sec=probe.interval_seconds,
            timeout_sec=min(5, probe.interval_seconds),
            unhealthy_threshold=probe.failure_threshold,
            healthy_threshold=2,
            source_regions=list(SOURCE_REGIONS),
            https_health_check=check_args if probe.protocol == "HTTPS" else None,
            http_health_check=check_args if probe.protocol == "HTTP" else None,
            log_config={"enable": True},
            opts=child,
        )
        gcp.dns.RecordSet(
            f"{name}-record",
            project=project,
            managed_zone=spec.zone,
            name=f"{spec.hostname}.",
            type="A",
            ttl=spec.ttl,
            routing_policy={
                "health_check": check.id,
                "primary_backup": {
                    "primary": {"external_endpoints": [spec.primary]},
                    "backup_geos": [{"location": spec.standby_location,
                                     "health_checked_targets": {"external_endpoints": [spec.standby]}}],
                    "trickle_ratio": 0.0,
                },
            },
            opts=child,
        )
        del labels  # Cloud DNS record sets and health checks take no labels.
        self.hostname = spec.hostname
        self.health_check_id = check.id
        self.register_outputs({"hostname": self.hostname, "healthCheckId": self.health_check_id})
