"""pdb-allows-disruption: PodDisruptionBudgets leave room to evict at least one pod."""

from __future__ import annotations

from collections.abc import Sequence

from policies import k8s
from policies.model import (
    Resource,
    Settings,
    StackOutcome,
    fail_all,
)
from policies.props import get, integer, mapping
from policies.rule import Fixture, M, stack_rule
from policies.rules.autoscaling import _target


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


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_DEP, T_HPA, T_PDB, bad, ok

    r = b.res
    _dep = r(T_DEP, b.deployment(replicas=None), name="web")
    return [
        ok("below-hpa-floor", _dep, r(T_HPA, b.hpa(min_replicas=3), name="h"),
           r(T_PDB, b.pdb(minAvailable=2), name="p"), subject=2),
        bad("equals-hpa-floor", _dep, r(T_HPA, b.hpa(min_replicas=2), name="h"),
            r(T_PDB, b.pdb(minAvailable=2), name="p"), subject=2),
        bad("max-unavailable-0", r(T_PDB, b.pdb(maxUnavailable=0), name="p")),
        bad("min-available-100pct", r(T_PDB, b.pdb(minAvailable="100%"), name="p")),
    ]


RULE = stack_rule(
    "pdb-allows-disruption", pdb_allows_disruption,
    category="autoscaling",
    level=M,
    description="PodDisruptionBudgets leave room to evict at least one pod.",
    remediation="Keep minAvailable below the replica floor (or use maxUnavailable >= 1).",
    fixtures=fixtures,
)
