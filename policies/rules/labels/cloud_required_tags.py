"""cloud-required-tags: Cloud resources carry the owner, env and cost-center tags (provider defaults count)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field

from policies.model import COMPLIANT, NOT_APPLICABLE, Outcome, Resource, Settings, fail
from policies.props import get, mapping
from policies.rule import DEV, A, Fixture, M, RuleOptions, options_of, resource_rule


class Options(RuleOptions):
    """Properties of ``cloud-required-tags`` in the policy config."""

    required_tags: list[str] = Field(default_factory=lambda: ["owner", "env", "cost-center"],
                                     description='a list of tag keys as strings, such as ["owner", "env"]')


# Where a type keeps its tags when that is not the SDK's plain ``tags``/``labels`` input (GKE's
# resourceLabels, node pools' nodeConfig); every other taggable type is found in the SDK (policies.sdk).
TAG_FIELDS: dict[str, str] = {
    "aws:eks/cluster:Cluster": "tags",
    "aws:eks/nodeGroup:NodeGroup": "tags",
    "aws:kms/key:Key": "tags",
    "aws:ec2/vpc:Vpc": "tags",
    "aws:ec2/subnet:Subnet": "tags",
    "aws:ec2/securityGroup:SecurityGroup": "tags",
    "aws:ec2/launchTemplate:LaunchTemplate": "tags",
    "aws:ec2/instance:Instance": "tags",
    "aws:ec2/natGateway:NatGateway": "tags",
    "aws:ec2/eip:Eip": "tags",
    "aws:ec2/internetGateway:InternetGateway": "tags",
    "aws:cloudwatch/logGroup:LogGroup": "tags",
    "aws:iam/role:Role": "tags",
    "gcp:container/cluster:Cluster": "resourceLabels",
    "gcp:container/nodePool:NodePool": "nodeConfig.resourceLabels",
    "gcp:kms/cryptoKey:CryptoKey": "labels",
    "gcp:compute/instance:Instance": "labels",
    "azure-native:containerservice:ManagedCluster": "tags",
    "azure-native:containerservice:AgentPool": "tags",
    "azure-native:resources:ResourceGroup": "tags",
    "azure-native:keyvault:Vault": "tags",
    "azure-native:network:VirtualNetwork": "tags",
    "azure-native:operationalinsights:Workspace": "tags",
}


def provider_defaults(provider_props: Mapping[str, object]) -> dict[str, str]:
    """AWS ``defaultTags.tags`` and GCP ``defaultLabels`` apply to every resource of that provider."""
    merged = dict(mapping(get(provider_props, "defaultTags.tags")))
    merged.update(mapping(provider_props.get("defaultLabels")))
    return {str(k): str(v) for k, v in merged.items()}


def cloud_required_tags(r: Resource, s: Settings) -> Outcome:
    from policies.sdk import tag_input

    if not r.custom:
        return NOT_APPLICABLE
    path = TAG_FIELDS.get(r.type) or tag_input(r.type)
    if path is None:
        return NOT_APPLICABLE
    tags = provider_defaults(r.provider_props)
    tags.update({str(k): str(v) for k, v in mapping(get(r.props, path)).items()})
    required = options_of(s, "cloud-required-tags", Options).required_tags
    missing = [t for t in required if not tags.get(t)]
    if missing:
        return fail(f"{path} must include {', '.join(required)}; missing {', '.join(missing)}")
    return COMPLIANT


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_EKS, T_GKE, T_GNP, bad, ok

    r = b.res
    return [
        ok("on-resource", r(T_EKS, b.eks_cluster())),
        ok("provider-default-tags", r(T_EKS, b.eks_cluster(tags=None), provider_props={
            "defaultTags": {"tags": b.TAGS}})),
        ok("gke-labels", r(T_GKE, b.gke_cluster())),
        bad("missing-cost-center", r(T_EKS, b.eks_cluster() | {"tags": {"owner": "a", "env": "b"}})),
        bad("gke-pool-unlabelled", r(T_GNP, b.gke_nodepool(nodeConfig={"resourceLabels": None}))),
    ]


RULE = resource_rule(
    "cloud-required-tags", cloud_required_tags,
    category="labels",
    level=M,
    tiers={DEV: A},
    description="Cloud resources carry the owner, env and cost-center tags (provider defaults count).",
    remediation="Set gantry:tags, the provider's defaultTags/defaultLabels, or the resource's tags.",
    options=Options,
    fixtures=fixtures,
)
