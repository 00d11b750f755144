"""GKE cluster wiring under the renderer's mocks: CMEK, private cluster, pools, identity, logging."""

from __future__ import annotations

import pytest
from clusters_helpers import PROJECT, make_cluster_spec, make_pool, render_cluster

from components.cluster import build_cluster
from components.spec import Cloud, Tier
from components.validation import SpecError
from infra.render import RenderResult

GKE = "gcp:container/cluster:Cluster"
POOL = "gcp:container/nodePool:NodePool"
CRYPTO_KEY = "gcp:kms/cryptoKey:CryptoKey"
KEY_MEMBER = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
SUBNETWORK = "gcp:compute/subnetwork:Subnetwork"
SERVICE_ACCOUNT = "gcp:serviceaccount/account:Account"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"


@pytest.fixture(scope="module")
def prod() -> RenderResult:
    return render_cluster(Cloud.GCP, tier=Tier.PROD)


def test_component_tree_uses_gantry_type_tokens(prod: RenderResult) -> None:
    top = prod.one("gantry:gcp:GkeCluster")
    assert prod.one("gantry:gcp:EncryptionKey").parent == top.urn
    assert prod.one("gantry:gcp:Network").parent == top.urn
    assert prod.one(GKE).parent == top.urn


def test_secrets_are_encrypted_with_the_created_crypto_key(prod: RenderResult) -> None:
    cluster, key = prod.one(GKE), prod.one(CRYPTO_KEY)
    assert cluster.inputs["databaseEncryption"] == {"state": "ENCRYPTED", "keyName": key.id}
    assert key.urn in cluster.property_dependencies["databaseEncryption"]


def test_crypto_key_rotates_within_ninety_days(prod: RenderResult) -> None:
    key = prod.one(CRYPTO_KEY)
    period = key.inputs["rotationPeriod"]
    assert period.endswith("s")
    assert int(period[:-1]) <= 90 * 86400
    assert key.inputs["purpose"] == "ENCRYPT_DECRYPT"


