"""AKS cluster wiring under the renderer's mocks: disk encryption set, private API, Entra ID, pools."""

from __future__ import annotations

import pytest
from clusters_helpers import make_cluster_spec, make_pool, render_cluster

from components.azure.keyvault import (
    ROLE_KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
    ROLE_NETWORK_CONTRIBUTOR,
)
from components.cluster import build_cluster
from components.spec import Cloud, Tier
from components.validation import SpecError
from infra.render import RenderResult

AKS = "azure-native:containerservice:ManagedCluster"
DES = "azure-native:compute:DiskEncryptionSet"
KEY = "azure-native:keyvault:Key"
VAULT = "azure-native:keyvault:Vault"
ROLE = "azure-native:authorization:RoleAssignment"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
WORKSPACE = "azure-native:operationalinsights:Workspace"
DIAGNOSTICS = "azure-native:monitor:DiagnosticSetting"
SUBNET = "azure-native:network:Subnet"


@pytest.fixture(scope="module")
def prod() -> RenderResult:
    return render_cluster(Cloud.AZURE, tier=Tier.PROD)


def _role(result: RenderResult, guid: str) -> list[dict[str, object]]:
    return [dict(r.inputs) for r in result.of_type(ROLE) if str(r.inputs["roleDefinitionId"]).endswith(guid)]


def test_component_tree_uses_gantry_type_tokens(prod: RenderResult) -> None:
    top = prod.one("gantry:azure:AksCluster")
    assert prod.one("gantry:azure:DiskEncryption").parent == top.urn
    assert prod.one(AKS).parent == top.urn


def test_cluster_disks_use_the_created_disk_encryption_set(prod: RenderResult) -> None:
    cluster, des = prod.one(AKS), prod.one(DES)
    assert cluster.inputs["diskEncryptionSetID"] == des.id
    assert des.urn in cluster.property_dependencies["diskEncryptionSetID"]


def test_disk_encryption_set_follows_the_rotating_vault_key(prod: RenderResult) -> None:
    des, key, vault = prod.one(DES), prod.one(KEY), prod.one(VAULT)
    assert des.inputs["activeKey"] == {"keyUrl": key.outputs["keyUri"], "sourceVault": {"id": vault.id}}
    assert des.inputs["rotationToLatestKeyVersionEnabled"] is True
    assert des.inputs["encryptionType"] == "EncryptionAtRestWithCustomerKey"
    rotation = key.inputs["properties"]["rotationPolicy"]
    rotate = [a for a in rotation["lifetimeActions"] if a["action"]["type"] == "rotate"]
    assert rotate == [{"action": {"type": "rotate"}, "trigger": {"timeAfterCreate": "P90D"}}]
    assert rotation["attributes"]["expiryTime"] == "P120D"


def test_vault_is_rbac_only_purge_protected_and_closed(prod: RenderResult) -> None:
    props = prod.one(VAULT).inputs["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enablePurgeProtection"] is True
    assert props["networkAcls"] == {"defaultAction": "Deny", "bypass": "AzureServices"}


def test_only_the_disk_encryption_set_may_use_the_key(prod: RenderResult) -> None:
    des, key = prod.one(DES), prod.one(KEY)
    grants = _role(prod, ROLE_KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER)
    assert len(grants) == 1
    assert grants[0]["scope"] == key.id
    assert grants[0]["principalId"] == des.outputs["identity"]["principalId"]


def test_api_server_is_private_with_entra_id_rbac_and_no_local_accounts(prod: RenderResult) -> None:
    cluster = prod.one(AKS)
    access = cluster.inputs["apiServerAccessProfile"]
    assert access["enablePrivateCluster"] is True
    assert access["enablePrivateClusterPublicFQDN"] is False
    assert "authorizedIPRanges" not in access
    assert cluster.inputs["aadProfile"]["managed"] is True
    assert cluster.inputs["aadProfile"]["enableAzureRBAC"] is True
    assert cluster.inputs["disableLocalAccounts"] is True


def test_public_api_server_allows_only_the_listed_ranges() -> None:
    spec = make_cluster_spec(endpoint={"public_access": True, "public_access_cidrs": ["192.0.2.0/24"]})
    access = render_cluster(Cloud.AZURE, spec).one(AKS).inputs["apiServerAccessProfile"]
    assert access["enablePrivateCluster"] is False
    assert access["authorizedIPRanges"] == ["192.0.2.0/24"]


def test_system_and_user_pools_autoscale_within_the_spec(prod: RenderResult) -> None:
    cluster = prod.one(AKS)
    profiles = cluster.inputs["agentPoolProfiles"]
    spec = make_cluster_spec()
    assert [p["name"] for p in profiles] == [p.name for p in spec.node_pools]
    assert [p["mode"] for p in profiles] == ["System", "User"]
    for profile, pool in zip(profiles, spec.node_pools, strict=True):
        assert profile["enableAutoScaling"] is True
        assert (profile["minCount"], profile["count"], profile["maxCount"]) == (
            pool.min_size, pool.desired_size, pool.max_size)
        assert profile["availabilityZones"] == ["1", "2", "3"]
        assert profile["enableNodePublicIP"] is False
    assert set(cluster.ignore_changes) == {"agentPoolProfiles[0].count", "agentPoolProfiles[1].count"}


