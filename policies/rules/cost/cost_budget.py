"""cost-budget: Node pools at max size stay within 80% of the stack's monthly budget."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import Field

from policies.model import COMPLIANT, Resource, Settings, StackOutcome, fail
from policies.props import get, integer, mapping, maps, strings, text
from policies.rule import Fixture, M, RuleOptions, options_of, stack_rule
from policies.rules.aws import EKS_NODEGROUP
from policies.rules.azure import AKS_AGENTPOOL, AKS_CLUSTER
from policies.rules.gcp import GKE_CLUSTER, GKE_NODEPOOL


class Options(RuleOptions):
    """Properties of ``cost-budget`` in the policy config (a stack's gantry:policy wins)."""

    threshold: float = Field(default=0.8, gt=0, le=1,
                             description="a number above 0 and at most 1: the share of the budget pools may use")
    monthly_budget_usd: float | None = Field(default=None, gt=0,
                                             description="a positive number of US dollars per month")


HOURS_PER_MONTH = 730

DEFAULT_GKE_ZONES = 3  # a regional GKE pool places maxNodeCount nodes in each of the region's zones


@dataclass(frozen=True, slots=True)
class PoolCost:
    """One node pool's worst case."""

    urn: str
    pool: str
    machine: str
    nodes: int
    monthly_usd: float | None


def _gke_zones(pool: Resource, resources: Sequence[Resource]) -> int:
    zones = strings(pool.props.get("nodeLocations"))
    if zones:
        return len(zones)
    location = text(pool.props.get("location"))
    for r in resources:
        if r.type == GKE_CLUSTER and (r.urn in pool.dependencies or r.urn == pool.parent):
            zones = strings(r.props.get("nodeLocations"))
            location = location or text(r.props.get("location"))
    if zones:
        return len(zones)
    # A zonal location such as europe-west1-b has one zone; a region has three.
    return 1 if location and location.count("-") >= 2 else DEFAULT_GKE_ZONES


def pool_costs(resources: Sequence[Resource], settings: Settings) -> list[PoolCost]:
    out: list[PoolCost] = []

    def add(r: Resource, pool: str, machine: str, nodes: int | None) -> None:
        if nodes is None:
            return
        price = settings.prices.get(machine)
        out.append(PoolCost(r.urn, pool, machine, nodes,
                            None if price is None else price * nodes * HOURS_PER_MONTH))

    for r in resources:
        if r.type == EKS_NODEGROUP:
            machine = (strings(r.props.get("instanceTypes")) or ["t3.medium"])[0]
            add(r, r.name, machine, integer(get(r.props, "scalingConfig.maxSize")))
        elif r.type == GKE_NODEPOOL:
            machine = text(get(r.props, "nodeConfig.machineType")) or "e2-medium"
            auto = mapping(r.props.get("autoscaling"))
            total = integer(auto.get("totalMaxNodeCount"))
            per_zone = integer(auto.get("maxNodeCount"))
            if total is None and per_zone is None:
                per_zone = integer(r.props.get("nodeCount")) or integer(r.props.get("initialNodeCount"))
            nodes = total if total is not None else None if per_zone is None else per_zone * _gke_zones(r, resources)
            add(r, r.name, machine, nodes)
        elif r.type == AKS_CLUSTER:
            for i, p in enumerate(maps(r.props.get("agentPoolProfiles"))):
                nodes = integer(p.get("maxCount")) if p.get("maxCount") is not None else integer(p.get("count"))
                add(r, text(p.get("name")) or f"pool{i}", text(p.get("vmSize")) or "", nodes)
        elif r.type == AKS_AGENTPOOL:
            nodes = integer(r.props.get("maxCount")) if r.props.get("maxCount") is not None \
                else integer(r.props.get("count"))
            add(r, r.name, text(r.props.get("vmSize")) or "", nodes)
    return out


def cost_budget(resources: Sequence[Resource], s: Settings) -> list[StackOutcome]:
    options = options_of(s, "cost-budget", Options)
    budget, threshold = options.monthly_budget_usd, options.threshold
    if budget is None:
        return []
    pools = pool_costs(resources, s)
    if not pools:
        return []
    total = sum(p.monthly_usd or 0.0 for p in pools)
    limit = budget * threshold
    unpriced = sorted({p.machine or "(unset)" for p in pools if p.monthly_usd is None})
    note = f"; no price for {', '.join(unpriced)} (add it to policies/prices.json)" if unpriced else ""
    detail = ", ".join(f"{p.pool} {p.nodes}x{p.machine}" for p in pools)
    if total > limit:
        return [StackOutcome(None, fail(
            f"node pools at max size cost about ${total:,.0f}/month ({detail}), above "
            f"{threshold:.0%} of the ${budget:,.0f} budget (${limit:,.0f}){note}"))]
    return [StackOutcome(None, COMPLIANT)]


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_AKS, T_GNP, T_NG, bad, ok

    r = b.res
    _pool = r(T_NG, b.nodegroup(), name="workload")
    return [
        ok("within-80pct", _pool, subject=None, settings=b.settings(monthly_budget_usd=1000)),
        bad("above-80pct", _pool, subject=None, settings=b.settings(monthly_budget_usd=500)),
        bad("gke-regional-pool-counts-zones", r(T_GNP, b.gke_nodepool(), name="pool"), subject=None,
            settings=b.settings(monthly_budget_usd=1000)),
        ok("aks", r(T_AKS, b.aks_cluster()), subject=None, settings=b.settings(monthly_budget_usd=1000)),
    ]


RULE = stack_rule(
    "cost-budget", cost_budget,
    category="cost",
    level=M,
    description="Node pools at max size stay within 80% of the stack's monthly budget.",
    remediation="Lower pool max sizes or machine types, or raise gantry:policy.monthlyBudgetUsd.",
    options=Options,
    fixtures=fixtures,
)
