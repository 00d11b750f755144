"""Customer-managed disk encryption for one AKS cluster: Key Vault, rotated key, disk encryption set.

Built by ``components.azure.aks.AksCluster`` unless the spec supplies an existing disk encryption set.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import pulumi
import pulumi_azure_native as azure

from components.cluster_support import dig, text

ROLE_KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
ROLE_NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"
ROLE_READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"

_GANTRY_NAMESPACE = uuid.UUID("6f1c9b1e-4a8e-4d0b-9a3e-6c1d2b7f0a55")


def role_definition_id(subscription_id: str, role: str) -> str:
    return f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role}"


def assignment_name(*parts: str) -> str:
    """Role-assignment names must be GUIDs; derive them from stable names instead of random ones."""
    return str(uuid.uuid5(_GANTRY_NAMESPACE, "/".join(parts)))


def vault_name(cluster_name: str) -> str:
    """Key Vault names are 3-24 characters of letters, digits and single hyphens."""
    return f"kv-{cluster_name}"[:24].rstrip("-")


def expiry_days(rotation_days: int) -> int:
    """Keys expire 30 days after their rotation time, so a missed rotation is noticed, not fatal."""
    return rotation_days + 30


class DiskEncryption(pulumi.ComponentResource):
    """A purge-protected, RBAC-only vault with a rotated RSA key and a disk encryption set using it."""

    disk_encryption_set_id: pulumi.Output[str]
    key_uri: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        cluster_name: str,
        resource_group_name: pulumi.Input[str],
        location: str,
        tenant_id: pulumi.Input[str],
        subscription_id: pulumi.Input[str],
        rotation_days: int,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("gantry:azure:DiskEncryption", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        vault = azure.keyvault.Vault(
            f"{name}-vault",
            vault_name=vault_name(cluster_name),
            resource_group_name=resource_group_name,
            location=location,
            properties={
                "tenant_id": tenant_id,
                "sku": {"family": "A", "name": "premium"},
                # RBAC instead of access policies; purge protection is required for disk encryption.
                "enable_rbac_authorization": True,
                "enable_soft_delete": True,
                "soft_delete_retention_in_days": 90,
                "enable_purge_protection": True,
                "network_acls": {"default_action": "Deny", "bypass": "AzureServices"},
            },
            tags=dict(tags),
            opts=child,
        )
        key = azure.keyvault.Key(
            f"{name}-key",
            key_name=f"{cluster_name}-disks",
            vault_name=vault.name,
            resource_group_name=resource_group_name,
            properties={
                "kty": "RSA-HSM",
                "key_size": 3072,
                "key_ops": ["wrapKey", "unwrapKey"],
                "rotation_policy": {
                    "attributes": {"expiry_time": f"P{expiry_days(rotation_days)}D"},
                    "lifetime_actions": [
                        {"action": {"type": "rotate"}, "trigger": {"time_after_create": f"P{rotation_days}D"}},
                        {"action": {"type": "notify"}, "trigger": {"time_before_expiry": "P30D"}},
                    ],
                },
            },
            tags=dict(tags),
            opts=child,
        )
        des = azure.compute.DiskEncryptionSet(
            f"{name}-des",
            disk_encryption_set_name=f"{cluster_name}-des",
            resource_group_name=resource_group_name,
            location=location,
            identity={"type": "SystemAssigned"},
            encryption_type="EncryptionAtRestWithCustomerKey",
            # A versionless key URL lets the set follow each rotation automatically.
            active_key={"key_url": key.key_uri, "source_vault": {"id": vault.id}},
            rotation_to_latest_key_version_enabled=True,
            tags=dict(tags),
            opts=child,
        )
        principal = des.identity.apply(lambda i: text(dig(i, "principal_id")))
        azure.authorization.RoleAssignment(
            f"{name}-des-key-access",
            role_assignment_name=assignment_name(cluster_name, "des", "key-vault-crypto"),
            principal_id=principal,
            principal_type="ServicePrincipal",
            role_definition_id=pulumi.Output.from_input(subscription_id).apply(
                lambda s: role_definition_id(s, ROLE_KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER)
            ),
            scope=key.id,  # this key only, not every key in the vault
            opts=child,
        )
        self.disk_encryption_set_id = des.id
        self.key_uri = key.key_uri
        self.register_outputs({"diskEncryptionSetId": self.disk_encryption_set_id, "keyUri": self.key_uri})
