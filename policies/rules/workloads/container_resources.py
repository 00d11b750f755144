"""container-resources: Every container requests CPU and memory and has a memory limit."""

from __future__ import annotations

from policies.model import (
    NOT_APPLICABLE,
    Outcome,
    Resource,
    Settings,
    fail_all,
)
from policies.props import get, mapping
from policies.rule import Fixture, M, resource_rule
from policies.rules.workloads import _each_container


def container_resources(r: Resource, s: Settings) -> Outcome:
    items = _each_container(r)
    if items is None:
        return NOT_APPLICABLE
    out = []
    for name, c in items:
        res = mapping(c.get("resources"))
        missing = [p for p in ("requests.cpu", "requests.memory", "limits.memory") if get(res, p) is None]
        if missing:
            out.append(f"container {name} must set resources {', '.join(missing)}")
    return fail_all(out)


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_DEP, bad, ok

    r = b.res
    return [
        ok("set", r(T_DEP, b.deployment())),
        bad("no-limits", r(T_DEP, b.deployment(pod={"containers": [b.container(resources={
            "limits": None})]}))),
        bad("init-container", r(T_DEP, b.deployment(pod={"initContainers": [
            {"name": "migrate", "image": "ghcr.io/acme/migrate:1.0"}]}))),
    ]


RULE = resource_rule(
    "container-resources", container_resources,
    category="workloads",
    level=M,
    description="Every container requests CPU and memory and has a memory limit.",
    remediation="Set resources.requests.cpu, requests.memory and limits.memory.",
    fixtures=fixtures,
)
