"""PodDisruptionBudget and autoscaling/v2 HorizontalPodAutoscaler manifests for one Deployment.

Called by ``workload.track_manifests``. The PDB always leaves room for one voluntary eviction: its
``minAvailable`` is one below the smallest number of pods the Deployment can run (the HPA's
``minReplicas`` when autoscaled), so node drains never deadlock on a budget that cannot be met.
"""

from __future__ import annotations

from components.k8s.manifests import Manifest
from components.spec import HpaSpec


def min_available(floor: int) -> int:
    """One below the Deployment's smallest pod count, never negative."""
    return max(floor - 1, 0)


def pdb_manifest(
    name: str, namespace: str, labels: dict[str, str], selector: dict[str, str], floor: int
) -> Manifest:
    return Manifest(
        api_version="policy/v1",
        kind="PodDisruptionBudget",
        name=name,
        namespace=namespace,
        labels=labels,
        body={
            "spec": {
                "minAvailable": min_available(floor),
                "selector": {"matchLabels": dict(selector)},
                # Pods that never became ready must not block a drain (GA since Kubernetes 1.31).
                "unhealthyPodEvictionPolicy": "AlwaysAllow",
            }
        },
    )


def hpa_manifest(name: str, namespace: str, labels: dict[str, str], hpa: HpaSpec) -> Manifest:
    """Scale the Deployment called ``name`` on CPU and memory utilisation of its requests."""
    metrics: list[object] = [
        {
            "type": "Resource",
            "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": target}},
        }
        for resource, target in (("cpu", hpa.cpu_utilization), ("memory", hpa.memory_utilization))
    ]
    return Manifest(
        api_version="autoscaling/v2",
        kind="HorizontalPodAutoscaler",
        name=name,
        namespace=namespace,
        labels=labels,
        body={
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": hpa.min_replicas,
                "maxReplicas": hpa.max_replicas,
                "metrics": metrics,
            }
        },
    )
