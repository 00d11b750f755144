"""hpa-no-static-replicas: A workload scaled by an HPA does not pin spec.replicas."""

from __future__ import annotations

from collections.abc import Sequence

from policies import k8s
from policies.model import (
    COMPLIANT,
    Resource,
    Settings,
    StackOutcome,
    fail,
)
from policies.rule import PROD, A, Fixture, M, stack_rule
from policies.rules.autoscaling import _target, _workloads


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


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_DEP, T_HPA, bad, ok

    r = b.res
    _dep = r(T_DEP, b.deployment(replicas=None), name="web")
    return [
        ok("omitted", _dep, r(T_HPA, b.hpa(), name="web-hpa")),
        ok("ignored", r(T_DEP, b.deployment(), name="web", ignore_changes=("spec.replicas",)),
           r(T_HPA, b.hpa(), name="web-hpa")),
        bad("pinned", r(T_DEP, b.deployment(), name="web"), r(T_HPA, b.hpa(), name="web-hpa")),
    ]


RULE = stack_rule(
    "hpa-no-static-replicas", hpa_no_static_replicas,
    category="autoscaling",
    level=A,
    tiers={PROD: M},
    description="A workload scaled by an HPA does not pin spec.replicas.",
    remediation="Omit spec.replicas, or add it to the resource's ignoreChanges.",
    fixtures=fixtures,
)
