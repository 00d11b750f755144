"""The cluster factory: one cloud-agnostic spec in, an EKS, GKE or AKS component out.

Called by the Pulumi program (``infra/__main__.py``). Provider SDKs are imported only for the cloud
in use, since importing all three costs seconds on every render.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import pulumi

from components.spec import Cloud, ClusterSpec, Tier

CLUSTER_CLOUDS: tuple[Cloud, ...] = (Cloud.AWS, Cloud.GCP, Cloud.AZURE)


@runtime_checkable
class ManagedCluster(Protocol):
    """What every managed cluster component offers the rest of the program."""

    cluster_name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    """Marked secret: it names the cluster's credentials plugin and CA."""
    provider: pulumi.ProviderResource
    """A Kubernetes provider built from ``kubeconfig``, for workloads on this cluster."""
    metrics_url: pulumi.Output[str] | None
    """The managed Prometheus query endpoint (``cluster.managedPrometheus``), else None."""
    metrics_auth: str
    """How that endpoint authenticates: ``sigv4``, ``google`` or ``azure`` (see ``rollout.metrics.auth``)."""


def build_cluster(
    name: str,
    spec: ClusterSpec,
    *,
    cloud: Cloud,
    region: str,
    tier: Tier,
    tags: Mapping[str, str],
    project: str | None = None,
    opts: pulumi.ResourceOptions | None = None,
) -> ManagedCluster:
    """Build the managed cluster for ``cloud``; the same spec always yields the same resource names.

    Raises ``ValueError`` for a cloud without managed clusters (``local``) and ``SpecError`` (a
    ``ValueError``) when the spec breaks a constraint of the chosen cloud.
    """
    if cloud is Cloud.AWS:
        from components.aws.eks import EksCluster

        return EksCluster(name, spec, region=region, tier=tier, tags=tags, opts=opts)
    if cloud is Cloud.GCP:
        from components.gcp.gke import GkeCluster

        return GkeCluster(name, spec, region=region, tier=tier, tags=tags, project=project, opts=opts)
    if cloud is Cloud.AZURE:
        from components.azure.aks import AksCluster

        return AksCluster(name, spec, region=region, tier=tier, tags=tags, opts=opts)
    valid = ", ".join(c.value for c in CLUSTER_CLOUDS)
    raise ValueError(
        f"cloud must be one of {valid} to build a cluster, but {cloud.value!r} was given; "
        "the local sandbox runs without a cluster (use `gantry sandbox`)"
    )