def test_a_single_workload_pool_becomes_the_system_pool() -> None:
    spec = make_cluster_spec(name="acme-dev", node_pools=[make_pool("general", min_size=1, desired_size=1,
                                                                   max_size=3)])
    cluster = render_cluster(Cloud.AZURE, spec, tier=Tier.DEV).one(AKS)
    [profile] = cluster.inputs["agentPoolProfiles"]
    assert profile["mode"] == "System"
    assert profile["availabilityZones"] == ["1", "2"]
    assert "nodeTaints" not in profile
    assert cluster.inputs["sku"] == {"name": "Base", "tier": "Free"}


def test_oidc_workload_identity_policy_addon_and_monitoring(prod: RenderResult) -> None:
    cluster, workspace = prod.one(AKS), prod.one(WORKSPACE)
    assert cluster.inputs["oidcIssuerProfile"] == {"enabled": True}
    assert cluster.inputs["securityProfile"]["workloadIdentity"] == {"enabled": True}
    addons = cluster.inputs["addonProfiles"]
    assert addons["azurepolicy"] == {"enabled": True}
    assert addons["omsagent"]["config"]["logAnalyticsWorkspaceResourceID"] == workspace.id
    assert cluster.inputs["azureMonitorProfile"]["metrics"]["enabled"] is True
    assert workspace.inputs["retentionInDays"] == 90


def test_control_plane_logs_cover_all_five_types(prod: RenderResult) -> None:
    setting = prod.one(DIAGNOSTICS)
    assert setting.inputs["resourceUri"] == prod.one(AKS).id
    assert setting.inputs["workspaceId"] == prod.one(WORKSPACE).id
    categories = {log["category"] for log in setting.inputs["logs"] if log["enabled"]}
    assert categories == {"kube-apiserver", "kube-audit-admin", "guard", "kube-controller-manager", "kube-scheduler"}


def test_control_plane_identity_manages_only_the_node_subnet(prod: RenderResult) -> None:
    identity, subnet = prod.one(IDENTITY), prod.one(SUBNET)
    cluster = prod.one(AKS)
    assert cluster.inputs["identity"] == {"type": "UserAssigned", "userAssignedIdentities": [identity.id]}
    [grant] = _role(prod, ROLE_NETWORK_CONTRIBUTOR)
    assert grant["scope"] == subnet.id
    assert grant["principalId"] == identity.outputs["principalId"]
    for profile in cluster.inputs["agentPoolProfiles"]:
        assert profile["vnetSubnetID"] == subnet.id


def test_tags_reach_the_cluster(prod: RenderResult) -> None:
    tags = prod.one(AKS).inputs["tags"]
    assert tags["owner"] == "platform-team"
    assert tags["gantry-cluster"] == "acme-prod"


def test_role_assignment_names_are_stable_guids(prod: RenderResult) -> None:
    again = render_cluster(Cloud.AZURE, tier=Tier.PROD)
    first = sorted(r.inputs["roleAssignmentName"] for r in prod.of_type(ROLE))
    assert first == sorted(r.inputs["roleAssignmentName"] for r in again.of_type(ROLE))
    assert len(set(first)) == len(first) == 3


def test_kubeconfig_is_secret(prod: RenderResult) -> None:
    assert prod.outputs["kubeconfig"] == "[secret]"
    assert prod.outputs["clusterEndpoint"].startswith("https://")
    assert prod.outputs["clusterEndpoint"].endswith(".privatelink.westeurope.azmk8s.io")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"node_pools": [make_pool("toolongpoolname")]}, "nodePools[0].name"),
        ({"node_pools": [make_pool("with-dash")]}, "nodePools[0].name"),
        ({"logging": {"retention_days": 7}}, "logging.retentionDays"),
        ({"network": {"zone_count": 4}}, "network.zoneCount"),
        ({"encryption": {"create_key": False, "existing_key_id": "https://kv/keys/k"}}, "encryption.existingKeyId"),
    ],
)
def test_azure_constraints_are_refused_at_construction(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as caught:
        build_cluster("c", make_cluster_spec(**overrides), cloud=Cloud.AZURE, region="westeurope",
                      tier=Tier.PROD, tags={})
    assert caught.value.field == field


def test_cluster_waits_for_every_role_assignment(prod: RenderResult) -> None:
    # AKS validates subnet and disk-encryption-set access when it creates the cluster.
    cluster = prod.one(AKS)
    assignments = {r.urn for r in prod.of_type(ROLE)}
    assert assignments <= set(cluster.dependencies)


def test_existing_subnet_and_disk_encryption_set_are_used() -> None:
    des = ("/subscriptions/s/resourceGroups/shared/providers/Microsoft.Compute/diskEncryptionSets/aks-des")
    subnet = "/subscriptions/s/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/hub/subnets/aks"
    spec = make_cluster_spec(
        network={"existing_vpc_id": "/subscriptions/s/resourceGroups/net/providers/Microsoft.Network/"
                                    "virtualNetworks/hub", "existing_private_subnet_ids": [subnet]},
        encryption={"create_key": False, "existing_key_id": des},
    )
    result = render_cluster(Cloud.AZURE, spec)
    assert result.of_type(DES) == [] and result.of_type(VAULT) == [] and result.of_type(SUBNET) == []
    cluster = result.one(AKS)
    assert cluster.inputs["diskEncryptionSetID"] == des
    assert {p["vnetSubnetID"] for p in cluster.inputs["agentPoolProfiles"]} == {subnet}
    [grant] = _role(result, ROLE_NETWORK_CONTRIBUTOR)
    assert grant["scope"] == subnet
