"""drop-capabilities-seccomp: Containers drop ALL capabilities and use the RuntimeDefault seccomp profile."""

from __future__ import annotations

from policies import k8s
from policies.model import (
    NOT_APPLICABLE,
    Outcome,
    Resource,
    Settings,
    fail_all,
)
from policies.props import get, strings, text
from policies.rule import PROD, A, Fixture, M, resource_rule
from policies.rules.workloads import _each_container, _sc


def drop_capabilities_seccomp(r: Resource, s: Settings) -> Outcome:
    spec = k8s.pod_spec(r.type, r.props)
    items = _each_container(r)
    if spec is None or items is None:
        return NOT_APPLICABLE
    pod_seccomp = text(get(spec, "securityContext.seccompProfile.type"))
    out = []
    for name, c in items:
        if "ALL" not in strings(get(_sc(c), "capabilities.drop")):
            out.append(f"container {name} must drop ALL capabilities")
        seccomp = text(get(_sc(c), "seccompProfile.type")) or pod_seccomp
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"container {name} must use seccompProfile RuntimeDefault or Localhost, "
                       f"but {seccomp!r} was given")
    return fail_all(out)


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_DEP, bad, ok

    r = b.res
    return [
        ok("on", r(T_DEP, b.deployment())),
        bad("keeps-caps", r(T_DEP, b.deployment(pod={"containers": [b.container(
            securityContext={"capabilities": {"drop": ["NET_RAW"]}})]}))),
        bad("unconfined", r(T_DEP, b.deployment(pod={
            "securityContext": {"seccompProfile": {"type": "Unconfined"}},
            "containers": [b.container(securityContext={"seccompProfile": None})]}))),
    ]


RULE = resource_rule(
    "drop-capabilities-seccomp", drop_capabilities_seccomp,
    category="workloads",
    level=A,
    tiers={PROD: M},
    description="Containers drop ALL capabilities and use the RuntimeDefault seccomp profile.",
    remediation="Set capabilities.drop ['ALL'] and seccompProfile.type RuntimeDefault.",
    fixtures=fixtures,
)
