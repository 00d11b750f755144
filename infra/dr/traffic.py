"""The traffic stack's half of DR: the DNS failover records, pointed at the region ``gantry:dr.active`` names.

Called by the Pulumi program (``infra.platform``) for a stack whose ``gantry:dr`` lists ``records``.
Normally each record's primary is the primary region and the health checks fail over on their own;
``gantry dr failover`` writes ``gantry:dr.active: standby`` and runs ``up``, which swaps the roles, so
traffic stays on the standby even when the old primary's checks pass again, until ``gantry dr failback``.
"""

from __future__ import annotations

import pulumi

from components.failover import FailoverSpec, build_failover
from infra.config import GantryConfig


def effective_record(spec: FailoverSpec, *, active: str, primary_region: str | None) -> FailoverSpec:
    """The record as rendered: roles swapped while the standby is active (GCP's backup is then the primary's region)."""
    if active != "standby":
        return spec
    return spec.model_copy(update={"primary": spec.standby, "standby": spec.primary,
                                   "standby_location": primary_region if spec.standby_location else None})


def build_traffic_switch(cfg: GantryConfig, *, resource_group_name: pulumi.Input[str] | None = None
                         ) -> dict[str, pulumi.Input[object]]:
    """One failover component per record; returns the ``dr`` stack output (active region and hostnames)."""
    assert cfg.dr is not None
    hostnames: list[str] = []
    for spec in cfg.dr.records:
        rendered = effective_record(spec, active=cfg.dr.active, primary_region=cfg.region)
        name = spec.hostname.split(".", 1)[0] + "-dr"
        build_failover(name, rendered, cloud=cfg.cloud, tags=cfg.tags, project=cfg.project,
                       resource_group_name=resource_group_name)
        hostnames.append(spec.hostname)
    return {"active": cfg.dr.active, "primary": cfg.dr.primary, "standby": cfg.dr.standby, "hostnames": hostnames}
