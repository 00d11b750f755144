"""hpa-min-replicas: HPAs keep at least 2 replicas in prod and can grow."""

from __future__ import annotations

from policies import k8s
from policies.model import (
    NOT_APPLICABLE,
    Outcome,
    Resource,
    Settings,
    fail_all,
)
from policies.props import get, integer
from policies.rule import PROD, A, Fixture, M, resource_rule


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


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import DEV, T_HPA, bad, ok

    r = b.res
    return [
        ok("prod-3", r(T_HPA, b.hpa())),
        ok("dev-1", r(T_HPA, b.hpa(min_replicas=1)), settings=DEV),
        bad("prod-1", r(T_HPA, b.hpa(min_replicas=1))),
    ]


RULE = resource_rule(
    "hpa-min-replicas", hpa_min_replicas,
    category="autoscaling",
    level=A,
    tiers={PROD: M},
    description="HPAs keep at least 2 replicas in prod and can grow.",
    remediation="Set spec.minReplicas >= 2 and spec.maxReplicas > minReplicas.",
    fixtures=fixtures,
)
