"""container-probes: Long-running containers have readiness and liveness probes."""

from __future__ import annotations

from policies import k8s
from policies.model import (
    NOT_APPLICABLE,
    Outcome,
    Resource,
    Settings,
    fail_all,
)
from policies.props import mapping
from policies.rule import PROD, A, Fixture, M, resource_rule
from policies.rules.workloads import _each_container


def container_probes(r: Resource, s: Settings) -> Outcome:
    if r.type in (k8s.JOB, k8s.CRONJOB):
        return NOT_APPLICABLE  # run-to-completion pods are not routed to
    items = _each_container(r, init=False)
    if items is None:
        return NOT_APPLICABLE
    out = []
    for name, c in items:
        missing = [p for p in ("readinessProbe", "livenessProbe") if not mapping(c.get(p))]
        if missing:
            out.append(f"container {name} must define {' and '.join(missing)}")
    return fail_all(out)


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_DEP, bad, ok

    r = b.res
    return [
        ok("both", r(T_DEP, b.deployment())),
        bad("no-liveness", r(T_DEP, b.deployment(pod={"containers": [b.container(
            livenessProbe=None)]}))),
    ]


RULE = resource_rule(
    "container-probes", container_probes,
    category="workloads",
    level=A,
    tiers={PROD: M},
    description="Long-running containers have readiness and liveness probes.",
    remediation="Add readinessProbe and livenessProbe (different endpoints).",
    fixtures=fixtures,
)
