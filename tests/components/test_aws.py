"""EKS cluster wiring under the renderer's mocks: keys, endpoint, logs, node groups, network, IRSA."""

from __future__ import annotations

import json

import pytest
from clusters_helpers import (
    make_cluster_spec,
    make_pool,
    policy,
    principals,
    render_cluster,
)

from components.cluster import build_cluster
from components.spec import EKS_LOG_TYPES, Cloud, Tier
from components.validation import SpecError
from infra.render import RenderResult

EKS = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
KMS_KEY = "aws:kms/key:Key"
KMS_ALIAS = "aws:kms/alias:Alias"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SUBNET = "aws:ec2/subnet:Subnet"
NAT = "aws:ec2/natGateway:NatGateway"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
OIDC = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"


@pytest.fixture(scope="module")
def prod() -> RenderResult:
    return render_cluster(Cloud.AWS, tier=Tier.PROD)


@pytest.fixture(scope="module")
def dev() -> RenderResult:
    spec = make_cluster_spec(name="acme-dev", node_pools=[make_pool("general", min_size=1, desired_size=1,
                                                                   max_size=3, autoscaler_owns_desired=False)])
    return render_cluster(Cloud.AWS, spec, tier=Tier.DEV)


def test_component_tree_uses_gantry_type_tokens(prod: RenderResult) -> None:
    top = prod.one("gantry:aws:EksCluster")
    for token in ("gantry:aws:Vpc", "gantry:aws:EncryptionKey"):
        assert prod.one(token).parent == top.urn
    groups = prod.of_type("gantry:aws:NodeGroup")
    assert {g.name for g in groups} == {"acme-prod-system", "acme-prod-workload"}
    assert all(g.parent == top.urn for g in groups)


def test_cluster_secrets_are_encrypted_with_the_created_key(prod: RenderResult) -> None:
    cluster, key = prod.one(EKS), prod.one(KMS_KEY)
    config = cluster.inputs["encryptionConfig"]
    assert config["resources"] == ["secrets"]
    assert config["provider"]["keyArn"] == key.outputs["arn"]
    assert key.urn in cluster.property_dependencies["encryptionConfig"]


def test_key_rotates_has_alias_window_and_no_wildcard_principal(prod: RenderResult) -> None:
    key = prod.one(KMS_KEY)
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["rotationPeriodInDays"] == 90
    assert key.inputs["deletionWindowInDays"] == 30
    alias = prod.one(KMS_ALIAS)
    assert alias.inputs["name"] == "alias/gantry/acme-prod"
    assert alias.inputs["targetKeyId"] == key.outputs["keyId"]
    doc = policy(key.inputs["policy"])
    named = principals(doc)
    assert named, "the key policy names no principal"
    assert "*" not in named
    assert "arn:aws:iam::123456789012:root" in named


def test_endpoint_is_private_only_by_default(prod: RenderResult) -> None:
    vpc = prod.one(EKS).inputs["vpcConfig"]
    assert vpc["endpointPublicAccess"] is False
    assert vpc["endpointPrivateAccess"] is True
    assert "publicAccessCidrs" not in vpc


def test_public_endpoint_carries_only_the_listed_cidrs() -> None:
    spec = make_cluster_spec(endpoint={"public_access": True, "public_access_cidrs": ["203.0.113.0/24"]})
    vpc = render_cluster(Cloud.AWS, spec).one(EKS).inputs["vpcConfig"]
    assert vpc["endpointPublicAccess"] is True
    assert vpc["publicAccessCidrs"] == ["203.0.113.0/24"]


def test_all_five_log_types_go_to_a_retained_encrypted_log_group(prod: RenderResult) -> None:
    cluster, group, key = prod.one(EKS), prod.one(LOG_GROUP, "acme-prod-logs"), prod.one(KMS_KEY)
    assert cluster.inputs["enabledClusterLogTypes"] == list(EKS_LOG_TYPES)
    assert len(set(cluster.inputs["enabledClusterLogTypes"])) == 5
    assert group.inputs["name"] == "/aws/eks/acme-prod/cluster"
    assert group.inputs["retentionInDays"] == 90
    assert group.inputs["kmsKeyId"] == key.outputs["arn"]
    # The group exists before the cluster, or EKS would create one that never expires.
    assert group.urn in cluster.dependencies


