"""Traffic Manager failover: a priority-routed profile probing both regions. Built by ``build_failover``."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_azure_native as azure

from components.failover import FailoverSpec

ENDPOINT_TYPE = "Microsoft.Network/trafficManagerProfiles/externalEndpoints"


class TrafficManagerFailover(pulumi.ComponentResource):
    """Traffic Manager answers with the priority-1 endpoint while it is healthy, else with priority 2."""

    def __init__(self, name: str, spec: FailoverSpec, *, resource_group_name: pulumi.Input[str],
                 tags: Mapping[str, str], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("gantry:azure:TrafficManagerFailover", name, None, opts)
        probe = spec.probe
        profile = azure.trafficmanager.Profile(
            f"{name}-profile",
            profile_name=f"tm-{spec.zone}",
            resource_group_name=resource_group_name,
            location="global",
            profile_status="Enabled",
            traffic_routing_method="Priority",
            dns_config={"relative_name": spec.zone, "ttl": spec.ttl},
            monitor_config={
                "protocol": probe.protocol,
                "port": probe.port,
                "path": probe.path,
                "interval_in_seconds": probe.interval_seconds,
                # Traffic Manager requires 5..9 s with 10 s probing, 5..10 s with 30 s.
                "timeout_in_seconds": 5,
                "tolerated_number_of_failures": probe.failure_threshold,
            },
            endpoints=[
                {"name": "primary", "type": ENDPOINT_TYPE, "target": spec.primary, "priority": 1,
                 "endpoint_status": "Enabled"},
                {"name": "standby", "type": ENDPOINT_TYPE, "target": spec.standby, "priority": 2,
                 "endpoint_status": "Enabled"},
            ],
            tags=dict(tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.hostname = spec.hostname
        self.fqdn = profile.dns_config.apply(lambda d: str(getattr(d, "fqdn", "") or ""))
        self.register_outputs({"hostname": self.hostname, "fqdn": self.fqdn})
