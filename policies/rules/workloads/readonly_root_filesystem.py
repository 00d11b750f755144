"""readonly-root-filesystem: Container root filesystems are read-only."""

from __future__ import annotations

from policies.model import (
    NOT_APPLICABLE,
    Outcome,
    Resource,
    Settings,
    fail_all,
)
from policies.props import flag
from policies.rule import PROD, A, Fixture, M, resource_rule
from policies.rules.workloads import _each_container, _sc


def readonly_root_filesystem(r: Resource, s: Settings) -> Outcome:
    items = _each_container(r)
    if items is None:
        return NOT_APPLICABLE
    return fail_all([f"container {name} must set securityContext.readOnlyRootFilesystem true"
                     for name, c in items if flag(_sc(c).get("readOnlyRootFilesystem")) is not True])


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_DEP, bad, ok

    r = b.res
    return [
        ok("on", r(T_DEP, b.deployment())),
        bad("off", r(T_DEP, b.deployment(pod={"containers": [b.container(
            securityContext={"readOnlyRootFilesystem": False})]}))),
    ]


RULE = resource_rule(
    "readonly-root-filesystem", readonly_root_filesystem,
    category="workloads",
    level=A,
    tiers={PROD: M},
    description="Container root filesystems are read-only.",
    remediation="Set securityContext.readOnlyRootFilesystem true and mount emptyDir for scratch space.",
    fixtures=fixtures,
)
