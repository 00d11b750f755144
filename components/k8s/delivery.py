"""Shared shape of the delivery components: a pure plan of manifests, then one registration pass.

``BlueGreenService`` and ``CanaryService`` subclass ``DeliveryComponent``; they differ only in how
they plan their Deployments, Services and routes. Outputs are the typed ``ServiceOutputs`` built from
the spec, so the rollout engine can compare what it asked for with what the stack reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components.k8s.checks import delivery_violations
from components.k8s.manifests import Manifest, materialize
from components.k8s.outputs import ServiceOutputs
from components.k8s.workload import namespace_manifest, service_account_manifest
from components.spec import ServiceSpec, Strategy, Tier
from components.validation import raise_first


@dataclass(frozen=True, slots=True)
class ServicePlan:
    """Every object one delivered service owns, in creation order."""

    namespace: Manifest | None
    """The namespace, when the service creates it (``createNamespace``)."""
    workloads: Sequence[Manifest]
    """ServiceAccount, Deployments, PDBs, HPAs and Services."""
    routes: Sequence[Manifest]
    """The router's objects; empty for a blue/green service without hostnames."""

    @property
    def all(self) -> list[Manifest]:
        head = [self.namespace] if self.namespace is not None else []
        return [*head, *self.workloads, *self.routes]


def base_workloads(name: str, spec: ServiceSpec) -> list[Manifest]:
    return [service_account_manifest(name, spec)]


def namespace_of(spec: ServiceSpec) -> Manifest | None:
    return namespace_manifest(spec) if spec.create_namespace else None


class DeliveryComponent(pulumi.ComponentResource):
    """Validates, plans and registers one service; subclasses supply the type token and the plan."""

    STRATEGY = Strategy.CANARY

    def __init__(
        self, type_: str, name: str, spec: ServiceSpec, *, tier: Tier, opts: pulumi.ResourceOptions | None
    ) -> None:
        # Validate before registering anything, so a bad spec leaves no half-built component behind.
        raise_first(delivery_violations(name, spec, tier, self.STRATEGY))
        super().__init__(type_, name, None, opts)
        self.spec: ServiceSpec = spec
        self.tier: Tier = tier
        self.namespace: str = spec.namespace

    def _register(self, plan: ServicePlan) -> dict[str, pulumi.CustomResource]:
        """Create every planned object as a child; namespaced objects wait for the namespace."""
        created: dict[str, pulumi.CustomResource] = {}
        depends: list[pulumi.Resource] = []
        if plan.namespace is not None:
            ns = materialize(plan.namespace, pulumi.ResourceOptions(parent=self))
            created[f"Namespace/{plan.namespace.name}"] = ns
            depends.append(ns)
        for manifest in [*plan.workloads, *plan.routes]:
            created[f"{manifest.kind}/{manifest.name}"] = materialize(
                manifest, pulumi.ResourceOptions(parent=self, depends_on=depends)
            )
        return created

    def _finish(self, outputs: ServiceOutputs) -> None:
        self.outputs: ServiceOutputs = outputs
        self.register_outputs(outputs.to_json())

    @property
    def stack_outputs(self) -> dict[str, object]:
        """``outputs`` as the stack exports them (camelCase keys)."""
        return self.outputs.to_json()
