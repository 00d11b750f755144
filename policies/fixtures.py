"""Fixture builders for rule modules: secure engine-form props per resource type, with ``**overrides`` for variants.

Each rule module's ``fixtures()`` builds its compliant and non-compliant examples from these (the meta-tests
run every one); imported lazily, so the pack never loads it at start-up.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from policies.model import Resource, Settings, TierName
from policies.rule import Fixture

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
T_ECS = "aws:ecs/taskDefinition:TaskDefinition"
T_RDS = "aws:rds/instance:Instance"
T_ECS = "aws:ecs/taskDefinition:TaskDefinition"
T_RDS = "aws:rds/instance:Instance"

TAGS = {"owner": "platform-team", "env": "prod", "cost-center": "cc-1001"}
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:test::proj::{type_}::{name}"


def res(type_: str, props: Mapping[str, Any], name: str = "r", **kw: Any) -> Resource:
    return Resource(urn=kw.pop("urn", urn(type_, name)), type=type_, name=name, props=props, **kw)


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge; a value of ``None`` deletes the key (to model an omitted input)."""
    out = copy.deepcopy(dict(base))
    for k, v in overrides.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def settings(tier: TierName = TierName.PROD, *, supported_versions: tuple[str, ...] = ("1.32", "1.33"),
             monthly_budget_usd: float | None = None, public_load_balancers: tuple[str, ...] = (),
             prices: Mapping[str, float] | None = None, options: Mapping[str, object] | None = None) -> Settings:
    """Settings as ``gantry check`` builds them, from the defaults and a stack's ``gantry:policy`` inputs;
    ``options`` replaces rules' options outright (by policy id)."""
    from policies.config import PolicyConfig, StackPolicy, build_settings

    stack = StackPolicy(monthly_budget_usd=monthly_budget_usd, supported_versions=supported_versions,
                        public_load_balancers=public_load_balancers or None)
    built = build_settings(PolicyConfig(), tier, stack, prices=prices if prices is not None else {
        "m6i.large": 0.096, "e2-standard-4": 0.134, "Standard_D4s_v5": 0.192})
    return replace(built, options={**built.options, **(options or {})})


# --------------------------------------------------------------------------- AWS


def eks_cluster(**o: Any) -> dict[str, Any]:
    return merge({
        "name": "prod", "version": "1.33", "roleArn": "arn:aws:iam::1:role/eks",
        "vpcConfig": {"subnetIds": ["subnet-a", "subnet-b"], "endpointPublicAccess": False,
                      "endpointPrivateAccess": True},
        "encryptionConfig": {"resources": ["secrets"], "provider": {"keyArn": KEY_ARN}},
        "enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
        "tags": TAGS,
    }, o)


def nodegroup(**o: Any) -> dict[str, Any]:
    return merge({
        "clusterName": "prod", "nodeRoleArn": "arn:aws:iam::1:role/node", "subnetIds": ["subnet-a"],
        "instanceTypes": ["m6i.large"], "scalingConfig": {"minSize": 3.0, "desiredSize": 3.0, "maxSize": 6.0},
        "launchTemplate": {"id": "lt-1", "version": "1"}, "version": "1.33", "tags": TAGS,
    }, o)


def launch_template(**o: Any) -> dict[str, Any]:
    return merge({
        "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 2, "httpEndpoint": "enabled"},
        "blockDeviceMappings": [{"deviceName": "/dev/xvda",
                                 "ebs": {"encrypted": "true", "kmsKeyId": KEY_ARN, "volumeSize": 50}}],
        "tags": TAGS,
    }, o)


def kms_key(**o: Any) -> dict[str, Any]:
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
         "Action": "kms:*", "Resource": "*"}]}
    return merge({"enableKeyRotation": True, "deletionWindowInDays": 30, "policy": json.dumps(policy),
                  "tags": TAGS}, o)


def wildcard_policy(condition: bool = False) -> str:
    st: dict[str, Any] = {"Sid": "Everyone", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt",
                          "Resource": "*"}
    if condition:
        st["Condition"] = {"StringEquals": {"kms:CallerAccount": "123456789012"}}
    return json.dumps({"Version": "2012-10-17", "Statement": [st]})


