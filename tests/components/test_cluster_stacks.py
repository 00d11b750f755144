"""Every shipped stack renders (as ``gantry render`` does) with the cluster its cloud and tier call for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clusters_helpers import PROJECT, PROVIDER_CONFIG, REGIONS, make_cluster_spec, make_pool, render_cluster
from hypothesis import given, settings
from hypothesis import strategies as st

from components.cluster import ManagedCluster, build_cluster
from components.spec import Cloud, Tier
from infra.render import RenderResult, render_callable, render_project

REPO = Path(__file__).resolve().parents[2]

EXPECTED: dict[str, set[str]] = {
    "aws": {
        "gantry:aws:EksCluster", "gantry:aws:Vpc", "gantry:aws:EncryptionKey", "gantry:aws:NodeGroup",
        "aws:eks/cluster:Cluster", "aws:eks/nodeGroup:NodeGroup", "aws:kms/key:Key", "aws:kms/alias:Alias",
        "aws:ec2/launchTemplate:LaunchTemplate", "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
        "aws:cloudwatch/logGroup:LogGroup", "aws:ec2/natGateway:NatGateway", "pulumi:providers:kubernetes",
    },
    "gcp": {
        "gantry:gcp:GkeCluster", "gantry:gcp:EncryptionKey", "gantry:gcp:Network",
        "gcp:container/cluster:Cluster", "gcp:container/nodePool:NodePool", "gcp:kms/cryptoKey:CryptoKey",
        "gcp:kms/keyRing:KeyRing", "gcp:compute/routerNat:RouterNat", "pulumi:providers:kubernetes",
    },
    "azure": {
        "gantry:azure:AksCluster", "gantry:azure:DiskEncryption",
        "azure-native:containerservice:ManagedCluster", "azure-native:compute:DiskEncryptionSet",
        "azure-native:keyvault:Vault", "azure-native:keyvault:Key", "azure-native:monitor:DiagnosticSetting",
        "pulumi:providers:kubernetes",
    },
}
CLUSTER_TYPE = {
    "aws": "aws:eks/cluster:Cluster",
    "gcp": "gcp:container/cluster:Cluster",
    "azure": "azure-native:containerservice:ManagedCluster",
}
STACKS = {"dev": "aws", "staging": "aws", "prod": "aws", "prod-gcp": "gcp", "prod-azure": "azure"}
OTHER_CLOUD_PREFIXES = {"aws": ("gcp:", "azure-native:"), "gcp": ("aws:", "azure-native:"),
                        "azure": ("aws:", "gcp:")}


@pytest.fixture(scope="module")
def rendered() -> dict[str, RenderResult]:
    return {stack: render_project(REPO, stack) for stack in STACKS}


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_stack_renders_its_cloud_cluster_and_exports(rendered: dict[str, RenderResult], stack: str) -> None:
    cloud = STACKS[stack]
    result = rendered[stack]
    types = {r.type for r in result.resources}
    assert EXPECTED[cloud] <= types, f"missing: {sorted(EXPECTED[cloud] - types)}"
    assert not [t for t in types if t.startswith(OTHER_CLOUD_PREFIXES[cloud])]
    cluster = result.one(CLUSTER_TYPE[cloud])
    assert result.outputs["clusterName"] == cluster.outputs["name"]
    assert result.outputs["clusterEndpoint"].startswith("https://")
    assert result.outputs["kubeconfig"] == "[secret]"


def test_dev_is_cheap_two_zones_one_nat_one_small_pool(rendered: dict[str, RenderResult]) -> None:
    dev = rendered["dev"]
    assert len([s for s in dev.of_type("aws:ec2/subnet:Subnet") if "private" in s.name]) == 2
    assert len(dev.of_type("aws:ec2/natGateway:NatGateway")) == 1
    [group] = dev.of_type("aws:eks/nodeGroup:NodeGroup")
    assert group.inputs["scalingConfig"]["maxSize"] <= 3


def test_prod_is_highly_available_with_separate_system_and_workload_pools(
    rendered: dict[str, RenderResult],
) -> None:
    prod = rendered["prod"]
    assert len([s for s in prod.of_type("aws:ec2/subnet:Subnet") if "private" in s.name]) == 3
    assert len(prod.of_type("aws:ec2/natGateway:NatGateway")) == 3
    labels = {g.inputs["labels"]["gantry.dev/role"] for g in prod.of_type("aws:eks/nodeGroup:NodeGroup")}
    assert labels == {"system", "workload"}
    cluster = prod.one("aws:eks/cluster:Cluster")
    assert cluster.inputs["vpcConfig"]["endpointPublicAccess"] is False
    assert len(cluster.inputs["enabledClusterLogTypes"]) == 5
    assert cluster.inputs["encryptionConfig"]["provider"]["keyArn"] == prod.one("aws:kms/key:Key").outputs["arn"]


def test_prod_gcp_and_prod_azure_show_the_equivalents(rendered: dict[str, RenderResult]) -> None:
    gke = rendered["prod-gcp"].one("gcp:container/cluster:Cluster")
    assert gke.inputs["databaseEncryption"]["keyName"] == rendered["prod-gcp"].one("gcp:kms/cryptoKey:CryptoKey").id
    assert gke.inputs["privateClusterConfig"]["enablePrivateEndpoint"] is True
    pools = {p.inputs["name"] for p in rendered["prod-gcp"].of_type("gcp:container/nodePool:NodePool")}
    assert pools == {"system", "workload"}
    aks = rendered["prod-azure"].one("azure-native:containerservice:ManagedCluster")
    des = rendered["prod-azure"].one("azure-native:compute:DiskEncryptionSet")
    assert aks.inputs["diskEncryptionSetID"] == des.id
    assert aks.inputs["apiServerAccessProfile"]["enablePrivateCluster"] is True
    assert [p["mode"] for p in aks.inputs["agentPoolProfiles"]] == ["System", "User"]
    # Prod keeps control-plane logs for a year on every cloud.
    assert rendered["prod"].one("aws:cloudwatch/logGroup:LogGroup", "gantry-prod-logs").inputs["retentionInDays"] == 365
    bucket = rendered["prod-gcp"].one("gcp:logging/projectBucketConfig:ProjectBucketConfig")
    assert bucket.inputs["retentionDays"] == 365
    workspace = rendered["prod-azure"].one("azure-native:operationalinsights:Workspace")
    assert workspace.inputs["retentionInDays"] == 365


# --------------------------------------------------------------------------- the factory's contract


@pytest.mark.parametrize(("cloud", "command"), [
    (Cloud.AWS, "aws"), (Cloud.GCP, "gke-gcloud-auth-plugin"), (Cloud.AZURE, None),
])
def test_every_cloud_satisfies_the_managed_cluster_contract(cloud: Cloud, command: str | None) -> None:
    import pulumi
    import pulumi_kubernetes as k8s

    spec = make_cluster_spec()
    seen: dict[str, object] = {}

    def program() -> None:
        cluster = build_cluster(spec.name, spec, cloud=cloud, region=REGIONS[cloud], tier=Tier.PROD, tags={},
                                project=PROJECT)
        seen["cluster"] = cluster
        pulumi.Output.all(cluster.kubeconfig, cluster.endpoint).apply(
            lambda pair: seen.update(kubeconfig=pair[0], endpoint=pair[1]))

    render_callable(program, project="gantry", stack="contract", config=PROVIDER_CONFIG[cloud])
    cluster = seen["cluster"]
    assert isinstance(cluster, ManagedCluster)
    assert isinstance(cluster.provider, k8s.Provider)
    config = json.loads(str(seen["kubeconfig"]))
    [entry] = config["clusters"]
    assert entry["cluster"]["server"].removesuffix(":443") == seen["endpoint"]
    assert entry["cluster"]["certificate-authority-data"]
    if command is not None:
        # A credential plugin, never a stored token.
        [user] = config["users"]
        assert user["user"]["exec"]["command"] == command
        assert "token" not in user["user"]


bounds = st.tuples(st.integers(1, 20), st.integers(0, 20), st.integers(0, 20)).map(
    lambda t: (t[0], t[0] + t[1], t[0] + t[1] + t[2]))


@settings(max_examples=8, deadline=None)
@given(cloud=st.sampled_from([Cloud.AWS, Cloud.GCP, Cloud.AZURE]), sizes=bounds)
def test_pool_bounds_reach_each_clouds_autoscaler_unchanged(cloud: Cloud, sizes: tuple[int, int, int]) -> None:
    low, desired, high = sizes
    spec = make_cluster_spec(node_pools=[make_pool("pool", min_size=low, desired_size=desired, max_size=high)])
    result = render_cluster(cloud, spec, tier=Tier.DEV)
    if cloud is Cloud.AWS:
        scaling = result.one("aws:eks/nodeGroup:NodeGroup").inputs["scalingConfig"]
        assert (scaling["minSize"], scaling["desiredSize"], scaling["maxSize"]) == sizes
    elif cloud is Cloud.GCP:
        auto = result.one("gcp:container/nodePool:NodePool").inputs["autoscaling"]
        assert (auto["totalMinNodeCount"], auto["totalMaxNodeCount"]) == (low, high)
    else:
        [profile] = result.one(CLUSTER_TYPE["azure"]).inputs["agentPoolProfiles"]
        assert (profile["minCount"], profile["count"], profile["maxCount"]) == sizes
