"""Kubernetes helpers for rules: pod specs of every workload kind, names, namespaces and selectors."""

from __future__ import annotations

from collections.abc import Mapping

from policies.model import Resource
from policies.props import get, integer, mapping, maps, text

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
DAEMONSET = "kubernetes:apps/v1:DaemonSet"
REPLICASET = "kubernetes:apps/v1:ReplicaSet"
JOB = "kubernetes:batch/v1:Job"
CRONJOB = "kubernetes:batch/v1:CronJob"
POD = "kubernetes:core/v1:Pod"
SERVICE = "kubernetes:core/v1:Service"
HPA_TYPES = frozenset({
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
    "kubernetes:autoscaling/v1:HorizontalPodAutoscaler",
    "kubernetes:autoscaling/v2beta2:HorizontalPodAutoscaler",
})
PDB_TYPES = frozenset({"kubernetes:policy/v1:PodDisruptionBudget", "kubernetes:policy/v1beta1:PodDisruptionBudget"})
HTTPROUTE_TYPES = frozenset({
    "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute",
    "kubernetes:gateway.networking.k8s.io/v1beta1:HTTPRoute",
})
VIRTUALSERVICE_TYPES = frozenset({
    "kubernetes:networking.istio.io/v1:VirtualService",
    "kubernetes:networking.istio.io/v1beta1:VirtualService",
    "kubernetes:networking.istio.io/v1alpha3:VirtualService",
})
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"

SCALABLE = frozenset({DEPLOYMENT, STATEFULSET, REPLICASET})
WORKLOADS = frozenset({DEPLOYMENT, STATEFULSET, DAEMONSET, REPLICASET, JOB, CRONJOB, POD})

# Cluster-scoped kinds never carry a namespace; everything else under ``kubernetes:`` does.
CLUSTER_SCOPED_KINDS = frozenset({
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "StorageClass",
    "CustomResourceDefinition", "PriorityClass", "RuntimeClass", "CSIDriver", "CSINode", "IngressClass",
    "GatewayClass", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "APIService", "VolumeAttachment",
    "ClusterIssuer", "CertificateSigningRequest", "FlowSchema", "PriorityLevelConfiguration",
})
NON_OBJECT_MODULES = ("kubernetes:helm.sh/", "kubernetes:yaml", "kubernetes:kustomize", "pulumi:providers:")


def is_k8s(type_: str) -> bool:
    return type_.startswith("kubernetes:")


def kind(type_: str) -> str:
    return type_.rsplit(":", 1)[-1]


def is_namespaced(type_: str) -> bool:
    if not is_k8s(type_) or type_.startswith(NON_OBJECT_MODULES):
        return False
    k = kind(type_)
    return not (k in CLUSTER_SCOPED_KINDS or k.endswith("List") or k.endswith("Patch"))


def pod_template(type_: str, props: Mapping[str, object]) -> Mapping[str, object] | None:
    """The pod template (``metadata`` + ``spec``) of a workload, or None for other kinds."""
    if type_ == POD:
        return props
    if type_ == CRONJOB:
        tpl = get(props, "spec.jobTemplate.spec.template")
    elif type_ in WORKLOADS:
        tpl = get(props, "spec.template")
    else:
        return None
    return mapping(tpl)


def pod_spec(type_: str, props: Mapping[str, object]) -> Mapping[str, object] | None:
    tpl = pod_template(type_, props)
    return None if tpl is None else mapping(tpl.get("spec"))


def containers(spec: Mapping[str, object], *, init: bool = True) -> list[Mapping[str, object]]:
    out = maps(spec.get("containers"))
    if init:
        out += maps(spec.get("initContainers"))
    return out


def cname(container: Mapping[str, object], index: int) -> str:
    return text(container.get("name")) or f"#{index}"


def labels(props: Mapping[str, object]) -> dict[str, str]:
    return {str(k): str(v) for k, v in mapping(get(props, "metadata.labels")).items()}


def template_labels(type_: str, props: Mapping[str, object]) -> dict[str, str]:
    tpl = pod_template(type_, props) or {}
    return {str(k): str(v) for k, v in mapping(get(tpl, "metadata.labels")).items()}


def name_of(r: Resource) -> str:
    """The object's Kubernetes name: ``metadata.name`` when set, else the Pulumi name (auto-naming prefix)."""
    return text(get(r.props, "metadata.name")) or r.name


def namespace_of(r: Resource) -> str:
    """The effective namespace: the object's, else its provider's, else ``default``."""
    return text(get(r.props, "metadata.namespace")) or text(r.provider_props.get("namespace")) or "default"


def match_labels(props: Mapping[str, object], path: str = "spec.selector.matchLabels") -> dict[str, str]:
    return {str(k): str(v) for k, v in mapping(get(props, path)).items()}


def selects(selector: Mapping[str, str], pod_labels: Mapping[str, str]) -> bool:
    """An equality selector selects pods whose labels include every pair; an empty one selects nothing here."""
    return bool(selector) and all(pod_labels.get(k) == v for k, v in selector.items())


def replicas(props: Mapping[str, object]) -> int | None:
    # Engine-form numbers arrive as floats (protobuf Struct), so 2.0 means 2.
    return integer(get(props, "spec.replicas"))
