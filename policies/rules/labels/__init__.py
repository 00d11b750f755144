"""Ownership rules: required cloud tags/labels and Kubernetes recommended labels.

Shared by the rule modules of this category (one rule per module)."""

from __future__ import annotations

CATEGORY = "labels"
