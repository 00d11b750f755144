"""Kubernetes objects as plain data, and the one place that turns them into Pulumi resources.

The delivery components first plan their objects as ``Manifest`` values (pure, camelCase, exactly
what the API server receives), then ``materialize`` registers them. Planning is pure so that tests
and the routers can reason about objects without an engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

JsonValue = object
"""A JSON-shaped value inside a manifest (str, int, bool, list, dict)."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """One Kubernetes object: identity plus its top-level body (``spec`` and friends)."""

    api_version: str
    kind: str
    name: str
    namespace: str | None
    labels: Mapping[str, str]
    body: Mapping[str, JsonValue]
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def metadata(self) -> dict[str, JsonValue]:
        meta: dict[str, JsonValue] = {"name": self.name, "labels": dict(self.labels)}
        if self.namespace is not None:
            meta["namespace"] = self.namespace
        if self.annotations:
            meta["annotations"] = dict(self.annotations)
        return meta

    @property
    def resource_name(self) -> str:
        """Pulumi resource name: ``namespace/name`` is unique per type across a stack's services."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name



# Typed resources for core kinds so their URNs carry the real type token (policies match on it);
# anything else (Gateway API, Istio) is a CustomResource, which derives its token from apiVersion/kind.
_TYPED: dict[tuple[str, str], Callable[..., pulumi.CustomResource]] = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
    ("v1", "Service"): k8s.core.v1.Service,
    ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
    ("policy/v1", "PodDisruptionBudget"): k8s.policy.v1.PodDisruptionBudget,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): k8s.autoscaling.v2.HorizontalPodAutoscaler,
    ("networking.k8s.io/v1", "Ingress"): k8s.networking.v1.Ingress,
}

_KWARG = {"spec": "spec", "automountServiceAccountToken": "automount_service_account_token"}


def materialize(manifest: Manifest, opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """Register one manifest as a Pulumi resource with the given options (parent, depends_on)."""
    cls = _TYPED.get((manifest.api_version, manifest.kind))
    if cls is None:
        custom: pulumi.CustomResource = k8s.apiextensions.CustomResource(
            manifest.resource_name,
            api_version=manifest.api_version,
            kind=manifest.kind,
            metadata=manifest.metadata,
            opts=opts,
            **dict(manifest.body),
        )
        return custom
    kwargs = {_KWARG[key]: value for key, value in manifest.body.items()}
    resource: pulumi.CustomResource = cls(manifest.resource_name, metadata=manifest.metadata, opts=opts, **kwargs)
    return resource
