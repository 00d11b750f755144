"""Exposure rules: Services that reach the internet and pods that share the node's namespaces."""

from __future__ import annotations

from policies import k8s
from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail, fail_all
from policies.props import flag, get, mapping, strings

# Annotations that make each cloud's controller provision an internal load balancer.
INTERNAL_ANNOTATIONS: dict[str, frozenset[str]] = {
    "service.beta.kubernetes.io/aws-load-balancer-internal": frozenset({"true", "0.0.0.0/0"}),
    "service.beta.kubernetes.io/aws-load-balancer-scheme": frozenset({"internal"}),
    "networking.gke.io/load-balancer-type": frozenset({"internal"}),
    "cloud.google.com/load-balancer-type": frozenset({"internal"}),
    "service.beta.kubernetes.io/azure-load-balancer-internal": frozenset({"true"}),
}


def service_no_public_exposure(r: Resource, s: Settings) -> Outcome:
    if r.type != k8s.SERVICE:
        return NOT_APPLICABLE
    spec = mapping(r.props.get("spec"))
    kind = spec.get("type") or "ClusterIP"
    out = []
    if kind == "NodePort":
        out.append("spec.type must not be NodePort (it opens a port on every node)")
    if strings(spec.get("externalIPs")):
        out.append("spec.externalIPs must be empty")
    if kind == "LoadBalancer":
        annotations = {str(k): str(v).lower() for k, v in mapping(get(r.props, "metadata.annotations")).items()}
        internal = any(annotations.get(k) in v for k, v in INTERNAL_ANNOTATIONS.items())
        allowed = f"{k8s.namespace_of(r)}/{k8s.name_of(r)}" in s.public_load_balancers
        if not internal and not allowed:
            out.append("a LoadBalancer Service must be internal (cloud internal-LB annotation) unless "
                       f"'{k8s.namespace_of(r)}/{k8s.name_of(r)}' is allow-listed in publicLoadBalancers")
    return fail_all(out)


def no_host_namespaces(r: Resource, s: Settings) -> Outcome:
    spec = k8s.pod_spec(r.type, r.props)
    if spec is None:
        return NOT_APPLICABLE
    shared = [k for k in ("hostNetwork", "hostPID", "hostIPC") if flag(spec.get(k)) is True]
    if shared:
        return fail(f"the pod spec must not set {', '.join(shared)} true")
    return COMPLIANT
