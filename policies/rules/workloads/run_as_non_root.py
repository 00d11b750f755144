"""run-as-non-root: Containers run as a non-root user."""

from __future__ import annotations

from policies import k8s
from policies.model import (
    NOT_APPLICABLE,
    Outcome,
    Resource,
    Settings,
    fail_all,
)
from policies.props import flag, integer, mapping
from policies.rule import Fixture, M, resource_rule
from policies.rules.workloads import _each_container, _sc


def run_as_non_root(r: Resource, s: Settings) -> Outcome:
    spec = k8s.pod_spec(r.type, r.props)
    items = _each_container(r)
    if spec is None or items is None:
        return NOT_APPLICABLE
    pod = mapping(spec.get("securityContext"))
    out = []
    for name, c in items:
        non_root = flag(_sc(c).get("runAsNonRoot"))
        if non_root is None:
            non_root = flag(pod.get("runAsNonRoot"))
        user = integer(_sc(c).get("runAsUser") if _sc(c).get("runAsUser") is not None else pod.get("runAsUser"))
        if non_root is not True or user == 0:
            out.append(f"container {name} must run with runAsNonRoot true and a non-zero runAsUser")
    return fail_all(out)


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_DEP, bad, ok

    r = b.res
    return [
        ok("container", r(T_DEP, b.deployment())),
        bad("uid-0", r(T_DEP, b.deployment(pod={"containers": [b.container(
            securityContext={"runAsUser": 0})]}))),
        bad("unset", r(T_DEP, b.deployment(pod={"securityContext": None, "containers": [b.container(
            securityContext={"runAsNonRoot": None})]}))),
    ]


RULE = resource_rule(
    "run-as-non-root", run_as_non_root,
    category="workloads",
    level=M,
    description="Containers run as a non-root user.",
    remediation="Set securityContext.runAsNonRoot true (pod or container) and a non-zero runAsUser.",
    fixtures=fixtures,
)
