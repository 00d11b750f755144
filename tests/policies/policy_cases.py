"""Compliant and non-compliant fixtures for every rule, in raw-provider form (the meta-test counts them)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import policy_builders as b

from policies.model import Resource, Settings, TierName

T_EKS = "aws:eks/cluster:Cluster"
T_NG = "aws:eks/nodeGroup:NodeGroup"
T_LT = "aws:ec2/launchTemplate:LaunchTemplate"
T_SG = "aws:ec2/securityGroup:SecurityGroup"
T_SGR = "aws:ec2/securityGroupRule:SecurityGroupRule"
T_ADDON = "aws:eks/addon:Addon"
T_KMS = "aws:kms/key:Key"
T_GKE = "gcp:container/cluster:Cluster"
T_GNP = "gcp:container/nodePool:NodePool"
T_GKEY = "gcp:kms/cryptoKey:CryptoKey"
T_GIAM = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
T_AKS = "azure-native:containerservice:ManagedCluster"
T_AP = "azure-native:containerservice:AgentPool"
T_KV = "azure-native:keyvault:Vault"
T_KVK = "azure-native:keyvault:Key"
T_DEP = "kubernetes:apps/v1:Deployment"
T_SVC = "kubernetes:core/v1:Service"
T_PDB = "kubernetes:policy/v1:PodDisruptionBudget"
T_HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
T_ROUTE = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
T_VS = "kubernetes:networking.istio.io/v1beta1:VirtualService"
T_ING = "kubernetes:networking.k8s.io/v1:Ingress"
T_CM = "kubernetes:core/v1:ConfigMap"
T_SA = "kubernetes:core/v1:ServiceAccount"
T_CRON = "kubernetes:batch/v1:CronJob"
T_PROVIDER_AWS = "pulumi:providers:aws"


@dataclass(frozen=True)
class Case:
    policy: str
    compliant: bool
    label: str
    resources: tuple[Resource, ...]
    subject: str | None
    """URN the outcome is about; None for a stack-wide outcome (cost-budget)."""
    settings: Settings

    @property
    def id(self) -> str:
        return f"{self.policy}:{'ok' if self.compliant else 'bad'}:{self.label}"


CASES: list[Case] = []


def _add(policy: str, compliant: bool, label: str, *resources: Resource, subject: str | int | None = 0,
         settings: Settings | None = None) -> None:
    subj = resources[subject].urn if isinstance(subject, int) else subject
    CASES.append(Case(policy, compliant, label, tuple(resources), subj, settings or b.settings()))


def ok(policy: str, label: str, *resources: Resource, **kw: Any) -> None:
    _add(policy, True, label, *resources, **kw)


def bad(policy: str, label: str, *resources: Resource, **kw: Any) -> None:
    _add(policy, False, label, *resources, **kw)


r = b.res
DEV = b.settings(TierName.DEV)

# --- clusters, AWS
ok("eks-endpoint-private", "private", r(T_EKS, b.eks_cluster()))
ok("eks-endpoint-private", "public-restricted", r(T_EKS, b.eks_cluster(
    vpcConfig={"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]})))
bad("eks-endpoint-private", "public-open", r(T_EKS, b.eks_cluster(
    vpcConfig={"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]})))
bad("eks-endpoint-private", "aws-default-is-public", r(T_EKS, b.eks_cluster(vpcConfig={"subnetIds": ["s"]}) | {
    "vpcConfig": {"subnetIds": ["s"]}}))
ok("eks-secrets-encryption", "kms", r(T_EKS, b.eks_cluster()))
ok("eks-secrets-encryption", "legacy-list-form", r(T_EKS, b.eks_cluster(
    encryptionConfig=[{"resources": ["secrets"], "provider": {"keyArn": b.KEY_ARN}}])))
bad("eks-secrets-encryption", "none", r(T_EKS, b.eks_cluster(encryptionConfig=None)))
ok("eks-control-plane-logging", "all-five", r(T_EKS, b.eks_cluster()))
bad("eks-control-plane-logging", "two", r(T_EKS, b.eks_cluster(enabledClusterLogTypes=["api", "audit"])))
ok("eks-nodegroup-no-open-ssh", "no-remote-access", r(T_NG, b.nodegroup()))
bad("eks-nodegroup-no-open-ssh", "key-without-sg", r(T_NG, b.nodegroup(remoteAccess={"ec2SshKey": "ops"})))
bad("eks-nodegroup-no-open-ssh", "security-group", r(T_SG, {"ingress": [
    {"fromPort": 22, "toPort": 22, "protocol": "tcp", "cidrBlocks": ["0.0.0.0/0"]}]}))
ok("eks-nodegroup-no-open-ssh", "security-group-https", r(T_SG, {"ingress": [
    {"fromPort": 443, "toPort": 443, "protocol": "tcp", "cidrBlocks": ["0.0.0.0/0"]}]}))
bad("eks-nodegroup-no-open-ssh", "sg-rule-all-traffic", r(T_SGR, {
    "type": "ingress", "fromPort": 0, "toPort": 0, "protocol": "-1", "cidrBlocks": ["0.0.0.0/0"]}))
ok("node-imdsv2-required", "launch-template", r(T_LT, b.launch_template()))
ok("node-imdsv2-required", "nodegroup-with-template", r(T_NG, b.nodegroup()))
bad("node-imdsv2-required", "optional-tokens", r(T_LT, b.launch_template(metadataOptions={"httpTokens": "optional"})))
bad("node-imdsv2-required", "nodegroup-without-template", r(T_NG, b.nodegroup(launchTemplate=None)))

# --- clusters, GCP
ok("gke-private-cluster", "private-nodes", r(T_GKE, b.gke_cluster()))
bad("gke-private-cluster", "public-nodes", r(T_GKE, b.gke_cluster(privateClusterConfig=None)))
ok("gke-master-authorized-networks", "private-endpoint", r(T_GKE, b.gke_cluster()))
ok("gke-master-authorized-networks", "public-endpoint-authorized", r(T_GKE, b.gke_cluster(
    privateClusterConfig={"enablePrivateEndpoint": False})))
bad("gke-master-authorized-networks", "public-endpoint-open", r(T_GKE, b.gke_cluster(
    privateClusterConfig={"enablePrivateEndpoint": False},
    masterAuthorizedNetworksConfig={"cidrBlocks": [{"cidrBlock": "0.0.0.0/0"}]})))
bad("gke-master-authorized-networks", "public-endpoint-none", r(T_GKE, b.gke_cluster(
    privateClusterConfig={"enablePrivateEndpoint": False}, masterAuthorizedNetworksConfig=None)))
ok("gke-no-legacy-auth", "defaults", r(T_GKE, b.gke_cluster()))
bad("gke-no-legacy-auth", "abac", r(T_GKE, b.gke_cluster(enableLegacyAbac=True)))
bad("gke-no-legacy-auth", "client-cert", r(T_GKE, b.gke_cluster(
    masterAuth={"clientCertificateConfig": {"issueClientCertificate": True}})))
ok("gke-node-hardening", "cluster", r(T_GKE, b.gke_cluster()))
ok("gke-node-hardening", "pool", r(T_GNP, b.gke_nodepool()))
bad("gke-node-hardening", "no-workload-identity", r(T_GKE, b.gke_cluster(workloadIdentityConfig=None)))
bad("gke-node-hardening", "pool-legacy-metadata", r(T_GNP, b.gke_nodepool(
    nodeConfig={"workloadMetadataConfig": {"mode": "GCE_METADATA"}})))
ok("gke-secrets-encryption-cmek", "encrypted", r(T_GKE, b.gke_cluster()))
bad("gke-secrets-encryption-cmek", "decrypted", r(T_GKE, b.gke_cluster(databaseEncryption={"state": "DECRYPTED"})))
ok("gke-logging-monitoring", "on", r(T_GKE, b.gke_cluster()))
bad("gke-logging-monitoring", "logging-none", r(T_GKE, b.gke_cluster(loggingService="none", loggingConfig=None)))
bad("gke-logging-monitoring", "no-apiserver-logs", r(T_GKE, b.gke_cluster(
    loggingConfig={"enableComponents": ["WORKLOADS"]})))

# --- clusters, Azure
ok("aks-private-or-authorized-ips", "private", r(T_AKS, b.aks_cluster()))
ok("aks-private-or-authorized-ips", "authorized", r(T_AKS, b.aks_cluster(
    apiServerAccessProfile={"enablePrivateCluster": False, "authorizedIPRanges": ["203.0.113.0/24"]})))
bad("aks-private-or-authorized-ips", "public", r(T_AKS, b.aks_cluster(apiServerAccessProfile=None)))
ok("aks-rbac-no-local-accounts", "aad", r(T_AKS, b.aks_cluster()))
bad("aks-rbac-no-local-accounts", "local-accounts", r(T_AKS, b.aks_cluster(disableLocalAccounts=False)))
ok("aks-policy-addon", "on", r(T_AKS, b.aks_cluster()))
ok("aks-policy-addon", "camel-case-key", r(T_AKS, b.aks_cluster(addonProfiles={"azurepolicy": None}) | {
    "addonProfiles": {"azurePolicy": {"enabled": True}}}))
bad("aks-policy-addon", "off", r(T_AKS, b.aks_cluster(addonProfiles={"azurepolicy": {"enabled": False}})))
ok("aks-monitoring", "omsagent", r(T_AKS, b.aks_cluster()))
ok("aks-monitoring", "managed-prometheus", r(T_AKS, b.aks_cluster(
    addonProfiles={"omsagent": None}, azureMonitorProfile={"metrics": {"enabled": True}})))
bad("aks-monitoring", "none", r(T_AKS, b.aks_cluster(addonProfiles={"omsagent": None})))

# --- clusters, all clouds
ok("k8s-version-supported", "eks", r(T_EKS, b.eks_cluster()))
ok("k8s-version-supported", "gke-patch-version", r(T_GKE, b.gke_cluster(minMasterVersion="1.32.4-gke.100")))
ok("k8s-version-supported", "pool-inherits", r(T_NG, b.nodegroup(version=None)))
bad("k8s-version-supported", "eks-old", r(T_EKS, b.eks_cluster(version="1.27")))
bad("k8s-version-supported", "aks-unpinned", r(T_AKS, b.aks_cluster(kubernetesVersion=None)))
bad("k8s-version-supported", "config-list-wins", r(T_EKS, b.eks_cluster()),
    settings=b.settings(supported_versions=("1.34",)))
ok("node-disk-encryption", "launch-template", r(T_LT, b.launch_template()))
ok("node-disk-encryption", "gke-pool", r(T_GNP, b.gke_nodepool()))
ok("node-disk-encryption", "aks-des", r(T_AKS, b.aks_cluster()))
bad("node-disk-encryption", "plain-ebs", r(T_LT, b.launch_template(
    blockDeviceMappings=[{"deviceName": "/dev/xvda", "ebs": {"volumeSize": 50}}])))
bad("node-disk-encryption", "gke-google-managed", r(T_GNP, b.gke_nodepool(nodeConfig={"bootDiskKmsKey": None})))
bad("node-disk-encryption", "agent-pool", r(T_AP, b.agent_pool(enableEncryptionAtHost=False)))
_eks = r(T_EKS, b.eks_cluster(), name="prod")
ok("network-policy-enforced", "eks-vpc-cni", _eks, r(T_ADDON, {
    "addonName": "vpc-cni", "clusterName": "other",
    "configurationValues": json.dumps({"enableNetworkPolicy": "true"})}, name="cni", dependencies=(_eks.urn,)))
bad("network-policy-enforced", "eks-no-addon", _eks)
ok("network-policy-enforced", "gke-dataplane-v2", r(T_GKE, b.gke_cluster()))
bad("network-policy-enforced", "gke-legacy", r(T_GKE, b.gke_cluster(datapathProvider="LEGACY_DATAPATH")))
ok("network-policy-enforced", "aks-cilium", r(T_AKS, b.aks_cluster(
    networkProfile={"networkPolicy": None, "networkDataplane": "cilium"})))
bad("network-policy-enforced", "aks-none", r(T_AKS, b.aks_cluster(networkProfile={"networkPolicy": None})))

# --- keys
ok("kms-key-rotation", "aws", r(T_KMS, b.kms_key()))
ok("kms-key-rotation", "gcp-90d", r(T_GKEY, b.gcp_key()))
ok("kms-key-rotation", "azure-policy", r(T_KVK, b.vault_key()))
bad("kms-key-rotation", "aws-off", r(T_KMS, b.kms_key(enableKeyRotation=False)))
bad("kms-key-rotation", "gcp-1y", r(T_GKEY, b.gcp_key(rotationPeriod="31536000s")))
bad("kms-key-rotation", "azure-none", r(T_KVK, b.vault_key(properties={"rotationPolicy": None})))
ok("kms-deletion-protection", "aws-30d", r(T_KMS, b.kms_key()))
ok("kms-deletion-protection", "vault-purge-protection", r(T_KV, b.key_vault()))
bad("kms-deletion-protection", "aws-7d", r(T_KMS, b.kms_key(deletionWindowInDays=7)))
bad("kms-deletion-protection", "vault-no-purge-protection", r(T_KV, b.key_vault(
    properties={"enablePurgeProtection": None})))
ok("kms-policy-no-wildcard-principal", "named-root", r(T_KMS, b.kms_key()))
ok("kms-policy-no-wildcard-principal", "wildcard-with-condition", r(T_KMS, b.kms_key(
    policy=b.wildcard_policy(condition=True))))
bad("kms-policy-no-wildcard-principal", "wildcard", r(T_KMS, b.kms_key(policy=b.wildcard_policy())))
bad("kms-policy-no-wildcard-principal", "gcp-all-users", r(T_GIAM, {"cryptoKeyId": "k", "role": "r",
                                                                    "member": "allUsers"}))

# --- autoscaling
ok("nodepool-autoscaling-bounds", "eks", r(T_NG, b.nodegroup()))
ok("nodepool-autoscaling-bounds", "gke", r(T_GNP, b.gke_nodepool()))
ok("nodepool-autoscaling-bounds", "aks", r(T_AKS, b.aks_cluster()))
ok("nodepool-autoscaling-bounds", "dev-fixed-size-allowed", r(T_NG, b.nodegroup(
    scalingConfig={"minSize": 1, "desiredSize": 1, "maxSize": 1})), settings=DEV)
bad("nodepool-autoscaling-bounds", "prod-fixed-size", r(T_NG, b.nodegroup(
    scalingConfig={"minSize": 3, "desiredSize": 3, "maxSize": 3})))
bad("nodepool-autoscaling-bounds", "desired-above-max", r(T_NG, b.nodegroup(
    scalingConfig={"minSize": 1, "desiredSize": 9, "maxSize": 3})))
bad("nodepool-autoscaling-bounds", "gke-no-autoscaling", r(T_GNP, b.gke_nodepool(autoscaling=None, nodeCount=3)))
bad("nodepool-autoscaling-bounds", "aks-autoscaler-off", r(T_AP, b.agent_pool(enableAutoScaling=False)))
_dep = r(T_DEP, b.deployment(replicas=None), name="web")
ok("hpa-targets-existing-workload", "found", _dep, r(T_HPA, b.hpa(), name="web-hpa"), subject=1)
bad("hpa-targets-existing-workload", "typo", _dep, r(T_HPA, b.hpa(target="wbe"), name="web-hpa"), subject=1)
bad("hpa-targets-existing-workload", "other-namespace", _dep, r(T_HPA, b.merge(b.hpa(), {
    "metadata": {"namespace": "api"}}), name="web-hpa"), subject=1)
ok("hpa-min-replicas", "prod-3", r(T_HPA, b.hpa()))
ok("hpa-min-replicas", "dev-1", r(T_HPA, b.hpa(min_replicas=1)), settings=DEV)
bad("hpa-min-replicas", "prod-1", r(T_HPA, b.hpa(min_replicas=1)))
ok("hpa-no-static-replicas", "omitted", _dep, r(T_HPA, b.hpa(), name="web-hpa"))
ok("hpa-no-static-replicas", "ignored", r(T_DEP, b.deployment(), name="web", ignore_changes=("spec.replicas",)),
   r(T_HPA, b.hpa(), name="web-hpa"))
bad("hpa-no-static-replicas", "pinned", r(T_DEP, b.deployment(), name="web"), r(T_HPA, b.hpa(), name="web-hpa"))
ok("pdb-allows-disruption", "below-hpa-floor", _dep, r(T_HPA, b.hpa(min_replicas=3), name="h"),
   r(T_PDB, b.pdb(minAvailable=2), name="p"), subject=2)
bad("pdb-allows-disruption", "equals-hpa-floor", _dep, r(T_HPA, b.hpa(min_replicas=2), name="h"),
    r(T_PDB, b.pdb(minAvailable=2), name="p"), subject=2)
bad("pdb-allows-disruption", "max-unavailable-0", r(T_PDB, b.pdb(maxUnavailable=0), name="p"))
bad("pdb-allows-disruption", "min-available-100pct", r(T_PDB, b.pdb(minAvailable="100%"), name="p"))

# --- exposure
ok("service-no-public-exposure", "cluster-ip", r(T_SVC, b.service()))
ok("service-no-public-exposure", "internal-lb", r(T_SVC, b.service(spec={"type": "LoadBalancer"}, metadata={
    "annotations": {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}})))
ok("service-no-public-exposure", "allow-listed-lb", r(T_SVC, b.service(spec={"type": "LoadBalancer"})),
   settings=b.settings(public_load_balancers=("web/web",)))
bad("service-no-public-exposure", "public-lb", r(T_SVC, b.service(spec={"type": "LoadBalancer"})))
bad("service-no-public-exposure", "node-port", r(T_SVC, b.service(spec={"type": "NodePort"})))
bad("service-no-public-exposure", "external-ips", r(T_SVC, b.service(spec={"externalIPs": ["198.51.100.7"]})))
ok("no-host-namespaces", "plain", r(T_DEP, b.deployment()))
bad("no-host-namespaces", "host-network", r(T_DEP, b.deployment(pod={"hostNetwork": True})))
bad("no-host-namespaces", "cronjob-host-pid", r(T_CRON, {"metadata": {"namespace": "ops"}, "spec": {
    "schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": b.pod_spec(hostPID=True)}}}}}))

# --- labels and tags
ok("cloud-required-tags", "on-resource", r(T_EKS, b.eks_cluster()))
ok("cloud-required-tags", "provider-default-tags", r(T_EKS, b.eks_cluster(tags=None), provider_props={
    "defaultTags": {"tags": b.TAGS}}))
ok("cloud-required-tags", "gke-labels", r(T_GKE, b.gke_cluster()))
bad("cloud-required-tags", "missing-cost-center", r(T_EKS, b.eks_cluster() | {"tags": {"owner": "a", "env": "b"}}))
bad("cloud-required-tags", "gke-pool-unlabelled", r(T_GNP, b.gke_nodepool(nodeConfig={"resourceLabels": None})))
ok("k8s-recommended-labels", "all", r(T_DEP, b.deployment()))
bad("k8s-recommended-labels", "none", r(T_SVC, b.service(metadata={"labels": None})))

# --- workloads
ok("container-resources", "set", r(T_DEP, b.deployment()))
bad("container-resources", "no-limits", r(T_DEP, b.deployment(pod={"containers": [b.container(resources={
    "limits": None})]})))
bad("container-resources", "init-container", r(T_DEP, b.deployment(pod={"initContainers": [
    {"name": "migrate", "image": "ghcr.io/acme/migrate:1.0"}]})))
ok("container-probes", "both", r(T_DEP, b.deployment()))
bad("container-probes", "no-liveness", r(T_DEP, b.deployment(pod={"containers": [b.container(
    livenessProbe=None)]})))
ok("image-pinned", "tag", r(T_DEP, b.deployment()))
ok("image-pinned", "digest", r(T_DEP, b.deployment(pod={"containers": [b.container(
    image="ghcr.io/acme/web@sha256:" + "a" * 64)]})))
bad("image-pinned", "latest", r(T_DEP, b.deployment(pod={"containers": [b.container(image="nginx:latest")]})))
bad("image-pinned", "untagged", r(T_DEP, b.deployment(pod={"containers": [b.container(image="nginx")]})))
ok("no-privilege-escalation", "off", r(T_DEP, b.deployment()))
bad("no-privilege-escalation", "unset", r(T_DEP, b.deployment(pod={"containers": [b.container(
    securityContext={"allowPrivilegeEscalation": None})]})))
bad("no-privilege-escalation", "privileged", r(T_DEP, b.deployment(pod={"containers": [b.container(
    securityContext={"privileged": True})]})))
ok("run-as-non-root", "container", r(T_DEP, b.deployment()))
bad("run-as-non-root", "uid-0", r(T_DEP, b.deployment(pod={"containers": [b.container(
    securityContext={"runAsUser": 0})]})))
bad("run-as-non-root", "unset", r(T_DEP, b.deployment(pod={"securityContext": None, "containers": [b.container(
    securityContext={"runAsNonRoot": None})]})))
ok("readonly-root-filesystem", "on", r(T_DEP, b.deployment()))
bad("readonly-root-filesystem", "off", r(T_DEP, b.deployment(pod={"containers": [b.container(
    securityContext={"readOnlyRootFilesystem": False})]})))
ok("drop-capabilities-seccomp", "on", r(T_DEP, b.deployment()))
bad("drop-capabilities-seccomp", "keeps-caps", r(T_DEP, b.deployment(pod={"containers": [b.container(
    securityContext={"capabilities": {"drop": ["NET_RAW"]}})]})))
bad("drop-capabilities-seccomp", "unconfined", r(T_DEP, b.deployment(pod={
    "securityContext": {"seccompProfile": {"type": "Unconfined"}},
    "containers": [b.container(securityContext={"seccompProfile": None})]})))
ok("sa-token-no-automount", "pod", r(T_DEP, b.deployment()))
ok("sa-token-no-automount", "service-account", r(T_SA, {"metadata": {"namespace": "web"},
                                                         "automountServiceAccountToken": False}))
bad("sa-token-no-automount", "default", r(T_DEP, b.deployment(pod={"automountServiceAccountToken": None})))
ok("no-default-namespace", "explicit", r(T_DEP, b.deployment()))
ok("no-default-namespace", "provider-namespace", r(T_CM, {"data": {}}, provider_props={"namespace": "web"}))
bad("no-default-namespace", "omitted", r(T_CM, {"data": {}}))
bad("no-default-namespace", "default", r(T_SVC, b.service(metadata={"namespace": "default"})))
ok("secrets-not-in-env", "secret-ref", r(T_DEP, b.deployment(pod={"containers": [b.container(env=[
    {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
    {"name": "LOG_LEVEL", "value": "info"}])]})))
bad("secrets-not-in-env", "literal-password", r(T_DEP, b.deployment(pod={"containers": [b.container(env=[
    {"name": "DB_PASSWORD", "value": "hunter2"}])]})))
bad("secrets-not-in-env", "pulumi-secret", r(T_DEP, b.deployment(pod={"containers": [b.container(env=[
    {"name": "CONFIG", "value": "[secret]"}])]})))
ok("workload-ha", "prod", r(T_DEP, b.deployment()), r(T_PDB, b.pdb(), name="p"))
bad("workload-ha", "single-replica", r(T_DEP, b.deployment(replicas=1)), r(T_PDB, b.pdb(), name="p"))
bad("workload-ha", "no-pdb-no-spread", r(T_DEP, b.deployment(pod={"topologySpreadConstraints": None})))

# --- delivery
ok("deployment-selector-matches-template", "subset", r(T_DEP, b.deployment()))
bad("deployment-selector-matches-template", "mismatch", r(T_DEP, b.deployment(spec={"selector": {
    "matchLabels": {"app.kubernetes.io/name": "api"}}})))
bad("deployment-selector-matches-template", "empty", r(T_DEP, b.deployment(spec={"selector": None})))
_blue = r(T_DEP, b.deployment("web-blue", b.app_labels(color="blue")), name="web-blue")
_green = r(T_DEP, b.deployment("web-green", b.app_labels(color="green")), name="web-green")
ok("service-selects-one-color", "active-blue", _blue, _green,
   r(T_SVC, b.service(selector=b.app_labels(color="blue")), name="web"), subject=2)
bad("service-selects-one-color", "both", _blue, _green, r(T_SVC, b.service(), name="web"), subject=2)
ok("canary-weights-valid", "route-90-10", r(T_ROUTE, b.httproute(90, 10)))
ok("canary-weights-valid", "single-backend", r(T_ROUTE, b.httproute(None)))
bad("canary-weights-valid", "route-sum-110", r(T_ROUTE, b.httproute(100, 10)))
bad("canary-weights-valid", "negative", r(T_ROUTE, b.httproute(-10, 110)))
bad("canary-weights-valid", "istio-sum-90", r(T_VS, {"metadata": {"namespace": "web"}, "spec": {"http": [{"route": [
    {"destination": {"host": "web", "subset": "stable"}, "weight": 80},
    {"destination": {"host": "web", "subset": "canary"}, "weight": 10}]}]}}))
ok("canary-weights-valid", "nginx-25", r(T_ING, {"metadata": {"namespace": "web", "annotations": {
    "nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-weight": "25"}}}))
bad("canary-weights-valid", "nginx-150", r(T_ING, {"metadata": {"namespace": "web", "annotations": {
    "nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-weight": "150"}}}))
_stable = r(T_DEP, b.deployment("web", b.app_labels(track="stable")), name="web-stable")
_canary = r(T_DEP, b.deployment("web-canary", b.app_labels(track="canary"), replicas=1, pod={"containers": [
    b.container(image="ghcr.io/acme/web:1.5.0")]}), name="web-canary")
ok("canary-stable-parity", "image-only", _stable, _canary, subject=1)
bad("canary-stable-parity", "different-resources", _stable, r(T_DEP, b.deployment(
    "web-canary", b.app_labels(track="canary"), pod={"containers": [b.container(
        resources={"limits": {"memory": "1Gi"}})]}), name="web-canary"), subject=1)
ok("rollout-strategy-safe", "rolling", r(T_DEP, b.deployment()))
bad("rollout-strategy-safe", "recreate", r(T_DEP, b.deployment(spec={"strategy": {"type": "Recreate",
                                                                                  "rollingUpdate": None}})))
bad("rollout-strategy-safe", "no-history", r(T_DEP, b.deployment(spec={"revisionHistoryLimit": 0})))

# --- cost
_pool = r(T_NG, b.nodegroup(), name="workload")  # 6 x m6i.large x 730 h = ~$420/month
ok("cost-budget", "within-80pct", _pool, subject=None, settings=b.settings(monthly_budget_usd=1000))
bad("cost-budget", "above-80pct", _pool, subject=None, settings=b.settings(monthly_budget_usd=500))
bad("cost-budget", "gke-regional-pool-counts-zones", r(T_GNP, b.gke_nodepool(), name="pool"), subject=None,
    settings=b.settings(monthly_budget_usd=1000))  # 3/zone x 3 zones x e2-standard-4 = ~$880 > $800
ok("cost-budget", "aks", r(T_AKS, b.aks_cluster()), subject=None, settings=b.settings(monthly_budget_usd=1000))

# --- ECS task definitions (image-pinned and secrets-not-in-env apply as to pods)
T_ECS = "aws:ecs/taskDefinition:TaskDefinition"


def _ecs(*containers: dict[str, Any]) -> dict[str, Any]:
    return {"family": "web", "containerDefinitions": json.dumps(list(containers)), "tags": b.TAGS}


ok("image-pinned", "ecs-tag", r(T_ECS, _ecs({"name": "web", "image": "public.ecr.aws/nginx/nginx:1.27.3"})))
bad("image-pinned", "ecs-latest", r(T_ECS, _ecs({"name": "web", "image": "nginx:latest"})))
bad("image-pinned", "ecs-untagged", r(T_ECS, _ecs({"name": "web", "image": "nginx"})))
ok("secrets-not-in-env", "ecs-secrets-list", r(T_ECS, _ecs({"name": "web", "image": "nginx:1.27", "secrets": [
    {"name": "DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:us-east-1:1:secret:db"}],
    "environment": [{"name": "LOG_LEVEL", "value": "info"}]})))
bad("secrets-not-in-env", "ecs-env-password", r(T_ECS, _ecs({"name": "web", "image": "nginx:1.27", "environment": [
    {"name": "DB_PASSWORD", "value": "hunter2"}]})))
bad("secrets-not-in-env", "ecs-env-masked-secret", r(T_ECS, _ecs(
    {"name": "web", "image": "nginx:1.27", "environment": [{"name": "DSN", "value": "[secret]"}]})))

# --- secrets in plain inputs
T_RDS = "aws:rds/instance:Instance"
ok("secrets-plain-input", "pulumi-secret", r(T_RDS, {"engine": "postgres", "password": "[secret]", "tags": b.TAGS}))
ok("secrets-plain-input", "secret-reference", r(T_RDS, {"engine": "postgres", "masterUserSecretKmsKeyId": "k",
                                                        "masterPassword": "arn:aws:secretsmanager:eu:1:secret:x"}))
bad("secrets-plain-input", "plain-password", r(T_RDS, {"engine": "postgres", "password": "hunter2"}))
bad("secrets-plain-input", "nested-private-key", r("gcp:compute/instance:Instance", {"bootDisk": {
    "diskEncryptionKeyRaw": "x", "sourceImageEncryptionKey": {"rsaEncryptedKey": "y"}},
    "metadata": {"ssh-keys": "plain"}, "serviceAccount": {"privateKey": "-----BEGIN PRIVATE KEY-----"}}))

# --- stateful resources and opaque components
ok("stateful-protect", "protected-db", r(T_RDS, {"engine": "postgres"}, protect=True))
bad("stateful-protect", "unprotected-bucket", r("aws:s3/bucket:Bucket", {"bucket": "orders"}))
bad("stateful-protect", "unprotected-gke", r(T_GKE, b.gke_cluster()))
ok("opaque-component", "with-children", r("gantry:aws:EksCluster", {}, name="c", custom=False),
   r(T_EKS, b.eks_cluster(), parent=b.urn("gantry:aws:EksCluster", "c")))
bad("opaque-component", "multi-language", r("eks:index:Cluster", {}, name="eks", custom=False))
