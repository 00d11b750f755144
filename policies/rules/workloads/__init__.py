"""Workload rules over every pod-bearing Kubernetes kind (Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod).

Shared by the rule modules of this category (one rule per module)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from policies import k8s
from policies.model import Resource
from policies.props import mapping, maps, text

CATEGORY = "workloads"

ECS_TASK = "aws:ecs/taskDefinition:TaskDefinition"


def ecs_containers(r: Resource) -> list[tuple[str, Mapping[str, object]]] | None:
    """An ECS task definition's containers: ``containerDefinitions`` is JSON text (or already a list)."""
    if r.type != ECS_TASK:
        return None
    raw = r.props.get("containerDefinitions")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None  # wholly masked ("[secret]") or not JSON: nothing to judge
    return [(text(c.get("name")) or f"#{i}", c) for i, c in enumerate(maps(raw))]


def _each_container(r: Resource, *, init: bool = True) -> list[tuple[str, Mapping[str, object]]] | None:
    spec = k8s.pod_spec(r.type, r.props)
    if spec is None:
        return None
    return [(k8s.cname(c, i), c) for i, c in enumerate(k8s.containers(spec, init=init))]


def _sc(c: Mapping[str, object]) -> Mapping[str, object]:
    return mapping(c.get("securityContext"))
