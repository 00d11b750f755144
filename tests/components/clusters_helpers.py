"""Builders and render helpers for the cluster component tests (EKS, GKE, AKS)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from components.cluster import build_cluster
from components.spec import Cloud, ClusterSpec, NodePoolSpec, Tier
from infra.render import RenderedResource, RenderResult, render_callable

REGIONS: dict[Cloud, str] = {Cloud.AWS: "us-east-1", Cloud.GCP: "europe-west1", Cloud.AZURE: "westeurope"}
PROJECT = "acme-prod-4711"
TAGS = {"owner": "platform-team", "cost-center": "cc-1001"}

# Provider config the renderer's mocks read, matching the regions above.
PROVIDER_CONFIG: dict[Cloud, dict[str, object]] = {
    Cloud.AWS: {"aws:region": "us-east-1"},
    Cloud.GCP: {"gcp:region": "europe-west1", "gcp:project": PROJECT},
    Cloud.AZURE: {"azure-native:location": "westeurope"},
}


def make_pool(name: str = "workload", **overrides: object) -> NodePoolSpec:
    base: dict[str, object] = {"name": name, "min_size": 2, "desired_size": 3, "max_size": 7}
    base.update(overrides)
    return NodePoolSpec.model_validate(base)


def make_cluster_spec(**overrides: object) -> ClusterSpec:
    """A valid two-pool spec (system + workload); overrides use Python field names."""
    base: dict[str, object] = {
        "name": "acme-prod",
        "node_pools": [
            make_pool("system", role="system", min_size=2, desired_size=2, max_size=4),
            make_pool("workload", min_size=3, desired_size=4, max_size=12),
        ],
    }
    base.update(overrides)
    return ClusterSpec.model_validate(base)


def render_cluster(
    cloud: Cloud,
    spec: ClusterSpec | None = None,
    *,
    tier: Tier = Tier.PROD,
    region: str | None = None,
    tags: Mapping[str, str] | None = None,
    pass_project: bool = True,
) -> RenderResult:
    """Build one cluster through the factory under the renderer's mocks and export its outputs."""
    import pulumi

    chosen = spec or make_cluster_spec()

    def program() -> None:
        cluster = build_cluster(
            chosen.name, chosen, cloud=cloud, region=region or REGIONS[cloud], tier=tier,
            tags=dict(TAGS if tags is None else tags), project=PROJECT if cloud is Cloud.GCP and pass_project else None,
        )
        pulumi.export("clusterName", cluster.cluster_name)
        pulumi.export("clusterEndpoint", cluster.endpoint)
        pulumi.export("kubeconfig", cluster.kubeconfig)
        if cluster.metrics_url is not None:
            pulumi.export("metrics", {"url": cluster.metrics_url, "auth": cluster.metrics_auth})

    return render_callable(program, project="gantry", stack=f"{cloud.value}-{tier.value}",
                           config=PROVIDER_CONFIG[cloud])


def only(result: RenderResult, type_: str, name: str | None = None) -> RenderedResource:
    return result.one(type_, name)


def policy(doc: object) -> dict[str, Any]:
    """An IAM/KMS policy input, as a dict (inputs carry it as JSON text)."""
    assert isinstance(doc, str), f"expected a JSON policy string, got {type(doc).__name__}"
    parsed = json.loads(doc)
    assert isinstance(parsed, dict)
    return parsed


def principals(doc: Mapping[str, Any]) -> list[str]:
    """Every principal named in a policy document, flattened."""
    out: list[str] = []
    for statement in doc["Statement"]:
        principal = statement.get("Principal", {})
        if isinstance(principal, str):
            out.append(principal)
            continue
        for value in principal.values():
            out.extend(value if isinstance(value, list) else [value])
    return out


def depends_on(result: RenderResult, resource: RenderedResource, target: RenderedResource) -> bool:
    """True when ``resource`` depends on ``target`` (directly, through a property, or via a parent)."""
    direct = set(resource.dependencies)
    for urns in resource.property_dependencies.values():
        direct |= set(urns)
    if target.urn in direct:
        return True
    return any(r.parent == urn and r.urn == target.urn for urn in direct for r in result.resources)
