"""sa-token-no-automount: Service-account tokens are not mounted unless needed."""

from __future__ import annotations

from policies import k8s
from policies.model import (
    COMPLIANT,
    NOT_APPLICABLE,
    Outcome,
    Resource,
    Settings,
    fail,
)
from policies.props import flag
from policies.rule import PROD, A, Fixture, M, resource_rule


def sa_token_no_automount(r: Resource, s: Settings) -> Outcome:
    if r.type == "kubernetes:core/v1:ServiceAccount":
        if flag(r.props.get("automountServiceAccountToken")) is False:
            return COMPLIANT
        return fail("automountServiceAccountToken must be false on the ServiceAccount")
    spec = k8s.pod_spec(r.type, r.props)
    if spec is None:
        return NOT_APPLICABLE
    if flag(spec.get("automountServiceAccountToken")) is False:
        return COMPLIANT
    return fail("the pod spec must set automountServiceAccountToken false (mount a projected token only where "
                "the API is needed)")


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_DEP, T_SA, bad, ok

    r = b.res
    return [
        ok("pod", r(T_DEP, b.deployment())),
        ok("service-account", r(T_SA, {"metadata": {"namespace": "web"},
                                                                 "automountServiceAccountToken": False})),
        bad("default", r(T_DEP, b.deployment(pod={"automountServiceAccountToken": None}))),
    ]


RULE = resource_rule(
    "sa-token-no-automount", sa_token_no_automount,
    category="workloads",
    level=A,
    tiers={PROD: M},
    description="Service-account tokens are not mounted unless needed.",
    remediation="Set automountServiceAccountToken false on the pod spec or ServiceAccount.",
    fixtures=fixtures,
)
