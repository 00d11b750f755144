"""workload-ha: Prod workloads run 2+ replicas with a PDB and topology spread."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from policies import k8s
from policies.model import (
    Resource,
    Settings,
    StackOutcome,
    fail_all,
)
from policies.props import get, integer, mapping, maps
from policies.rule import PROD, A, Fixture, M, stack_rule


def _spread(spec: Mapping[str, object]) -> bool:
    if maps(spec.get("topologySpreadConstraints")):
        return True
    return bool(get(spec, "affinity.podAntiAffinity"))


def _hpa_floor(w: Resource, resources: Sequence[Resource]) -> int | None:
    for r in resources:
        ref = mapping(get(r.props, "spec.scaleTargetRef"))
        if r.type in k8s.HPA_TYPES and ref.get("name") == k8s.name_of(w) \
                and ref.get("kind") == k8s.kind(w.type) and k8s.namespace_of(r) == k8s.namespace_of(w):
            return integer(get(r.props, "spec.minReplicas")) or 1
    return None


def workload_ha(resources: Sequence[Resource], s: Settings) -> list[StackOutcome]:
    if not s.prod:
        return []
    pdbs = [r for r in resources if r.type in k8s.PDB_TYPES]
    out = []
    for w in resources:
        if w.type not in (k8s.DEPLOYMENT, k8s.STATEFULSET):
            continue
        declared = k8s.replicas(w.props)
        floor = _hpa_floor(w, resources)
        count = floor if floor is not None else (1 if declared is None else declared)
        if declared == 0 and floor is None:
            continue  # a deliberately idle track (the inactive blue/green color)
        problems = []
        if count < 2:
            problems.append(f"replicas must be >= 2 in prod, but {count} was given")
        pod_labels = k8s.template_labels(w.type, w.props)
        if not any(k8s.namespace_of(p) == k8s.namespace_of(w) and k8s.selects(k8s.match_labels(p.props), pod_labels)
                   for p in pdbs):
            problems.append("no PodDisruptionBudget selects its pods")
        if not _spread(k8s.pod_spec(w.type, w.props) or {}):
            problems.append("the pod spec needs topologySpreadConstraints or podAntiAffinity across zones")
        out.append(StackOutcome(w.urn, fail_all(problems)))
    return out


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_DEP, T_PDB, bad, ok

    r = b.res
    return [
        ok("prod", r(T_DEP, b.deployment()), r(T_PDB, b.pdb(), name="p")),
        bad("single-replica", r(T_DEP, b.deployment(replicas=1)), r(T_PDB, b.pdb(), name="p")),
        bad("no-pdb-no-spread", r(T_DEP, b.deployment(pod={"topologySpreadConstraints": None}))),
    ]


RULE = stack_rule(
    "workload-ha", workload_ha,
    category="workloads",
    level=A,
    tiers={PROD: M},
    description="Prod workloads run 2+ replicas with a PDB and topology spread.",
    remediation="Set replicas (or HPA minReplicas) >= 2, add a PDB and topologySpreadConstraints.",
    fixtures=fixtures,
)
