"""rollout-strategy-safe: Rolling updates keep pods serving and keep revision history for undo."""

from __future__ import annotations

from policies import k8s
from policies.model import (
    NOT_APPLICABLE,
    Outcome,
    Resource,
    Settings,
    fail_all,
)
from policies.props import get, integer, mapping, text
from policies.rule import DEV, A, Fixture, M, resource_rule


def rollout_strategy_safe(r: Resource, s: Settings) -> Outcome:
    if r.type not in (k8s.DEPLOYMENT, k8s.STATEFULSET):
        return NOT_APPLICABLE
    strategy = mapping(get(r.props, "spec.strategy"))
    out = []
    if text(strategy.get("type")) == "Recreate":
        out.append("spec.strategy.type must be RollingUpdate; Recreate takes every pod down at once")
    rolling = mapping(strategy.get("rollingUpdate"))
    unavailable = rolling.get("maxUnavailable")
    n = k8s.replicas(r.props)
    count = None if isinstance(unavailable, str) else integer(unavailable)
    if unavailable == "100%" or (count is not None and n is not None and n > 1 and count >= n):
        out.append(f"spec.strategy.rollingUpdate.maxUnavailable must leave pods serving, but {unavailable!r} "
                   "was given")
    if integer(rolling.get("maxSurge")) == 0 and integer(unavailable) == 0:
        out.append("maxSurge and maxUnavailable cannot both be 0")
    history = integer(get(r.props, "spec.revisionHistoryLimit"))
    if history == 0:
        out.append("spec.revisionHistoryLimit must be >= 1 so a rollout can be undone")
    return fail_all(out)


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_DEP, bad, ok

    r = b.res
    return [
        ok("rolling", r(T_DEP, b.deployment())),
        bad("recreate", r(T_DEP, b.deployment(spec={"strategy": {"type": "Recreate",
                                                                                          "rollingUpdate": None}}))),
        bad("no-history", r(T_DEP, b.deployment(spec={"revisionHistoryLimit": 0}))),
    ]


RULE = resource_rule(
    "rollout-strategy-safe", rollout_strategy_safe,
    category="delivery",
    level=M,
    tiers={DEV: A},
    description="Rolling updates keep pods serving and keep revision history for undo.",
    remediation="Use RollingUpdate with maxUnavailable below the replica count and revisionHistoryLimit >= 1.",
    fixtures=fixtures,
)
