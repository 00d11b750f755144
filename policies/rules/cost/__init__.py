"""The cost rule: node pools at their max size, priced from ``policies/prices.json``, against the budget.

Shared by the rule modules of this category (one rule per module)."""

from __future__ import annotations

CATEGORY = "cost"
