"""A Cloud KMS key ring and CryptoKey for one GKE cluster: application-layer secrets and boot disks.

Built by ``components.gcp.gke.GkeCluster`` unless the spec supplies an existing key id.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_gcp as gcp

ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"


class EncryptionKey(pulumi.ComponentResource):
    """A rotated CryptoKey that only the GKE and Compute service agents of the project may use."""

    key_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        cluster_name: str,
        region: str,
        project: pulumi.Input[str],
        rotation_days: int,
        labels: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("gantry:gcp:EncryptionKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ring = gcp.kms.KeyRing(f"{name}-ring", name=f"{cluster_name}-keys", location=region, project=project,
                               opts=child)
        key = gcp.kms.CryptoKey(
            f"{name}-key",
            name=f"{cluster_name}-secrets",
            key_ring=ring.id,
            purpose="ENCRYPT_DECRYPT",
            rotation_period=f"{rotation_days * 86400}s",
            version_template={"algorithm": "GOOGLE_SYMMETRIC_ENCRYPTION", "protection_level": "SOFTWARE"},
            labels=dict(labels),
            opts=child,
        )
        # Service agents are named by project number: GKE encrypts secrets, Compute encrypts boot disks.
        number = gcp.organizations.get_project_output(
            project_id=project, opts=pulumi.InvokeOutputOptions(parent=self)
        ).number
        agents = {
            "gke-agent": "container-engine-robot.iam.gserviceaccount.com",
            "compute-agent": "compute-system.iam.gserviceaccount.com",
        }
        self.iam_members = [
            gcp.kms.CryptoKeyIAMMember(
                f"{name}-{short}",
                crypto_key_id=key.id,
                role=ENCRYPTER_DECRYPTER,
                member=number.apply(lambda n, domain=domain: f"serviceAccount:service-{n}@{domain}"),
                opts=child,
            )
            for short, domain in agents.items()
        ]
        self.key_id = key.id
        self.register_outputs({"keyId": self.key_id})
