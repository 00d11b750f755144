"""Which Checkov checks block where, and the one table of Checkov checks that Gantry's own rules already judge.

Read by the bridge's findings, the policy config parser (check ids are configurable), the waiver parser
(check ids are waivable), ``gantry check --list-rules`` and the CrossGuard pack.
"""

from __future__ import annotations

import re

from policies.model import Level, TierName

BRIDGE_ID = "checkov"
"""The policy id under which the bridge is configured (``policy-config.json``) and served to CrossGuard."""

CHECK_ID = re.compile(r"^CKV2?_[A-Z0-9]+_\d+$")


def is_check_id(value: object) -> bool:
    return isinstance(value, str) and CHECK_ID.match(value) is not None


# Checkov checks that judge what a Gantry rule already judges: reported once, under Gantry's id, with the
# check id as an alias. Gantry's rule is the authority (it knows Pulumi's shapes and Gantry's tiers), so a
# check in this table never produces a finding of its own.
ALIASES: dict[str, str] = {
    # EKS
    "CKV_AWS_38": "eks-endpoint-private",
    "CKV_AWS_39": "eks-endpoint-private",
    "CKV_AWS_58": "eks-secrets-encryption",
    "CKV_AWS_37": "eks-control-plane-logging",
    "CKV_AWS_100": "eks-nodegroup-no-open-ssh",
    "CKV_AWS_79": "node-imdsv2-required",
    "CKV_AWS_341": "node-imdsv2-required",
    "CKV_AWS_339": "k8s-version-supported",
    # keys
    "CKV_AWS_7": "kms-key-rotation",
    "CKV_GCP_43": "kms-key-rotation",
    "CKV_AWS_33": "kms-policy-no-wildcard-principal",
    "CKV_GCP_82": "kms-deletion-protection",
    "CKV_AZURE_42": "kms-deletion-protection",
    "CKV_AZURE_110": "kms-deletion-protection",
    # GKE
    "CKV_GCP_25": "gke-private-cluster",
    "CKV_GCP_64": "gke-private-cluster",
    "CKV_GCP_18": "gke-master-authorized-networks",
    "CKV_GCP_20": "gke-master-authorized-networks",
    "CKV_GCP_7": "gke-no-legacy-auth",
    "CKV_GCP_13": "gke-no-legacy-auth",
    "CKV_GCP_71": "gke-node-hardening",
    "CKV_GCP_69": "gke-node-hardening",
    "CKV_GCP_1": "gke-logging-monitoring",
    "CKV_GCP_8": "gke-logging-monitoring",
    "CKV_GCP_12": "network-policy-enforced",
    # AKS
    "CKV_AZURE_6": "aks-private-or-authorized-ips",
    "CKV_AZURE_5": "aks-rbac-no-local-accounts",
    "CKV_AZURE_141": "aks-rbac-no-local-accounts",
    "CKV_AZURE_116": "aks-policy-addon",
    "CKV_AZURE_4": "aks-monitoring",
    "CKV_AZURE_7": "network-policy-enforced",
    # Kubernetes workloads
    "CKV_K8S_14": "image-pinned",
    "CKV_K8S_10": "container-resources",
    "CKV_K8S_12": "container-resources",
    "CKV_K8S_13": "container-resources",
    "CKV_K8S_8": "container-probes",
    "CKV_K8S_9": "container-probes",
    "CKV_K8S_16": "no-privilege-escalation",
    "CKV_K8S_20": "no-privilege-escalation",
    "CKV_K8S_23": "run-as-non-root",
    "CKV_K8S_22": "readonly-root-filesystem",
    "CKV_K8S_28": "drop-capabilities-seccomp",
    "CKV_K8S_37": "drop-capabilities-seccomp",
    "CKV_K8S_31": "drop-capabilities-seccomp",
    "CKV_K8S_38": "sa-token-no-automount",
    "CKV_K8S_21": "no-default-namespace",
    "CKV_K8S_17": "no-host-namespaces",
    "CKV_K8S_18": "no-host-namespaces",
    "CKV_K8S_19": "no-host-namespaces",
    # tags and labels
    "CKV_GCP_21": "cloud-required-tags",
}

# Mandatory in the prod tier, advisory elsewhere unless policy-config.json says otherwise: public exposure,
# encryption off, wildcard IAM, admin or database ports open to the internet, logging off on clusters.
MANDATORY_IN_PROD: frozenset[str] = frozenset({
    # public exposure
    "CKV_AWS_20", "CKV_AWS_57", "CKV_AWS_70", "CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55", "CKV_AWS_56", "CKV2_AWS_6",
    "CKV_AWS_17", "CKV_AWS_88", "CKV_AWS_333", "CKV_AWS_301", "CKV_AWS_302", "CKV2_AWS_43", "CKV_AWS_375",
    "CKV_GCP_28", "CKV_GCP_114", "CKV2_GCP_9", "CKV_GCP_112",
    "CKV_AZURE_59", "CKV_AZURE_34", "CKV_AZURE_35", "CKV_AZURE_189",
    # encryption off (at rest or in transit)
    "CKV_AWS_16", "CKV_AWS_19", "CKV_AWS_96", "CKV_AWS_42", "CKV_AWS_8", "CKV_AWS_3", "CKV_AWS_140",
    "CKV_AZURE_3", "CKV_AZURE_44", "CKV_AWS_103", "CKV_AWS_2",
    # wildcard IAM
    "CKV_AWS_62", "CKV_AWS_63", "CKV_AWS_355", "CKV2_AWS_40", "CKV_AWS_274", "CKV_AWS_286",
    "CKV_GCP_117", "CKV_GCP_42",
    # admin and database ports open to the internet
    "CKV_AWS_24", "CKV_AWS_25", "CKV_AWS_277", "CKV_AWS_260",
    "CKV_GCP_2", "CKV_GCP_3", "CKV_GCP_88", "CKV2_GCP_12",
    "CKV_AZURE_9", "CKV_AZURE_10",
    # logging off on clusters (the ones Gantry does not already judge)
    "CKV_AWS_224", "CKV_AWS_223",
})


def default_level(check_id: str, tier: TierName) -> Level:
    """The level before policy-config.json: curated checks block prod, everything else advises."""
    if tier is TierName.PROD and check_id in MANDATORY_IN_PROD:
        return Level.MANDATORY
    return Level.ADVISORY
