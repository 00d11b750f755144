"""no-default-namespace: Namespaced objects live in an explicit namespace other than default."""

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
from policies.props import get
from policies.rule import Fixture, M, resource_rule


def no_default_namespace(r: Resource, s: Settings) -> Outcome:
    if not k8s.is_namespaced(r.type):
        return NOT_APPLICABLE
    ns = k8s.namespace_of(r)
    if ns == "default":
        return fail("metadata.namespace must be an explicit namespace other than 'default', but "
                    f"{get(r.props, 'metadata.namespace')!r} was given")
    return COMPLIANT


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_CM, T_DEP, T_SVC, bad, ok

    r = b.res
    return [
        ok("explicit", r(T_DEP, b.deployment())),
        ok("provider-namespace", r(T_CM, {"data": {}}, provider_props={"namespace": "web"})),
        bad("omitted", r(T_CM, {"data": {}})),
        bad("default", r(T_SVC, b.service(metadata={"namespace": "default"}))),
    ]


RULE = resource_rule(
    "no-default-namespace", no_default_namespace,
    category="workloads",
    level=M,
    description="Namespaced objects live in an explicit namespace other than default.",
    remediation="Set metadata.namespace (or the provider's namespace).",
    fixtures=fixtures,
)
