"""Secrets in plain inputs: an input named like a secret that holds a literal, not a Pulumi secret.

The renderer masks every Pulumi secret as ``[secret]``, so a secret-named input that still shows its value
was written in plain text (in the program or the stack file). Checkov cannot tell the two apart.

Shared by the rule modules of this category (one rule per module)."""

from __future__ import annotations

CATEGORY = "secrets"
