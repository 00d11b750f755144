"""eks-endpoint-private: The EKS API endpoint is private, or public only to CIDRs other than 0.0.0.0/0."""

from __future__ import annotations

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail
from policies.props import flag, mapping, strings
from policies.rule import Fixture, M, resource_rule
from policies.rules.aws import EKS_CLUSTER, OPEN


def eks_endpoint_private(r: Resource, s: Settings) -> Outcome:
    if r.type != EKS_CLUSTER:
        return NOT_APPLICABLE
    vpc = mapping(r.props.get("vpcConfig"))
    # AWS turns the public endpoint on when endpointPublicAccess is not given.
    public = flag(vpc.get("endpointPublicAccess"))
    if public is False:
        return COMPLIANT
    cidrs = strings(vpc.get("publicAccessCidrs"))
    if not cidrs or OPEN.intersection(cidrs):
        shown = cidrs or ["0.0.0.0/0 (AWS default)"]
        return fail(f"vpcConfig.endpointPublicAccess is on and open to {', '.join(shown)}; set it to false "
                    "and endpointPrivateAccess to true, or restrict publicAccessCidrs")
    return COMPLIANT


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_EKS, bad, ok

    r = b.res
    return [
        ok("private", r(T_EKS, b.eks_cluster())),
        ok("public-restricted", r(T_EKS, b.eks_cluster(
            vpcConfig={"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}))),
        bad("public-open", r(T_EKS, b.eks_cluster(
            vpcConfig={"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}))),
        bad("aws-default-is-public", r(T_EKS, b.eks_cluster(vpcConfig={"subnetIds": ["s"]}) | {
            "vpcConfig": {"subnetIds": ["s"]}})),
    ]


RULE = resource_rule(
    "eks-endpoint-private", eks_endpoint_private,
    category="clusters-aws",
    level=M,
    description="The EKS API endpoint is private, or public only to CIDRs other than 0.0.0.0/0.",
    remediation=(
        "Set vpcConfig.endpointPublicAccess false and endpointPrivateAccess true (Gantry: "
        "endpoint.publicAccess false), or list publicAccessCidrs."
    ),
    fixtures=fixtures,
)