def test_node_group_scaling_equals_the_spec_and_desired_size_is_ignored(prod: RenderResult) -> None:
    spec = make_cluster_spec()
    groups = {g.inputs["nodeGroupName"]: g for g in prod.of_type(NODE_GROUP)}
    for pool in spec.node_pools:
        group = groups[f"acme-prod-{pool.name}"]
        assert group.inputs["scalingConfig"] == {
            "minSize": pool.min_size, "desiredSize": pool.desired_size, "maxSize": pool.max_size,
        }
        assert "scalingConfig.desiredSize" in group.ignore_changes


def test_desired_size_is_managed_when_no_autoscaler_owns_it(dev: RenderResult) -> None:
    group = dev.one(NODE_GROUP)
    assert group.inputs["scalingConfig"] == {"minSize": 1, "desiredSize": 1, "maxSize": 3}
    assert "scalingConfig.desiredSize" not in group.ignore_changes


def test_launch_template_requires_imdsv2_encrypts_with_the_key_and_allows_no_ssh(prod: RenderResult) -> None:
    key_arn = prod.one(KMS_KEY).outputs["arn"]
    templates = {t.name: t for t in prod.of_type(LAUNCH_TEMPLATE)}
    for group in prod.of_type(NODE_GROUP):
        template = templates[f"{group.inputs['nodeGroupName']}-lt"]
        assert group.inputs["launchTemplate"]["id"] == template.id
        assert "remoteAccess" not in group.inputs
        meta = template.inputs["metadataOptions"]
        assert meta["httpTokens"] == "required"
        assert meta["httpPutResponseHopLimit"] == 1
        ebs = template.inputs["blockDeviceMappings"][0]["ebs"]
        assert ebs["encrypted"] == "true"
        assert ebs["kmsKeyId"] == key_arn
        assert "keyName" not in template.inputs


def test_only_system_pools_carry_the_critical_addons_taint(prod: RenderResult) -> None:
    taints = {g.inputs["nodeGroupName"]: g.inputs.get("taints", []) for g in prod.of_type(NODE_GROUP)}
    assert taints["acme-prod-system"] == [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}]
    assert taints["acme-prod-workload"] == []


