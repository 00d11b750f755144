"""image-pinned: Images (pods and ECS task definitions) are pinned by a tag other than latest or by a digest."""

from __future__ import annotations

from components.validation import check_image
from policies.model import (
    NOT_APPLICABLE,
    Outcome,
    Resource,
    Settings,
    fail_all,
)
from policies.rule import Fixture, M, resource_rule
from policies.rules.workloads import ECS_TASK, _each_container, ecs_containers


def image_pinned(r: Resource, s: Settings) -> Outcome:
    items = _each_container(r) if r.type != ECS_TASK else ecs_containers(r)
    if items is None:
        return NOT_APPLICABLE
    out = []
    for name, c in items:
        out += [f"container {name}: {v}" for v in check_image("image", c.get("image"))]
    return fail_all(out)


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_DEP, T_ECS, bad, ok

    r = b.res
    _ecs = b.ecs_task
    return [
        ok("tag", r(T_DEP, b.deployment())),
        ok("digest", r(T_DEP, b.deployment(pod={"containers": [b.container(
            image="ghcr.io/acme/web@sha256:" + "a" * 64)]}))),
        bad("latest", r(T_DEP, b.deployment(pod={"containers": [b.container(image="nginx:latest")]}))),
        bad("untagged", r(T_DEP, b.deployment(pod={"containers": [b.container(image="nginx")]}))),
        ok("ecs-tag", r(T_ECS, _ecs({"name": "web", "image": "public.ecr.aws/nginx/nginx:1.27.3"}))),
        bad("ecs-latest", r(T_ECS, _ecs({"name": "web", "image": "nginx:latest"}))),
        bad("ecs-untagged", r(T_ECS, _ecs({"name": "web", "image": "nginx"}))),
    ]


RULE = resource_rule(
    "image-pinned", image_pinned,
    category="workloads",
    level=M,
    description="Images (pods and ECS task definitions) are pinned by a tag other than latest or by a digest.",
    remediation="Use image:1.2.3 or image@sha256:...",
    fixtures=fixtures,
)
