"""no-privilege-escalation: Containers are not privileged and cannot escalate privileges."""

from __future__ import annotations

from policies.model import (
    NOT_APPLICABLE,
    Outcome,
    Resource,
    Settings,
    fail_all,
)
from policies.props import flag
from policies.rule import Fixture, M, resource_rule
from policies.rules.workloads import _each_container, _sc


def no_privilege_escalation(r: Resource, s: Settings) -> Outcome:
    items = _each_container(r)
    if items is None:
        return NOT_APPLICABLE
    out = []
    for name, c in items:
        if flag(_sc(c).get("privileged")) is True:
            out.append(f"container {name} must not be privileged")
        # The kernel default allows escalation, so only an explicit false counts.
        if flag(_sc(c).get("allowPrivilegeEscalation")) is not False:
            out.append(f"container {name} must set securityContext.allowPrivilegeEscalation false")
    return fail_all(out)


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_DEP, bad, ok

    r = b.res
    return [
        ok("off", r(T_DEP, b.deployment())),
        bad("unset", r(T_DEP, b.deployment(pod={"containers": [b.container(
            securityContext={"allowPrivilegeEscalation": None})]}))),
        bad("privileged", r(T_DEP, b.deployment(pod={"containers": [b.container(
            securityContext={"privileged": True})]}))),
    ]


RULE = resource_rule(
    "no-privilege-escalation", no_privilege_escalation,
    category="workloads",
    level=M,
    description="Containers are not privileged and cannot escalate privileges.",
    remediation="Set securityContext.allowPrivilegeEscalation false and drop privileged.",
    fixtures=fixtures,
)
