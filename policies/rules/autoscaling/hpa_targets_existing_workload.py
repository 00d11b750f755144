"""hpa-targets-existing-workload: Every HPA scales a Deployment or StatefulSet that exists in the stack."""

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
from policies.rule import Fixture, M, stack_rule
from policies.rules.autoscaling import _target, _workloads


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


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_DEP, T_HPA, bad, ok

    r = b.res
    _dep = r(T_DEP, b.deployment(replicas=None), name="web")
    return [
        ok("found", _dep, r(T_HPA, b.hpa(), name="web-hpa"), subject=1),
        bad("typo", _dep, r(T_HPA, b.hpa(target="wbe"), name="web-hpa"), subject=1),
        bad("other-namespace", _dep, r(T_HPA, b.merge(b.hpa(), {
            "metadata": {"namespace": "api"}}), name="web-hpa"), subject=1),
    ]


RULE = stack_rule(
    "hpa-targets-existing-workload", hpa_targets_existing_workload,
    category="autoscaling",
    level=M,
    description="Every HPA scales a Deployment or StatefulSet that exists in the stack.",
    remediation="Point spec.scaleTargetRef at the workload's kind and metadata.name in the same namespace.",
    fixtures=fixtures,
)