# --------------------------------------------------------------------------- GCP


def gke_cluster(**o: Any) -> dict[str, Any]:
    return merge({
        "name": "prod-gke", "location": "europe-west1", "minMasterVersion": "1.33",
        "releaseChannel": {"channel": "REGULAR"}, "removeDefaultNodePool": True, "initialNodeCount": 1,
        "privateClusterConfig": {"enablePrivateNodes": True, "enablePrivateEndpoint": True,
                                 "masterIpv4CidrBlock": "172.16.0.0/28"},
        "masterAuthorizedNetworksConfig": {"cidrBlocks": [{"cidrBlock": "10.40.0.0/16", "displayName": "vpc"}]},
        "workloadIdentityConfig": {"workloadPool": "proj.svc.id.goog"},
        "enableShieldedNodes": True,
        "databaseEncryption": {"state": "ENCRYPTED", "keyName": "projects/p/locations/l/keyRings/r/cryptoKeys/k"},
        "datapathProvider": "ADVANCED_DATAPATH",
        "loggingConfig": {"enableComponents": ["SYSTEM_COMPONENTS", "APISERVER", "WORKLOADS"]},
        "monitoringConfig": {"enableComponents": ["SYSTEM_COMPONENTS"]},
        "resourceLabels": TAGS,
    }, o)


def gke_nodepool(**o: Any) -> dict[str, Any]:
    return merge({
        "cluster": "prod-gke", "location": "europe-west1", "initialNodeCount": 1,
        "autoscaling": {"minNodeCount": 1, "maxNodeCount": 3},
        "nodeConfig": {"machineType": "e2-standard-4", "bootDiskKmsKey": "projects/p/.../cryptoKeys/disk",
                       "workloadMetadataConfig": {"mode": "GKE_METADATA"},
                       "shieldedInstanceConfig": {"enableSecureBoot": True, "enableIntegrityMonitoring": True},
                       "resourceLabels": TAGS},
    }, o)


def gcp_key(**o: Any) -> dict[str, Any]:
    return merge({"keyRing": "ring", "rotationPeriod": "7776000s", "labels": TAGS}, o)


# --------------------------------------------------------------------------- Azure


def aks_cluster(**o: Any) -> dict[str, Any]:
    return merge({
        "resourceGroupName": "rg", "kubernetesVersion": "1.33", "dnsPrefix": "prod",
        "apiServerAccessProfile": {"enablePrivateCluster": True},
        "enableRBAC": True, "disableLocalAccounts": True, "aadProfile": {"managed": True, "enableAzureRBAC": True},
        "addonProfiles": {"azurepolicy": {"enabled": True}, "omsagent": {"enabled": True, "config": {
            "logAnalyticsWorkspaceResourceID": "/subscriptions/s/workspaces/w"}}},
        "networkProfile": {"networkPlugin": "azure", "networkPolicy": "azure"},
        "diskEncryptionSetID": "/subscriptions/s/diskEncryptionSets/des",
        "agentPoolProfiles": [{"name": "system", "mode": "System", "vmSize": "Standard_D4s_v5",
                               "enableAutoScaling": True, "minCount": 3, "count": 3, "maxCount": 5,
                               "enableEncryptionAtHost": True}],
        "tags": TAGS,
    }, o)


def agent_pool(**o: Any) -> dict[str, Any]:
    return merge({"resourceName": "aks", "vmSize": "Standard_D4s_v5", "enableAutoScaling": True, "minCount": 2,
                  "count": 2, "maxCount": 4, "enableEncryptionAtHost": True, "orchestratorVersion": "1.33",
                  "tags": TAGS}, o)


def key_vault(**o: Any) -> dict[str, Any]:
    return merge({"resourceGroupName": "rg", "properties": {
        "tenantId": "t", "sku": {"family": "A", "name": "premium"}, "enableSoftDelete": True,
        "enablePurgeProtection": True, "enableRbacAuthorization": True}, "tags": TAGS}, o)