def test_service_agents_may_use_the_key_before_the_cluster_exists(prod: RenderResult) -> None:
    key, cluster = prod.one(CRYPTO_KEY), prod.one(GKE)
    members = prod.of_type(KEY_MEMBER)
    domains = {m.inputs["member"].split("@", 1)[1] for m in members}
    assert domains == {"container-engine-robot.iam.gserviceaccount.com", "compute-system.iam.gserviceaccount.com"}
    for member in members:
        assert member.inputs["cryptoKeyId"] == key.id
        assert member.inputs["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
        assert member.inputs["member"].startswith("serviceAccount:service-")
        assert member.inputs["member"].split("@")[0].removeprefix("serviceAccount:service-").isdigit()
    # The cluster waits for the grants: GKE checks its key access when the cluster is created.
    assert {m.urn for m in members} <= set(cluster.dependencies)


def test_private_nodes_private_endpoint_and_authorized_networks(prod: RenderResult) -> None:
    cluster = prod.one(GKE)
    private = cluster.inputs["privateClusterConfig"]
    assert private["enablePrivateNodes"] is True
    assert private["enablePrivateEndpoint"] is True
    networks = cluster.inputs["masterAuthorizedNetworksConfig"]
    assert networks["cidrBlocks"] == [{"cidrBlock": "10.0.0.0/16", "displayName": "cluster-network"}]
    assert networks["gcpPublicCidrsAccessEnabled"] is False


def test_public_endpoint_authorizes_only_the_listed_cidrs() -> None:
    spec = make_cluster_spec(endpoint={"public_access": True, "public_access_cidrs": ["198.51.100.0/24"]})
    cluster = render_cluster(Cloud.GCP, spec).one(GKE)
    assert cluster.inputs["privateClusterConfig"]["enablePrivateEndpoint"] is False
    assert cluster.inputs["privateClusterConfig"]["enablePrivateNodes"] is True
    assert [b["cidrBlock"] for b in cluster.inputs["masterAuthorizedNetworksConfig"]["cidrBlocks"]] == [
        "198.51.100.0/24"]


def test_workload_identity_shielded_nodes_dataplane_v2_and_release_channel(prod: RenderResult) -> None:
    cluster = prod.one(GKE)
    assert cluster.inputs["workloadIdentityConfig"] == {"workloadPool": f"{PROJECT}.svc.id.goog"}
    assert cluster.inputs["enableShieldedNodes"] is True
    assert cluster.inputs["datapathProvider"] == "ADVANCED_DATAPATH"
    assert cluster.inputs["releaseChannel"] == {"channel": "REGULAR"}
    assert cluster.inputs["enableLegacyAbac"] is False
    assert cluster.inputs["deletionProtection"] is True


def test_logging_and_monitoring_are_on(prod: RenderResult) -> None:
    cluster = prod.one(GKE)
    logged = set(cluster.inputs["loggingConfig"]["enableComponents"])
    assert {"SYSTEM_COMPONENTS", "WORKLOADS", "APISERVER", "CONTROLLER_MANAGER", "SCHEDULER"} <= logged
    assert cluster.inputs["monitoringConfig"]["managedPrometheus"] == {"enabled": True}
    assert "SYSTEM_COMPONENTS" in cluster.inputs["monitoringConfig"]["enableComponents"]


def test_cluster_logs_go_to_a_bucket_with_the_spec_retention(prod: RenderResult) -> None:
    bucket = prod.one("gcp:logging/projectBucketConfig:ProjectBucketConfig")
    sink = prod.one("gcp:logging/projectSink:ProjectSink")
    assert bucket.inputs["retentionDays"] == 90
    assert sink.inputs["destination"] == f"logging.googleapis.com/{bucket.id}"
    assert sink.inputs["filter"] == 'resource.labels.cluster_name="acme-prod"'


def test_default_pool_is_removed_and_pools_autoscale_within_the_spec(prod: RenderResult) -> None:
    cluster = prod.one(GKE)
    assert cluster.inputs["removeDefaultNodePool"] is True
    # The deleted default pool's settings must never force a cluster replacement.
    assert "nodeConfig" in cluster.ignore_changes
    spec = make_cluster_spec()
    pools = {p.inputs["name"]: p for p in prod.of_type(POOL)}
    assert set(pools) == {p.name for p in spec.node_pools}
    for pool_spec in spec.node_pools:
        pool = pools[pool_spec.name]
        scaling = pool.inputs["autoscaling"]
        assert (scaling["totalMinNodeCount"], scaling["totalMaxNodeCount"]) == (pool_spec.min_size, pool_spec.max_size)
        assert "initialNodeCount" in pool.ignore_changes
        assert pool.inputs["cluster"] == cluster.outputs["name"]


def test_boot_disks_use_the_key_and_nodes_a_dedicated_account(prod: RenderResult) -> None:
    key = prod.one(CRYPTO_KEY)
    account = prod.one(SERVICE_ACCOUNT)
    email = f"{account.inputs['accountId']}@{PROJECT}.iam.gserviceaccount.com"
    for pool in prod.of_type(POOL):
        node = pool.inputs["nodeConfig"]
        assert node["bootDiskKmsKey"] == key.id
        assert node["serviceAccount"] == email
        assert node["shieldedInstanceConfig"] == {"enableSecureBoot": True, "enableIntegrityMonitoring": True}
        assert node["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
    roles = {m.inputs["role"] for m in prod.of_type(PROJECT_MEMBER) if m.inputs["member"] == f"serviceAccount:{email}"}
    assert roles == {"roles/container.defaultNodeServiceAccount", "roles/artifactregistry.reader"}


def test_labels_come_from_tags(prod: RenderResult) -> None:
    labels = prod.one(GKE).inputs["resourceLabels"]
    assert labels["owner"] == "platform-team"
    assert labels["cost-center"] == "cc-1001"
    assert labels["gantry-cluster"] == "acme-prod"


def test_subnetwork_has_secondary_ranges_and_private_google_access(prod: RenderResult) -> None:
    sub = prod.one(SUBNETWORK)
    assert sub.inputs["privateIpGoogleAccess"] is True
    names = {r["rangeName"] for r in sub.inputs["secondaryIpRanges"]}
    assert names == {"pods", "services"}
    policy = prod.one(GKE).inputs["ipAllocationPolicy"]
    assert policy == {"clusterSecondaryRangeName": "pods", "servicesSecondaryRangeName": "services"}


def test_two_zone_cluster_pins_node_locations() -> None:
    spec = make_cluster_spec(network={"zone_count": 2}, node_pools=[make_pool("general", min_size=1,
                                                                              desired_size=1, max_size=3)])
    cluster = render_cluster(Cloud.GCP, spec, tier=Tier.DEV).one(GKE)
    assert len(cluster.inputs["nodeLocations"]) == 2
    assert all(z.startswith("europe-west1-") for z in cluster.inputs["nodeLocations"])
    assert cluster.inputs["deletionProtection"] is False


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"encryption": {"rotation_days": 180}}, "encryption.rotationDays"),
        ({"network": {"zones": ["us-east1-b"]}}, "network.zones[0]"),
        ({"encryption": {"create_key": False, "existing_key_id": "arn:aws:kms:x"}}, "encryption.existingKeyId"),
    ],
)
def test_gcp_constraints_are_refused_at_construction(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as caught:
        build_cluster("c", make_cluster_spec(**overrides), cloud=Cloud.GCP, region="europe-west1",
                      tier=Tier.PROD, tags={}, project=PROJECT)
    assert caught.value.field == field


def test_without_a_project_the_providers_project_is_used() -> None:
    # The renderer's mocks answer getClientConfig with the gcp:project config value.
    cluster = render_cluster(Cloud.GCP, pass_project=False).one(GKE)
    assert cluster.inputs["project"] == PROJECT
    assert cluster.inputs["workloadIdentityConfig"] == {"workloadPool": f"{PROJECT}.svc.id.goog"}


def test_existing_network_and_key_are_used_instead_of_created_ones() -> None:
    key = f"projects/{PROJECT}/locations/europe-west1/keyRings/shared/cryptoKeys/gke"
    spec = make_cluster_spec(
        network={"existing_vpc_id": "projects/p/global/networks/shared",
                 "existing_private_subnet_ids": ["projects/p/regions/europe-west1/subnetworks/gke"]},
        encryption={"create_key": False, "existing_key_id": key},
    )
    result = render_cluster(Cloud.GCP, spec)
    assert result.of_type("gantry:gcp:Network") == [] and result.of_type(CRYPTO_KEY) == []
    cluster = result.one(GKE)
    assert cluster.inputs["network"] == "projects/p/global/networks/shared"
    assert cluster.inputs["subnetwork"] == "projects/p/regions/europe-west1/subnetworks/gke"
    assert cluster.inputs["databaseEncryption"]["keyName"] == key
    assert all(p.inputs["nodeConfig"]["bootDiskKmsKey"] == key for p in result.of_type(POOL))
