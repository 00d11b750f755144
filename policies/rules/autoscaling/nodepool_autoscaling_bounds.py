"""nodepool-autoscaling-bounds: Node pools autoscale with 1 <= min <= desired <= max, and max > min in prod."""

from __future__ import annotations

from collections.abc import Mapping

from policies.model import (
    NOT_APPLICABLE,
    Outcome,
    Resource,
    Settings,
    fail,
    fail_all,
)
from policies.props import flag, integer, mapping, maps
from policies.rule import Fixture, M, resource_rule
from policies.rules.aws import EKS_NODEGROUP
from policies.rules.azure import AKS_AGENTPOOL, AKS_CLUSTER
from policies.rules.gcp import GKE_NODEPOOL


def bounds_problems(path: str, low: int | None, desired: int | None, high: int | None, prod: bool) -> list[str]:
    """1 <= min <= desired <= max, and max > min in prod (a pool that cannot grow cannot absorb load)."""
    p = f"{path}." if path else ""
    if low is None or high is None:
        return [f"{p}min and max sizes must both be set for the autoscaler"]
    out = []
    if low < 1:
        out.append(f"{p}min must be >= 1, but {low} was given")
    if desired is not None and not low <= desired <= high:
        out.append(f"{p}desired must be within min..max ({low}..{high}), but {desired} was given")
    if low > high:
        out.append(f"{p}min ({low}) must be <= max ({high})")
    elif prod and high <= low:
        out.append(f"{p}max must be > min in prod, but min = max = {low}")
    return out


def _aks_pool(path: str, pool: Mapping[str, object], prod: bool) -> list[str]:
    if flag(pool.get("enableAutoScaling")) is not True:
        return [f"{path + '.' if path else ''}enableAutoScaling must be true"]
    return bounds_problems(path, integer(pool.get("minCount")), integer(pool.get("count")),
                           integer(pool.get("maxCount")), prod)


def nodepool_autoscaling_bounds(r: Resource, s: Settings) -> Outcome:
    if r.type == EKS_NODEGROUP:
        sc = mapping(r.props.get("scalingConfig"))
        return fail_all(bounds_problems("scalingConfig", integer(sc.get("minSize")), integer(sc.get("desiredSize")),
                                        integer(sc.get("maxSize")), s.prod))
    if r.type == GKE_NODEPOOL:
        auto = r.props.get("autoscaling")
        if not isinstance(auto, Mapping):
            return fail("autoscaling must be set (minNodeCount/maxNodeCount); a fixed nodeCount cannot scale")
        low = integer(auto.get("minNodeCount") if auto.get("minNodeCount") is not None
                      else auto.get("totalMinNodeCount"))
        high = integer(auto.get("maxNodeCount") if auto.get("maxNodeCount") is not None
                       else auto.get("totalMaxNodeCount"))
        desired = integer(r.props.get("initialNodeCount"))
        return fail_all(bounds_problems("autoscaling", low, desired, high, s.prod))
    if r.type == AKS_CLUSTER:
        out = []
        for i, pool in enumerate(maps(r.props.get("agentPoolProfiles"))):
            out += _aks_pool(f"agentPoolProfiles[{i}]", pool, s.prod)
        return fail_all(out) if maps(r.props.get("agentPoolProfiles")) else NOT_APPLICABLE
    if r.type == AKS_AGENTPOOL:
        return fail_all(_aks_pool("", r.props, s.prod))
    return NOT_APPLICABLE


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import DEV, T_AKS, T_AP, T_GNP, T_NG, bad, ok

    r = b.res
    return [
        ok("eks", r(T_NG, b.nodegroup())),
        ok("gke", r(T_GNP, b.gke_nodepool())),
        ok("aks", r(T_AKS, b.aks_cluster())),
        ok("dev-fixed-size-allowed", r(T_NG, b.nodegroup(
            scalingConfig={"minSize": 1, "desiredSize": 1, "maxSize": 1})), settings=DEV),
        bad("prod-fixed-size", r(T_NG, b.nodegroup(
            scalingConfig={"minSize": 3, "desiredSize": 3, "maxSize": 3}))),
        bad("desired-above-max", r(T_NG, b.nodegroup(
            scalingConfig={"minSize": 1, "desiredSize": 9, "maxSize": 3}))),
        bad("gke-no-autoscaling", r(T_GNP, b.gke_nodepool(autoscaling=None, nodeCount=3))),
        bad("aks-autoscaler-off", r(T_AP, b.agent_pool(enableAutoScaling=False))),
    ]


RULE = resource_rule(
    "nodepool-autoscaling-bounds", nodepool_autoscaling_bounds,
    category="autoscaling",
    level=M,
    description="Node pools autoscale with 1 <= min <= desired <= max, and max > min in prod.",
    remediation="Set the pool's min, desired and max sizes (Gantry: nodePools[].minSize/desiredSize/maxSize).",
    fixtures=fixtures,
)
