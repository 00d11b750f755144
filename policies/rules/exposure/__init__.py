"""Exposure rules: Services that reach the internet and pods that share the node's namespaces.

Shared by the rule modules of this category (one rule per module)."""

from __future__ import annotations

CATEGORY = "exposure"
