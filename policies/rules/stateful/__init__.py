"""Stateful resources in prod: databases, buckets, keys and clusters must be protected from deletion.

Shared by the rule modules of this category (one rule per module)."""

from __future__ import annotations

CATEGORY = "stateful"