def vault_key(**o: Any) -> dict[str, Any]:
    return merge({"vaultName": "kv", "properties": {"kty": "RSA", "rotationPolicy": {"lifetimeActions": [
        {"action": {"type": "rotate"}, "trigger": {"timeAfterCreate": "P90D"}}]}}}, o)


# --------------------------------------------------------------------------- Kubernetes


def app_labels(app: str = "web", **extra: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": app,
            "app.kubernetes.io/managed-by": "gantry", **extra}


def container(**o: Any) -> dict[str, Any]:
    return merge({
        "name": "app", "image": "ghcr.io/acme/web:1.4.0", "ports": [{"containerPort": 8080}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                            "runAsUser": 10001, "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
    }, o)


def pod_spec(**o: Any) -> dict[str, Any]:
    containers = o.pop("containers", None) or [container()]
    return merge({
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                       "whenUnsatisfiable": "ScheduleAnyway"}],
        "containers": containers,
    }, o)


def deployment(name: str = "web", labels: Mapping[str, str] | None = None, replicas: int | None = 3,
               pod: Mapping[str, Any] | None = None, spec: Mapping[str, Any] | None = None,
               **o: Any) -> dict[str, Any]:
    """``pod`` overrides the pod spec, ``spec`` the Deployment spec, ``o`` the top level."""
    lbl = dict(labels or app_labels())
    body: dict[str, Any] = {
        "selector": {"matchLabels": lbl},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": {"metadata": {"labels": lbl}, "spec": pod_spec(**(dict(pod or {})))},
    }
    if replicas is not None:
        body["replicas"] = float(replicas)  # engine form: numbers are floats
    return merge({"metadata": {"name": name, "namespace": "web", "labels": lbl}, "spec": merge(body, spec or {})}, o)


def service(name: str = "web", selector: Mapping[str, str] | None = None, **o: Any) -> dict[str, Any]:
    return merge({"metadata": {"name": name, "namespace": "web", "labels": app_labels()},
                  "spec": {"type": "ClusterIP", "selector": dict(selector or app_labels()),
                           "ports": [{"port": 80, "targetPort": 8080}]}}, o)


def pdb(selector: Mapping[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"selector": {"matchLabels": dict(selector or app_labels())}}
    body.update(spec or {"minAvailable": 1})
    return {"metadata": {"name": "web", "namespace": "web"}, "spec": body}


def hpa(target: str = "web", kind: str = "Deployment", min_replicas: int = 3, max_replicas: int = 10) -> dict[str, Any]:
    return {"metadata": {"name": target, "namespace": "web"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target},
                     "minReplicas": float(min_replicas), "maxReplicas": float(max_replicas)}}


def httproute(*weights: int | None) -> dict[str, Any]:
    refs = []
    for i, w in enumerate(weights):
        ref: dict[str, Any] = {"name": f"web-{i}", "port": 80}
        if w is not None:
            ref["weight"] = w
        refs.append(ref)
    return {"metadata": {"name": "web", "namespace": "web"},
            "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": refs}]}}


# --------------------------------------------------------------------------- fixtures


def _fixture(compliant: bool, label: str, resources: tuple[Resource, ...], subject: str | int | None,
             settings: Settings | None) -> Fixture:
    subj = resources[subject].urn if isinstance(subject, int) else subject
    return Fixture(label, compliant, resources, subj, settings or _DEFAULT)


def ok(label: str, *resources: Resource, subject: str | int | None = 0, settings: Settings | None = None) -> Fixture:
    """A compliant example; ``subject`` is the index (or URN) of the resource judged, None for the stack."""
    return _fixture(True, label, resources, subject, settings)


def bad(label: str, *resources: Resource, subject: str | int | None = 0, settings: Settings | None = None) -> Fixture:
    """A non-compliant example."""
    return _fixture(False, label, resources, subject, settings)


def ecs_task(*containers: dict[str, Any]) -> dict[str, Any]:
    return {"family": "web", "containerDefinitions": json.dumps(list(containers)), "tags": TAGS}


_DEFAULT = settings()
DEV = settings(TierName.DEV)
