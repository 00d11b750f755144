"""Route 53 failover: a health check per region and PRIMARY/SECONDARY failover records. Built by ``build_failover``."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from components.failover import FailoverSpec


class Route53Failover(pulumi.ComponentResource):
    """Route 53 answers with the primary while its health check passes, else with the standby."""

    def __init__(self, name: str, spec: FailoverSpec, *, tags: Mapping[str, str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gantry:aws:Route53Failover", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        probe = spec.probe
        self.health_check_ids: dict[str, pulumi.Output[str]] = {}
        for role, target in (("primary", spec.primary), ("secondary", spec.standby)):
            is_ip = spec.record_type == "A"
            check = aws.route53.HealthCheck(
                f"{name}-{role}-check",
                type=probe.protocol,
                fqdn=None if is_ip else target,
                ip_address=target if is_ip else None,
                port=probe.port,
                resource_path=probe.path,
                request_interval=probe.interval_seconds,
                failure_threshold=probe.failure_threshold,
                enable_sni=probe.protocol == "HTTPS" and not is_ip,
                measure_latency=True,
                reference_name=f"{name}-{role}"[:64],
                tags={**tags, "Name": f"{spec.hostname} {role}"},
                opts=child,
            )
            aws.route53.Record(
                f"{name}-{role}",
                zone_id=spec.zone,
                name=spec.hostname,
                type=spec.record_type,
                ttl=spec.ttl,
                records=[target],
                set_identifier=role,
                failover_routing_policies=[{"type": role.upper()}],
                health_check_id=check.id,
                opts=child,
            )
            self.health_check_ids[role] = check.id
        self.hostname = spec.hostname
        self.register_outputs({"hostname": self.hostname, "healthCheckIds": self.health_check_ids})
