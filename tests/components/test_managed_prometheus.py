"""Managed Prometheus per cloud under the renderer's mocks: what each cluster creates, and the endpoint it exports."""

from __future__ import annotations

import pytest
import yaml
from clusters_helpers import PROJECT, make_cluster_spec, render_cluster

from components.aws.prometheus import SCRAPER_USER, scrape_configuration
from components.gcp.gke import gmp_query_url
from components.spec import Cloud, Tier

WORKSPACE = "aws:amp/workspace:Workspace"
SCRAPER = "aws:amp/scraper:Scraper"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
EKS = "aws:eks/cluster:Cluster"
KMS_KEY = "aws:kms/key:Key"


def test_eks_workspace_is_key_encrypted_and_scraped_from_private_subnets() -> None:
    result = render_cluster(Cloud.AWS, tier=Tier.PROD)
    workspace, scraper, cluster = result.one(WORKSPACE), result.one(SCRAPER), result.one(EKS)
    assert workspace.inputs["kmsKeyArn"] == result.one(KMS_KEY).outputs["arn"]
    assert scraper.inputs["destination"]["amp"]["workspaceArn"] == workspace.outputs["arn"]
    assert scraper.inputs["source"]["eks"]["clusterArn"] == cluster.outputs["arn"]
    assert scraper.inputs["source"]["eks"]["subnetIds"] == cluster.inputs["vpcConfig"]["subnetIds"]
    entry = result.one(ACCESS_ENTRY)
    assert entry.inputs["userName"] == SCRAPER_USER
    binding = result.one("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")
    assert binding.inputs["subjects"][0]["name"] == SCRAPER_USER
    role = result.one("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")
    verbs = {v for rule in role.inputs["rules"] for v in rule["verbs"]}
    assert verbs <= {"get", "list", "watch"}, "the scraper only reads"
    exported = result.outputs["metrics"]
    assert exported["auth"] == "sigv4"
    assert exported["url"] == workspace.outputs["prometheusEndpoint"].rstrip("/")


def test_eks_scrape_config_copies_gantry_pod_labels() -> None:
    config = yaml.safe_load(scrape_configuration())
    relabels = config["scrape_configs"][0]["relabel_configs"]
    copied = {r["target_label"]: r["source_labels"][0] for r in relabels if "target_label" in r}
    assert copied["app"] == "__meta_kubernetes_pod_label_app_kubernetes_io_name"
    assert copied["track"] == "__meta_kubernetes_pod_label_gantry_dev_track"
    assert copied["namespace"] == "__meta_kubernetes_namespace"
    assert relabels[0]["action"] == "keep"


def test_gke_managed_collection_and_query_url() -> None:
    result = render_cluster(Cloud.GCP, tier=Tier.PROD)
    cluster = result.one("gcp:container/cluster:Cluster")
    assert cluster.inputs["monitoringConfig"]["managedPrometheus"]["enabled"] is True
    assert result.outputs["metrics"] == {"url": gmp_query_url(PROJECT), "auth": "google"}
    assert gmp_query_url("p-1") == "https://monitoring.googleapis.com/v1/projects/p-1/location/global/prometheus"


def test_aks_forwards_prometheus_into_a_private_workspace() -> None:
    result = render_cluster(Cloud.AZURE, tier=Tier.PROD)
    workspace = result.one("azure-native:monitor:AzureMonitorWorkspace")
    assert workspace.inputs["publicNetworkAccess"] == "Disabled"
    rule = result.one("azure-native:monitor:DataCollectionRule")
    assert rule.inputs["destinations"]["monitoringAccounts"][0]["accountResourceId"] == workspace.outputs["id"]
    assert rule.inputs["dataFlows"][0]["streams"] == ["Microsoft-PrometheusMetrics"]
    assoc = result.one("azure-native:monitor:DataCollectionRuleAssociation")
    cluster = result.one("azure-native:containerservice:ManagedCluster")
    assert assoc.inputs["resourceUri"] == cluster.outputs["id"]
    assert assoc.inputs["dataCollectionRuleId"] == rule.outputs["id"]
    assert cluster.inputs["azureMonitorProfile"]["metrics"]["enabled"] is True
    assert result.outputs["metrics"]["auth"] == "azure"


@pytest.mark.parametrize("cloud", [Cloud.AWS, Cloud.GCP, Cloud.AZURE])
def test_managed_prometheus_can_be_turned_off(cloud: Cloud) -> None:
    result = render_cluster(cloud, make_cluster_spec(managed_prometheus=False), tier=Tier.DEV)
    assert "metrics" not in result.outputs
    assert not result.of_type(WORKSPACE) and not result.of_type("azure-native:monitor:AzureMonitorWorkspace")
