"""Secure, highly available workload manifests shared by the blue/green and canary components.

A ``TrackPlan`` says what one Deployment runs (a canary track or a blue/green color); the
functions here turn it into a Deployment, its PDB and optional HPA, and build the namespace,
ServiceAccount and Services around it. Everything is pure data; the components register it.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.k8s import labels as lbl
from components.k8s.autoscaling import hpa_manifest, pdb_manifest
from components.k8s.manifests import JsonValue, Manifest
from components.spec import ProbeSpec, ServiceSpec, Tier

RESTRICTED_NAMESPACE_LABELS: dict[str, str] = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/audit": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}
"""Pod Security Admission labels: the namespace admits only pods meeting the restricted profile."""

TMP_SIZE_LIMIT = "64Mi"


@dataclass(frozen=True, slots=True)
class TrackPlan:
    """One Deployment of a service: which track or color, what it runs and how it is scaled."""

    service: str
    key: str
    """The label that tells tracks apart: ``labels.TRACK`` or ``labels.COLOR``."""
    value: str
    """``stable``/``canary`` or ``blue``/``green``."""
    image: str
    replicas: int
    """Pinned replica count; unused when ``autoscaled`` (the HPA owns the count)."""
    autoscaled: bool

    @property
    def name(self) -> str:
        return f"{self.service}-{self.value}"

    @property
    def selector(self) -> dict[str, str]:
        return lbl.selector(self.service, self.key, self.value)

    def floor(self, spec: ServiceSpec) -> int:
        """The fewest pods this Deployment is meant to run."""
        return spec.hpa.min_replicas if self.autoscaled else self.replicas


def namespace_manifest(spec: ServiceSpec) -> Manifest:
    return Manifest(
        api_version="v1",
        kind="Namespace",
        name=spec.namespace,
        namespace=None,
        labels={lbl.PART_OF: spec.namespace, lbl.MANAGED_BY: lbl.MANAGER, **RESTRICTED_NAMESPACE_LABELS},
        body={},
    )


def service_account_manifest(service: str, spec: ServiceSpec) -> Manifest:
    """A dedicated identity per service, so RBAC granted to one service never leaks to another."""
    return Manifest(
        api_version="v1",
        kind="ServiceAccount",
        name=service,
        namespace=spec.namespace,
        labels=lbl.common(service, spec.namespace),
        body={"automountServiceAccountToken": False},
    )


def service_manifest(service: str, name: str, spec: ServiceSpec, selector: dict[str, str]) -> Manifest:
    return Manifest(
        api_version="v1",
        kind="Service",
        name=name,
        namespace=spec.namespace,
        labels=lbl.common(service, spec.namespace),
        body={
            "spec": {
                "type": "ClusterIP",
                "selector": dict(selector),
                "ports": [{"name": "http", "port": spec.service_port, "targetPort": "http", "protocol": "TCP"}],
            }
        },
    )


def _probe(probe: ProbeSpec) -> dict[str, JsonValue]:
    return {
        "httpGet": {"path": probe.path, "port": probe.port},
        "periodSeconds": probe.period_seconds,
        "failureThreshold": probe.failure_threshold,
        "initialDelaySeconds": probe.initial_delay_seconds,
        "timeoutSeconds": 1,
    }


def _spread(selector: dict[str, str], tier: Tier) -> list[JsonValue]:
    # Zones are a hard constraint in prod (losing a zone must not take the service down) and a soft
    # one elsewhere, where clusters may run in a single zone. matchLabelKeys scopes the skew to one
    # ReplicaSet, so a rolling update is not skewed by the pods it is replacing.
    zone_rule = "DoNotSchedule" if tier is Tier.PROD else "ScheduleAnyway"
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": rule,
            "labelSelector": {"matchLabels": dict(selector)},
            "matchLabelKeys": ["pod-template-hash"],
        }
        for key, rule in (("topology.kubernetes.io/zone", zone_rule), ("kubernetes.io/hostname", "ScheduleAnyway"))
    ]


def deployment_manifest(spec: ServiceSpec, tier: Tier, plan: TrackPlan) -> Manifest:
    pod_labels = lbl.pod_labels(plan.service, spec.namespace, plan.key, plan.value, plan.image)
    container_security: dict[str, JsonValue] = {
        "runAsNonRoot": True,
        "runAsUser": spec.run_as_user,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    res = spec.resources
    container: dict[str, JsonValue] = {
        "name": plan.service,
        "image": plan.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
        "env": [{"name": k, "value": v} for k, v in sorted(spec.env.items())],
        "resources": {
            "requests": {"cpu": res.cpu_request, "memory": res.memory_request},
            "limits": {"cpu": res.cpu_limit, "memory": res.memory_limit},
        },
        "readinessProbe": _probe(spec.readiness),
        "livenessProbe": _probe(spec.liveness),
        "securityContext": container_security,
        # The root filesystem is read-only; most runtimes still need a scratch directory.
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    deployment_spec: dict[str, JsonValue] = {
        "selector": {"matchLabels": plan.selector},
        "revisionHistoryLimit": 5,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": {
            "metadata": {"labels": pod_labels},
            "spec": {
                "serviceAccountName": plan.service,
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": 30,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": spec.run_as_user,
                    "runAsGroup": spec.run_as_user,
                    "fsGroup": spec.run_as_user,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "topologySpreadConstraints": _spread(plan.selector, tier),
                "containers": [container],
                "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}}],
            },
        },
    }
    if not plan.autoscaled:
        # With an HPA the count is the HPA's to own; setting it here would fight it on every `up`.
        deployment_spec["replicas"] = plan.replicas
    return Manifest(
        api_version="apps/v1",
        kind="Deployment",
        name=plan.name,
        namespace=spec.namespace,
        labels={k: v for k, v in pod_labels.items() if k != lbl.VERSION},
        body={"spec": deployment_spec},
    )


def track_manifests(spec: ServiceSpec, tier: Tier, plan: TrackPlan) -> list[Manifest]:
    """The Deployment of one track or color, its PDB and, when autoscaled, its HPA."""
    common = lbl.common(plan.service, spec.namespace)
    out = [
        deployment_manifest(spec, tier, plan),
        pdb_manifest(plan.name, spec.namespace, common, plan.selector, plan.floor(spec)),
    ]
    if plan.autoscaled:
        out.append(hpa_manifest(plan.name, spec.namespace, common, spec.hpa))
    return out
