"""Autoscaling rules: node-pool bounds, HPAs that target real workloads, PDBs that let nodes drain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from policies import k8s
from policies.model import (
    COMPLIANT,
    NOT_APPLICABLE,
    Outcome,
    Resource,
    Settings,
    StackOutcome,
    fail,
    fail_all,
)
from policies.props import flag, get, integer, mapping, maps, text
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


def _aks_pool(path: str, pool: Mapping[str, object], prod: bool) -> list[str]:
    if flag(pool.get("enableAutoScaling")) is not True:
        return [f"{path + '.' if path else ''}enableAutoScaling must be true"]
    return bounds_problems(path, integer(pool.get("minCount")), integer(pool.get("count")),
                           integer(pool.get("maxCount")), prod)


def _target(hpa: Resource) -> tuple[str, str]:
    ref = mapping(get(hpa.props, "spec.scaleTargetRef"))
    return text(ref.get("kind")) or "", text(ref.get("name")) or ""


def _workloads(resources: Sequence[Resource]) -> dict[tuple[str, str, str], Resource]:
    """Scalable workloads by (namespace, kind, name)."""
    return {(k8s.namespace_of(r), k8s.kind(r.type), k8s.name_of(r)): r for r in resources if r.type in k8s.SCALABLE}


def hpa_targets_existing_workload(resources: Sequence[Resource], s: Settings) -> list[StackOutcome]:
    workloads = _workloads(resources)
    out = []
    for r in resources:
        if r.type not in k8s.HPA_TYPES:
            continue
        kind, name = _target(r)
        key = (k8s.namespace_of(r), kind, name)
        ok = key in workloads
        out.append(StackOutcome(r.urn, COMPLIANT if ok else fail(
            f"spec.scaleTargetRef {kind}/{name} must name a Deployment or StatefulSet in namespace "
            f"{key[0]} of this stack, but none matches")))
    return out


def hpa_min_replicas(r: Resource, s: Settings) -> Outcome:
    if r.type not in k8s.HPA_TYPES:
        return NOT_APPLICABLE
    low = integer(get(r.props, "spec.minReplicas"))
    high = integer(get(r.props, "spec.maxReplicas"))
    floor = 2 if s.prod else 1
    out = []
    # minReplicas defaults to 1 when omitted.
    if (low if low is not None else 1) < floor:
        out.append(f"spec.minReplicas must be >= {floor} in {s.tier.value}, but {low if low is not None else 1} "
                   "was given")
    if high is not None and low is not None and high <= low and s.prod:
        out.append(f"spec.maxReplicas must be > minReplicas ({low}), but {high} was given")
    return fail_all(out)


def hpa_no_static_replicas(resources: Sequence[Resource], s: Settings) -> list[StackOutcome]:
    workloads = _workloads(resources)
    out = []
    for r in resources:
        if r.type not in k8s.HPA_TYPES:
            continue
        kind, name = _target(r)
        target = workloads.get((k8s.namespace_of(r), kind, name))
        if target is None:
            continue
        static = k8s.replicas(target.props) is not None
        ignored = any(p in ("spec.replicas", "spec") for p in target.ignore_changes)
        out.append(StackOutcome(target.urn, COMPLIANT if not static or ignored else fail(
            f"spec.replicas is set while HPA {k8s.name_of(r)} owns the replica count; every update resets it. "
            "Omit spec.replicas or add it to ignoreChanges")))
    return out


def _pod_count(workload: Resource, resources: Sequence[Resource]) -> int | None:
    for r in resources:
        if r.type in k8s.HPA_TYPES and _target(r) == (k8s.kind(workload.type), k8s.name_of(workload)) \
                and k8s.namespace_of(r) == k8s.namespace_of(workload):
            return integer(get(r.props, "spec.minReplicas")) or 1
    n = k8s.replicas(workload.props)
    return 1 if n is None else n


def _percent(value: object) -> int | None:
    if isinstance(value, str) and value.endswith("%"):
        return integer(value[:-1])
    return None


def pdb_allows_disruption(resources: Sequence[Resource], s: Settings) -> list[StackOutcome]:
    out = []
    for pdb in resources:
        if pdb.type not in k8s.PDB_TYPES:
            continue
        spec = mapping(pdb.props.get("spec"))
        max_unavail, min_avail = spec.get("maxUnavailable"), spec.get("minAvailable")
        problems = []
        if max_unavail is not None and (integer(max_unavail) == 0 or _percent(max_unavail) == 0):
            problems.append("spec.maxUnavailable of 0 blocks every node drain")
        if _percent(min_avail) == 100:
            problems.append("spec.minAvailable of 100% blocks every node drain")
        selector = k8s.match_labels(pdb.props)
        floor = integer(min_avail) if not isinstance(min_avail, str) else None
        if floor is not None:
            for w in resources:
                if w.type in k8s.SCALABLE and k8s.namespace_of(w) == k8s.namespace_of(pdb) \
                        and k8s.selects(selector, k8s.template_labels(w.type, w.props)):
                    pods = _pod_count(w, resources)
                    if pods and floor >= pods:
                        problems.append(f"spec.minAvailable {floor} must be below the {pods} pod(s) of "
                                        f"{k8s.name_of(w)}, or no pod can ever be evicted")
        out.append(StackOutcome(pdb.urn, fail_all(problems)))
    return out
