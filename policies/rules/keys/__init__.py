"""Encryption-key rules: rotation, deletion protection and key policies, on AWS KMS, Cloud KMS and Key Vault.

Shared by the rule modules of this category (one rule per module)."""

from __future__ import annotations

CATEGORY = "keys"

AWS_KEY = "aws:kms/key:Key"

GCP_KEY = "gcp:kms/cryptoKey:CryptoKey"

AZURE_VAULT = "azure-native:keyvault:Vault"

DAY = 86400
