"""The pack as data: every rule's id, kind, default level, description, remediation and function.

Read by the offline engine (``gantry check``), the CrossGuard adapter and the reports; the meta-tests
check that this list and the rule modules agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from policies.model import Level, PolicyId, ResourceCheck, StackCheck
from policies.rules import (
    autoscaling,
    aws,
    azure,
    clusters,
    cost,
    delivery,
    exposure,
    gcp,
    keys,
    labels,
    secrets,
    stateful,
    workloads,
)

PACK_NAME = "gantry"
WAIVER_EXPIRED = PolicyId("waiver-expired")
WAIVER_INVALID = PolicyId("waiver-invalid")
"""Findings the engine raises about waivers themselves; always mandatory."""


class Category(StrEnum):
    AWS = "clusters-aws"
    GCP = "clusters-gcp"
    AZURE = "clusters-azure"
    CLUSTERS = "clusters"
    KEYS = "keys"
    AUTOSCALING = "autoscaling"
    EXPOSURE = "exposure"
    LABELS = "labels"
    WORKLOADS = "workloads"
    DELIVERY = "delivery"
    COST = "cost"
    SECRETS = "secrets"
    STATEFUL = "stateful"


@dataclass(frozen=True, slots=True)
class Rule:
    """One policy: exactly one of ``resource`` or ``stack`` is set."""

    id: PolicyId
    category: Category
    level: Level
    description: str
    remediation: str
    resource: ResourceCheck | None = None
    stack: StackCheck | None = None

    @property
    def kind(self) -> str:
        return "resource" if self.resource is not None else "stack"

    @property
    def function_name(self) -> str:
        fn = self.resource or self.stack
        return getattr(fn, "__name__", "?")


M, A = Level.MANDATORY, Level.ADVISORY


def _r(id_: str, cat: Category, level: Level, fn: ResourceCheck, desc: str, fix: str) -> Rule:
    return Rule(PolicyId(id_), cat, level, desc, fix, resource=fn)


def _s(id_: str, cat: Category, level: Level, fn: StackCheck, desc: str, fix: str) -> Rule:
    return Rule(PolicyId(id_), cat, level, desc, fix, stack=fn)


RULES: tuple[Rule, ...] = (
    # clusters, AWS
    _r("eks-endpoint-private", Category.AWS, M, aws.eks_endpoint_private,
       "The EKS API endpoint is private, or public only to CIDRs other than 0.0.0.0/0.",
       "Set vpcConfig.endpointPublicAccess false and endpointPrivateAccess true (Gantry: endpoint.publicAccess "
       "false), or list publicAccessCidrs."),
    _r("eks-secrets-encryption", Category.AWS, M, aws.eks_secrets_encryption,
       "Kubernetes secrets are envelope-encrypted with a KMS key.",
       "Set encryptionConfig {resources: ['secrets'], provider: {keyArn}} (Gantry: encryption.createKey)."),
    _r("eks-control-plane-logging", Category.AWS, M, aws.eks_control_plane_logging,
       "All five EKS control-plane log types are on.",
       "Set enabledClusterLogTypes to api, audit, authenticator, controllerManager and scheduler."),
    _r("eks-nodegroup-no-open-ssh", Category.AWS, M, aws.eks_nodegroup_no_open_ssh,
       "No node group or security group allows SSH from 0.0.0.0/0.",
       "Drop remoteAccess (use SSM Session Manager) or restrict it with sourceSecurityGroupIds."),
    _r("node-imdsv2-required", Category.AWS, M, aws.node_imdsv2_required,
       "Nodes require IMDSv2 tokens with a hop limit of at most 2.",
       "Use a launch template with metadataOptions {httpTokens: 'required', httpPutResponseHopLimit: 2}."),
    # clusters, GCP
    _r("gke-private-cluster", Category.GCP, M, gcp.gke_private_cluster,
       "GKE nodes are private (no public IPs).",
       "Set privateClusterConfig.enablePrivateNodes true."),
    _r("gke-master-authorized-networks", Category.GCP, M, gcp.gke_master_authorized_networks,
       "The GKE control plane is private or restricted to authorized networks.",
       "Set privateClusterConfig.enablePrivateEndpoint true or masterAuthorizedNetworksConfig.cidrBlocks."),
    _r("gke-no-legacy-auth", Category.GCP, M, gcp.gke_no_legacy_auth,
       "Legacy ABAC, basic auth and client certificates are off.",
       "Set enableLegacyAbac false and drop masterAuth credentials and client certificates."),
    _r("gke-node-hardening", Category.GCP, M, gcp.gke_node_hardening,
       "Workload Identity, shielded nodes, and the legacy metadata endpoints off.",
       "Set workloadIdentityConfig.workloadPool, enableShieldedNodes, and nodeConfig.workloadMetadataConfig "
       "mode GKE_METADATA on every pool."),
    _r("gke-secrets-encryption-cmek", Category.GCP, M, gcp.gke_secrets_encryption_cmek,
       "Application-layer secrets encryption with a customer-managed Cloud KMS key.",
       "Set databaseEncryption {state: 'ENCRYPTED', keyName: <CryptoKey id>}."),
    _r("gke-logging-monitoring", Category.GCP, M, gcp.gke_logging_monitoring,
       "Cloud Logging (system and API server) and Cloud Monitoring are on.",
       "Leave loggingService/monitoringService at their defaults and include SYSTEM_COMPONENTS and APISERVER."),
    # clusters, Azure
    _r("aks-private-or-authorized-ips", Category.AZURE, M, azure.aks_private_or_authorized_ips,
       "The AKS API server is private or limited to authorized IP ranges.",
       "Set apiServerAccessProfile.enablePrivateCluster true or authorizedIPRanges."),
    _r("aks-rbac-no-local-accounts", Category.AZURE, M, azure.aks_rbac_no_local_accounts,
       "Kubernetes RBAC with Entra ID, and local accounts disabled.",
       "Set enableRBAC true, aadProfile.managed true and disableLocalAccounts true."),
    _r("aks-policy-addon", Category.AZURE, M, azure.aks_policy_addon,
       "The Azure Policy add-on is on.",
       "Set addonProfiles.azurepolicy.enabled true."),
    _r("aks-monitoring", Category.AZURE, M, azure.aks_monitoring,
       "Container insights or managed Prometheus is on.",
       "Enable addonProfiles.omsagent with a Log Analytics workspace, or azureMonitorProfile.metrics."),
    # clusters, all clouds
    _r("k8s-version-supported", Category.CLUSTERS, M, clusters.k8s_version_supported,
       "Clusters and pools run a Kubernetes minor version on the configured supported list.",
       "Pin the version to one listed in gantry:policy.supportedVersions or the policy config."),
    _r("node-disk-encryption", Category.CLUSTERS, M, clusters.node_disk_encryption,
       "Node disks are encrypted with a customer-managed key.",
       "EKS: launch template with encrypted EBS; GKE: nodeConfig.bootDiskKmsKey; AKS: diskEncryptionSetID."),
    _s("network-policy-enforced", Category.CLUSTERS, M, clusters.network_policy_enforced,
       "The cluster enforces NetworkPolicy (Dataplane V2 counts).",
       "EKS: vpc-cni addon with enableNetworkPolicy; GKE: ADVANCED_DATAPATH; AKS: networkPolicy azure/cilium."),
    # keys
    _r("kms-key-rotation", Category.KEYS, M, keys.kms_key_rotation,
       "Keys rotate: AWS rotation on, GCP at least every maxDays (90), an Azure rotation policy.",
       "Set enableKeyRotation, rotationPeriod '7776000s', or a Key Vault rotationPolicy with a rotate action."),
    _r("kms-deletion-protection", Category.KEYS, M, keys.kms_deletion_protection,
       "Keys cannot be destroyed quickly: long deletion windows, Key Vault purge protection.",
       "Keep deletionWindowInDays/destroyScheduledDuration at 30 days; set enablePurgeProtection."),
    _r("kms-policy-no-wildcard-principal", Category.KEYS, M, keys.kms_policy_no_wildcard_principal,
       "No key policy or key IAM grants to everyone.",
       "Name principals explicitly, or add a Condition to statements with Principal '*'."),
    # autoscaling
    _r("nodepool-autoscaling-bounds", Category.AUTOSCALING, M, autoscaling.nodepool_autoscaling_bounds,
       "Node pools autoscale with 1 <= min <= desired <= max, and max > min in prod.",
       "Set the pool's min, desired and max sizes (Gantry: nodePools[].minSize/desiredSize/maxSize)."),
    _s("hpa-targets-existing-workload", Category.AUTOSCALING, M, autoscaling.hpa_targets_existing_workload,
       "Every HPA scales a Deployment or StatefulSet that exists in the stack.",
       "Point spec.scaleTargetRef at the workload's kind and metadata.name in the same namespace."),
    _r("hpa-min-replicas", Category.AUTOSCALING, A, autoscaling.hpa_min_replicas,
       "HPAs keep at least 2 replicas in prod and can grow.",
       "Set spec.minReplicas >= 2 and spec.maxReplicas > minReplicas."),
    _s("hpa-no-static-replicas", Category.AUTOSCALING, A, autoscaling.hpa_no_static_replicas,
       "A workload scaled by an HPA does not pin spec.replicas.",
       "Omit spec.replicas, or add it to the resource's ignoreChanges."),
    _s("pdb-allows-disruption", Category.AUTOSCALING, M, autoscaling.pdb_allows_disruption,
       "PodDisruptionBudgets leave room to evict at least one pod.",
       "Keep minAvailable below the replica floor (or use maxUnavailable >= 1)."),
    # exposure
    _r("service-no-public-exposure", Category.EXPOSURE, M, exposure.service_no_public_exposure,
       "No NodePort or externalIPs; LoadBalancers are internal unless allow-listed.",
       "Use ClusterIP behind the gateway, add the cloud's internal-LB annotation, or allow-list the Service."),
    _r("no-host-namespaces", Category.EXPOSURE, M, exposure.no_host_namespaces,
       "Pods do not share the node's network, PID or IPC namespaces.",
       "Remove hostNetwork, hostPID and hostIPC."),
    # labels and tags
    _r("cloud-required-tags", Category.LABELS, M, labels.cloud_required_tags,
       "Cloud resources carry the owner, env and cost-center tags (provider defaults count).",
       "Set gantry:tags, the provider's defaultTags/defaultLabels, or the resource's tags."),
    _r("k8s-recommended-labels", Category.LABELS, A, labels.k8s_recommended_labels,
       "Workloads and Services carry the app.kubernetes.io recommended labels.",
       "Add app.kubernetes.io/name, instance and managed-by to metadata.labels."),
    # workloads
    _r("container-resources", Category.WORKLOADS, M, workloads.container_resources,
       "Every container requests CPU and memory and has a memory limit.",
       "Set resources.requests.cpu, requests.memory and limits.memory."),
    _r("container-probes", Category.WORKLOADS, A, workloads.container_probes,
       "Long-running containers have readiness and liveness probes.",
       "Add readinessProbe and livenessProbe (different endpoints)."),
    _r("image-pinned", Category.WORKLOADS, M, workloads.image_pinned,
       "Images (pods and ECS task definitions) are pinned by a tag other than latest or by a digest.",
       "Use image:1.2.3 or image@sha256:..."),
    _r("no-privilege-escalation", Category.WORKLOADS, M, workloads.no_privilege_escalation,
       "Containers are not privileged and cannot escalate privileges.",
       "Set securityContext.allowPrivilegeEscalation false and drop privileged."),
    _r("run-as-non-root", Category.WORKLOADS, M, workloads.run_as_non_root,
       "Containers run as a non-root user.",
       "Set securityContext.runAsNonRoot true (pod or container) and a non-zero runAsUser."),
    _r("readonly-root-filesystem", Category.WORKLOADS, A, workloads.readonly_root_filesystem,
       "Container root filesystems are read-only.",
       "Set securityContext.readOnlyRootFilesystem true and mount emptyDir for scratch space."),
    _r("drop-capabilities-seccomp", Category.WORKLOADS, A, workloads.drop_capabilities_seccomp,
       "Containers drop ALL capabilities and use the RuntimeDefault seccomp profile.",
       "Set capabilities.drop ['ALL'] and seccompProfile.type RuntimeDefault."),
    _r("sa-token-no-automount", Category.WORKLOADS, A, workloads.sa_token_no_automount,
       "Service-account tokens are not mounted unless needed.",
       "Set automountServiceAccountToken false on the pod spec or ServiceAccount."),
    _r("no-default-namespace", Category.WORKLOADS, M, workloads.no_default_namespace,
       "Namespaced objects live in an explicit namespace other than default.",
       "Set metadata.namespace (or the provider's namespace)."),
    _r("secrets-not-in-env", Category.WORKLOADS, M, workloads.secrets_not_in_env,
       "Secrets are not passed as literal environment values (pods and ECS task definitions).",
       "Use env[].valueFrom.secretKeyRef or a mounted Secret; on ECS, containerDefinitions[].secrets."),
    _s("workload-ha", Category.WORKLOADS, A, workloads.workload_ha,
       "Prod workloads run 2+ replicas with a PDB and topology spread.",
       "Set replicas (or HPA minReplicas) >= 2, add a PDB and topologySpreadConstraints."),
    # delivery
    _r("deployment-selector-matches-template", Category.DELIVERY, M, delivery.deployment_selector_matches_template,
       "A workload's selector is non-empty and matches its pod-template labels.",
       "Make spec.selector.matchLabels a subset of spec.template.metadata.labels."),
    _s("service-selects-one-color", Category.DELIVERY, M, delivery.service_selects_one_color,
       "A Service in front of blue/green Deployments selects exactly one color.",
       "Add the color label to the Service selector."),
    _r("canary-weights-valid", Category.DELIVERY, M, delivery.canary_weights_valid,
       "Traffic weights are integers 0..100 that sum to 100.",
       "Fix the HTTPRoute backendRefs, VirtualService route or nginx canary-weight."),
    _s("canary-stable-parity", Category.DELIVERY, A, delivery.canary_stable_parity,
       "A canary matches its stable Deployment except for the image.",
       "Build both Deployments from one template (Gantry's CanaryService does)."),
    _r("rollout-strategy-safe", Category.DELIVERY, M, delivery.rollout_strategy_safe,
       "Rolling updates keep pods serving and keep revision history for undo.",
       "Use RollingUpdate with maxUnavailable below the replica count and revisionHistoryLimit >= 1."),
    # secrets and stateful resources (what Checkov cannot see: Pulumi secrets, protect, components)
    _r("secrets-plain-input", Category.SECRETS, M, secrets.secrets_plain_input,
       "Inputs named like secrets (password, secret, token, privateKey...) hold Pulumi secrets, not plain text.",
       "Read the value with config.require_secret or wrap it in pulumi.Output.secret."),
    _r("stateful-protect", Category.STATEFUL, M, stateful.stateful_protect,
       "Databases, buckets, keys and clusters are protected from deletion in prod.",
       "Pass ResourceOptions(protect=True) to the resource in prod."),
    _s("opaque-component", Category.STATEFUL, A, stateful.opaque_component,
       "Components whose children another language's provider registers are flagged, not passed silently.",
       "Check the stack with `pulumi preview --policy-pack policies`, or build the resources in Python."),
    # cost
    _s("cost-budget", Category.COST, M, cost.cost_budget,
       "Node pools at max size stay within 80% of the stack's monthly budget.",
       "Lower pool max sizes or machine types, or raise gantry:policy.monthlyBudgetUsd."),
)

BY_ID: dict[str, Rule] = {r.id: r for r in RULES}


def rule(policy: str) -> Rule:
    """Look a rule up, with an error listing the valid ids."""
    if policy not in BY_ID:
        raise KeyError(f"policy must be one of the pack's ids ({', '.join(sorted(BY_ID))}), but {policy!r} was given")
    return BY_ID[policy]
