"""service-no-public-exposure: No NodePort or externalIPs; LoadBalancers are internal unless allow-listed."""

from __future__ import annotations

from pydantic import Field

from policies import k8s
from policies.model import NOT_APPLICABLE, Outcome, Resource, Settings, fail_all
from policies.props import get, mapping, strings
from policies.rule import Fixture, M, RuleOptions, options_of, resource_rule


class Options(RuleOptions):
    """Properties of ``service-no-public-exposure`` in the policy config (added to gantry:policy's list)."""

    allow_list: list[str] = Field(default_factory=list,
                                  description='a list of "namespace/name" strings of Services allowed to be public')


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
        allow_list = options_of(s, "service-no-public-exposure", Options).allow_list
        allowed = f"{k8s.namespace_of(r)}/{k8s.name_of(r)}" in allow_list
        if not internal and not allowed:
            out.append("a LoadBalancer Service must be internal (cloud internal-LB annotation) unless "
                       f"'{k8s.namespace_of(r)}/{k8s.name_of(r)}' is allow-listed in publicLoadBalancers")
    return fail_all(out)


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_SVC, bad, ok

    r = b.res
    return [
        ok("cluster-ip", r(T_SVC, b.service())),
        ok("internal-lb", r(T_SVC, b.service(spec={"type": "LoadBalancer"}, metadata={
            "annotations": {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}}))),
        ok("allow-listed-lb", r(T_SVC, b.service(spec={"type": "LoadBalancer"})),
           settings=b.settings(public_load_balancers=("web/web",))),
        bad("public-lb", r(T_SVC, b.service(spec={"type": "LoadBalancer"}))),
        bad("node-port", r(T_SVC, b.service(spec={"type": "NodePort"}))),
        bad("external-ips", r(T_SVC, b.service(spec={"externalIPs": ["198.51.100.7"]}))),
    ]


RULE = resource_rule(
    "service-no-public-exposure", service_no_public_exposure,
    category="exposure",
    level=M,
    description="No NodePort or externalIPs; LoadBalancers are internal unless allow-listed.",
    remediation="Use ClusterIP behind the gateway, add the cloud's internal-LB annotation, or allow-list the Service.",
    options=Options,
    fixtures=fixtures,
)
