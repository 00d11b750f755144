"""Raw SDK programs per cloud: each insecure setting fails exactly the rule that owns it.

The programs use the real SDKs (snake_case in Python, engine camelCase in the graph), so this also checks
that the rules read the property names the engine really sends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from infra.render import render_callable
from policies.config import build_settings, load_policy_config
from policies.engine import FindingStatus, evaluate, resources_from_render
from policies.model import TierName


def gcp_prog() -> None:
    import pulumi_gcp as gcp

    cluster = gcp.container.Cluster(
        "gke", location="europe-west1", enable_legacy_abac=True,
        master_auth={"client_certificate_config": {"issue_client_certificate": True}},
        enable_shielded_nodes=False, logging_service="none", monitoring_service="none",
        datapath_provider="LEGACY_DATAPATH", min_master_version="1.27", initial_node_count=1,
        remove_default_node_pool=True)
    gcp.container.NodePool(
        "pool", cluster=cluster.name, location="europe-west1", node_count=3,
        node_config={"machine_type": "e2-standard-4", "workload_metadata_config": {"mode": "GCE_METADATA"},
                     "metadata": {"disable-legacy-endpoints": "false"}})
    key = gcp.kms.CryptoKey("key", key_ring="projects/p/locations/l/keyRings/r", rotation_period="31536000s",
                            destroy_scheduled_duration="86400s")
    gcp.kms.CryptoKeyIAMMember("public", crypto_key_id=key.id, role="roles/cloudkms.cryptoKeyDecrypter",
                               member="allUsers")


def azure_prog() -> None:
    import pulumi_azure_native as az

    az.containerservice.ManagedCluster(
        "aks", resource_group_name="rg", kubernetes_version="1.27", enable_rbac=False,
        disable_local_accounts=False, dns_prefix="aks",
        agent_pool_profiles=[{"name": "system", "count": 3, "vm_size": "Standard_D4s_v5", "mode": "System"}],
        network_profile={"network_plugin": "kubenet"})
    az.keyvault.Vault("kv", resource_group_name="rg", properties={
        "tenant_id": "t", "sku": {"family": "A", "name": "standard"}, "enable_soft_delete": False,
        "access_policies": [{"tenant_id": "t", "object_id": "*", "permissions": {"keys": ["get"]}}]})
    az.keyvault.Key("key", resource_group_name="rg", vault_name="kv", properties={"kty": "RSA"})


def aws_prog() -> None:
    import json

    import pulumi_aws as aws

    aws.ec2.SecurityGroup("ssh", ingress=[
        {"from_port": 22, "to_port": 22, "protocol": "tcp", "cidr_blocks": ["0.0.0.0/0"]}])
    aws.eks.NodeGroup(
        "ng", cluster_name="c", node_role_arn="arn:aws:iam::1:role/n", subnet_ids=["s"],
        scaling_config={"min_size": 2, "desired_size": 5, "max_size": 4}, remote_access={"ec2_ssh_key": "ops"})
    aws.ec2.LaunchTemplate("lt", metadata_options={"http_tokens": "optional"},
                           block_device_mappings=[{"device_name": "/dev/xvda", "ebs": {"volume_size": 20}}])
    aws.kms.Key("key", enable_key_rotation=False, deletion_window_in_days=7, policy=json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}]}))


def k8s_prog() -> None:
    import pulumi_kubernetes as k8s

    labels = {"app": "api"}
    meta = {"name": "api", "namespace": "shop"}
    k8s.apps.v1.Deployment("api", metadata=meta, spec={
        "replicas": 3, "selector": {"match_labels": labels},
        "strategy": {"type": "Recreate"}, "revision_history_limit": 0,
        "template": {"metadata": {"labels": labels}, "spec": {"host_network": True, "containers": [{
            "name": "api", "image": "ghcr.io/a/api:1.0", "env": [{"name": "API_TOKEN", "value": "abc"}],
            "security_context": {"privileged": True}}]}}})
    k8s.core.v1.Service("api", metadata=meta,
                        spec={"type": "NodePort", "selector": labels, "ports": [{"port": 80}]})
    k8s.autoscaling.v2.HorizontalPodAutoscaler("hpa", metadata=meta, spec={
        "scale_target_ref": {"api_version": "apps/v1", "kind": "Deployment", "name": "apii"},
        "min_replicas": 1, "max_replicas": 3})
    k8s.policy.v1.PodDisruptionBudget("pdb", metadata=meta,
                                      spec={"max_unavailable": 0, "selector": {"match_labels": labels}})
    k8s.apiextensions.CustomResource(
        "vs", api_version="networking.istio.io/v1beta1", kind="VirtualService", metadata=meta,
        spec={"http": [{"route": [{"destination": {"host": "api", "subset": "stable"}, "weight": 80},
                                  {"destination": {"host": "api", "subset": "canary"}, "weight": 10}]}]})


GCP = {
    ("gke", "cloud-required-tags"), ("gke", "gke-logging-monitoring"), ("gke", "gke-master-authorized-networks"),
    ("gke", "gke-no-legacy-auth"), ("gke", "gke-node-hardening"), ("gke", "gke-private-cluster"),
    ("gke", "gke-secrets-encryption-cmek"), ("gke", "k8s-version-supported"), ("gke", "network-policy-enforced"),
    ("key", "cloud-required-tags"), ("key", "kms-deletion-protection"), ("key", "kms-key-rotation"),
    ("pool", "cloud-required-tags"), ("pool", "gke-node-hardening"), ("pool", "node-disk-encryption"),
    ("pool", "nodepool-autoscaling-bounds"), ("public", "kms-policy-no-wildcard-principal"),
    ("gke", "stateful-protect"), ("key", "stateful-protect"),
}
AZURE = {
    ("aks", "aks-monitoring"), ("aks", "aks-policy-addon"), ("aks", "aks-private-or-authorized-ips"),
    ("aks", "aks-rbac-no-local-accounts"), ("aks", "cloud-required-tags"), ("aks", "k8s-version-supported"),
    ("aks", "network-policy-enforced"), ("aks", "node-disk-encryption"), ("aks", "nodepool-autoscaling-bounds"),
    ("key", "kms-key-rotation"), ("kv", "cloud-required-tags"), ("kv", "kms-deletion-protection"),
    ("kv", "kms-policy-no-wildcard-principal"),
    # unprotected stateful resources in prod; Key Vault keys take tags too (the SDK says so)
    ("kv", "stateful-protect"), ("key", "stateful-protect"), ("aks", "stateful-protect"),
    ("key", "cloud-required-tags"),
}
AWS = {
    ("key", "cloud-required-tags"), ("key", "kms-deletion-protection"), ("key", "kms-key-rotation"),
    ("key", "kms-policy-no-wildcard-principal"), ("lt", "cloud-required-tags"), ("lt", "node-disk-encryption"),
    ("lt", "node-imdsv2-required"), ("ng", "cloud-required-tags"), ("ng", "eks-nodegroup-no-open-ssh"),
    ("ng", "node-disk-encryption"), ("ng", "node-imdsv2-required"), ("ng", "nodepool-autoscaling-bounds"),
    ("ssh", "cloud-required-tags"), ("ssh", "eks-nodegroup-no-open-ssh"), ("key", "stateful-protect"),
}
K8S = {
    ("api", "container-probes"), ("api", "container-resources"), ("api", "drop-capabilities-seccomp"),
    ("api", "k8s-recommended-labels"), ("api", "no-host-namespaces"), ("api", "no-privilege-escalation"),
    ("api", "readonly-root-filesystem"), ("api", "rollout-strategy-safe"), ("api", "run-as-non-root"),
    ("api", "sa-token-no-automount"), ("api", "secrets-not-in-env"), ("api", "service-no-public-exposure"),
    ("api", "workload-ha"), ("hpa", "hpa-min-replicas"), ("hpa", "hpa-targets-existing-workload"),
    ("pdb", "pdb-allows-disruption"), ("vs", "canary-weights-valid"),
}


@pytest.mark.parametrize("program, config, expected", [
    (gcp_prog, {"gcp:project": "p", "gcp:region": "europe-west1"}, GCP),
    (azure_prog, {"azure-native:location": "westeurope"}, AZURE),
    (aws_prog, {"aws:region": "us-east-1"}, AWS),
    (k8s_prog, {}, K8S),
], ids=["gcp", "azure", "aws", "kubernetes"])
def test_raw_program_fails_exactly_the_expected_rules(program: Callable[[], None], config: dict[str, object],
                                                      expected: set[tuple[str, str]]) -> None:
    result = render_callable(program, project="raw", stack="dev", config=config)
    views = [v for v in resources_from_render(result) if v.type != "pulumi:pulumi:Stack"]
    policy = load_policy_config()
    findings = evaluate(views, build_settings(policy, TierName.PROD), policy.levels(TierName.PROD),
                        today=dt.date(2026, 11, 27))
    assert {(f.name, f.policy) for f in findings if f.status is FindingStatus.VIOLATION} == expected
    assert not [f for f in findings if f.status is FindingStatus.ERROR]