def test_irsa_oidc_provider_trusts_the_cluster_issuer(prod: RenderResult) -> None:
    cluster, oidc = prod.one(EKS), prod.one(OIDC)
    issuer = cluster.outputs["identities"][0]["oidcs"][0]["issuer"]
    assert oidc.inputs["url"] == issuer
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    cni_role = prod.one(ROLE, "acme-prod-vpc-cni-role")
    trust = policy(cni_role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Federated": oidc.outputs["arn"]}
    host = issuer.removeprefix("https://")
    assert trust["Condition"]["StringEquals"][f"{host}:sub"] == "system:serviceaccount:kube-system:aws-node"


def test_iam_roles_get_least_privilege_managed_policies(prod: RenderResult) -> None:
    arns = {att.inputs["policyArn"].rsplit("/", 1)[-1] for att in prod.of_type(ATTACHMENT)}
    assert arns == {"AmazonEKSClusterPolicy", "AmazonEKS_CNI_Policy", "AmazonEKSWorkerNodePolicy",
                    "AmazonEC2ContainerRegistryReadOnly"}
    # The CNI policy sits on the IRSA role, not on the nodes.
    node_role = prod.one(ROLE, "acme-prod-node-role")
    node_attachments = [a for a in prod.of_type(ATTACHMENT) if node_role.urn in a.property_dependencies.get("role", ())]
    assert {a.inputs["policyArn"].rsplit("/", 1)[-1] for a in node_attachments} == {
        "AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly"}
    key_use = json.loads(prod.one("aws:iam/rolePolicy:RolePolicy", "acme-prod-cluster-key-use").inputs["policy"])
    assert key_use["Statement"][0]["Resource"] == prod.one(KMS_KEY).outputs["arn"]


def test_prod_spans_three_zones_with_a_nat_per_zone(prod: RenderResult) -> None:
    private = [s for s in prod.of_type(SUBNET) if "private" in s.name]
    assert sorted(s.inputs["availabilityZone"] for s in private) == ["us-east-1a", "us-east-1b", "us-east-1c"]
    nats = prod.of_type(NAT)
    assert len(nats) == 3
    routes = [rt.inputs["routes"][0]["natGatewayId"] for rt in prod.of_type(ROUTE_TABLE) if "private" in rt.name]
    assert sorted(routes) == sorted(n.id for n in nats)
    assert prod.one(EKS).inputs["vpcConfig"]["subnetIds"] == [
        s.id for s in sorted(private, key=lambda s: s.name)
    ]


def test_dev_spans_two_zones_with_one_shared_nat(dev: RenderResult) -> None:
    private = [s for s in dev.of_type(SUBNET) if "private" in s.name]
    assert len(private) == 2
    assert len(dev.of_type(NAT)) == 1
    assert {rt.inputs["routes"][0]["natGatewayId"] for rt in dev.of_type(ROUTE_TABLE) if "private" in rt.name} == {
        dev.one(NAT).id}
    assert dev.one(EKS).inputs["deletionProtection"] is False


def test_vpc_flow_logs_capture_all_traffic_into_a_retained_encrypted_group(prod: RenderResult) -> None:
    flow = prod.one("aws:ec2/flowLog:FlowLog")
    group = prod.one(LOG_GROUP, "acme-prod-network-flow-logs")
    assert flow.inputs["trafficType"] == "ALL"
    assert flow.inputs["vpcId"] == prod.one("aws:ec2/vpc:Vpc").id
    assert flow.inputs["logDestination"] == group.outputs["arn"]
    assert group.inputs["name"] == "/aws/eks/acme-prod/vpc-flow-logs"
    assert group.inputs["kmsKeyId"] == prod.one(KMS_KEY).outputs["arn"]
    assert group.inputs["retentionInDays"] == 90
    # CloudWatch Logs may use the key only for this cluster's log groups, flow logs included.
    statement = next(st for st in policy(prod.one(KMS_KEY).inputs["policy"])["Statement"]
                     if st["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"})
    pattern = statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert pattern == "arn:aws:logs:us-east-1:123456789012:log-group:/aws/eks/acme-prod/*"
    assert group.outputs["arn"].startswith(pattern[:-1])


def test_subnets_never_map_public_ips_and_are_tagged_for_load_balancers(prod: RenderResult) -> None:
    for subnet in prod.of_type(SUBNET):
        assert subnet.inputs["mapPublicIpOnLaunch"] is False
        role = "kubernetes.io/role/internal-elb" if "private" in subnet.name else "kubernetes.io/role/elb"
        assert subnet.inputs["tags"][role] == "1"
        assert subnet.inputs["tags"]["kubernetes.io/cluster/acme-prod"] == "shared"


def test_existing_vpc_and_key_are_used_instead_of_created_ones() -> None:
    arn = "arn:aws:kms:us-east-1:123456789012:key/0f9e8d7c-aaaa-bbbb-cccc-111122223333"
    spec = make_cluster_spec(
        network={"existing_vpc_id": "vpc-0abc", "existing_private_subnet_ids": ["subnet-a", "subnet-b"]},
        encryption={"create_key": False, "existing_key_id": arn},
    )
    result = render_cluster(Cloud.AWS, spec)
    assert result.of_type("gantry:aws:Vpc") == [] and result.of_type(SUBNET) == []
    assert result.of_type(KMS_KEY) == []
    cluster = result.one(EKS)
    assert cluster.inputs["vpcConfig"]["subnetIds"] == ["subnet-a", "subnet-b"]
    assert cluster.inputs["encryptionConfig"]["provider"]["keyArn"] == arn
    for template in result.of_type(LAUNCH_TEMPLATE):
        assert template.inputs["blockDeviceMappings"][0]["ebs"]["kmsKeyId"] == arn


def test_kubeconfig_is_secret_and_feeds_the_kubernetes_provider(prod: RenderResult) -> None:
    assert prod.outputs["kubeconfig"] == "[secret]"
    assert prod.outputs["clusterName"] == "acme-prod"
    assert prod.outputs["clusterEndpoint"] == prod.one(EKS).outputs["endpoint"]
    provider = prod.one("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == "[secret]"
    assert provider.parent == prod.one("gantry:aws:EksCluster").urn


def test_the_same_spec_gives_the_same_names_every_run(prod: RenderResult) -> None:
    again = render_cluster(Cloud.AWS, tier=Tier.PROD)
    assert [r.urn for r in again.resources] == [r.urn for r in prod.resources]
    assert [r.id for r in again.resources] == [r.id for r in prod.resources]


@pytest.mark.parametrize(
    ("overrides", "region", "field"),
    [
        ({}, "useast1", "region"),
        ({"network": {"zones": ["us-west-2a", "us-west-2b"]}}, "us-east-1", "network.zones[0]"),
        ({"encryption": {"rotation_days": 30}}, "us-east-1", "encryption.rotationDays"),
        ({"logging": {"retention_days": 100}}, "us-east-1", "logging.retentionDays"),
        ({"network": {"cidr": "10.0.0.0/12"}}, "us-east-1", "network.cidr"),
        ({"network": {"zone_count": 1}}, "us-east-1", "network.zoneCount"),
        ({"encryption": {"create_key": False, "existing_key_id": "not-an-arn"}}, "us-east-1",
         "encryption.existingKeyId"),
    ],
)
def test_aws_constraints_are_refused_at_construction(overrides: dict[str, object], region: str, field: str) -> None:
    spec = make_cluster_spec(**overrides)
    with pytest.raises(SpecError) as caught:
        build_cluster("c", spec, cloud=Cloud.AWS, region=region, tier=Tier.PROD, tags={})
    assert caught.value.field == field
    assert f"{field} must be " in str(caught.value)


def test_local_is_not_a_cluster_cloud() -> None:
    with pytest.raises(ValueError, match=r"cloud must be one of aws, gcp, azure.*'local' was given"):
        build_cluster("c", make_cluster_spec(), cloud=Cloud.LOCAL, region="local", tier=Tier.DEV, tags={})


def test_vpc_cni_runs_on_irsa_with_network_policy_enforcement(prod: RenderResult) -> None:
    addon = prod.one("aws:eks/addon:Addon")
    assert addon.inputs["addonName"] == "vpc-cni"
    assert addon.inputs["serviceAccountRoleArn"] == prod.one(ROLE, "acme-prod-vpc-cni-role").outputs["arn"]
    assert json.loads(addon.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}
    # Nodes join only once the CNI can give pods addresses.
    for group in prod.of_type(NODE_GROUP):
        assert addon.urn in group.dependencies


def test_reserved_tag_keys_are_refused_at_construction() -> None:
    with pytest.raises(SpecError, match=r"tags\.aws:team must be a key without the reserved 'aws:' prefix"):
        build_cluster("c", make_cluster_spec(), cloud=Cloud.AWS, region="us-east-1", tier=Tier.DEV,
                      tags={"aws:team": "x"})


def test_cluster_tags_merge_over_stack_tags_on_every_resource() -> None:
    spec = make_cluster_spec(tags={"cost-center": "cc-2002", "data-class": "internal"})
    result = render_cluster(Cloud.AWS, spec, tier=Tier.DEV)
    expected = {"owner": "platform-team", "cost-center": "cc-2002", "data-class": "internal",
                "gantry-cluster": "acme-prod", "managed-by": "gantry"}
    for type_ in (EKS, KMS_KEY, NODE_GROUP, SUBNET):
        for resource in result.of_type(type_):
            assert expected.items() <= resource.inputs["tags"].items(), resource.name
