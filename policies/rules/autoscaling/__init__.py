"""Autoscaling rules: node-pool bounds, HPAs that target real workloads, PDBs that let nodes drain.

Shared by the rule modules of this category (one rule per module)."""

from __future__ import annotations

from collections.abc import Sequence

from policies import k8s
from policies.model import Resource
from policies.props import get, mapping, text

CATEGORY = "autoscaling"


def _target(hpa: Resource) -> tuple[str, str]:
    ref = mapping(get(hpa.props, "spec.scaleTargetRef"))
    return text(ref.get("kind")) or "", text(ref.get("name")) or ""


def _workloads(resources: Sequence[Resource]) -> dict[tuple[str, str, str], Resource]:
    """Scalable workloads by (namespace, kind, name)."""
    return {(k8s.namespace_of(r), k8s.kind(r.type), k8s.name_of(r)): r for r in resources if r.type in k8s.SCALABLE}
