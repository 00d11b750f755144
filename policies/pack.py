"""The pack: every rule the registry discovers (``policies.rules.discover``), looked up by id.

Read by the offline engine (``gantry check``), the CrossGuard adapter and the reports. Adding a rule means
adding one module under ``policies/rules/<category>/``; nothing here changes.
"""

from __future__ import annotations

from policies.model import PolicyId
from policies.rule import Rule
from policies.rules import discover

PACK_NAME = "gantry"
WAIVER_EXPIRED = PolicyId("waiver-expired")
WAIVER_INVALID = PolicyId("waiver-invalid")
"""Findings the engine raises about waivers themselves; always mandatory."""

RULES: tuple[Rule, ...] = discover()

BY_ID: dict[str, Rule] = {r.id: r for r in RULES}


def rule(policy: str) -> Rule:
    """Look a rule up, with an error listing the valid ids."""
    if policy not in BY_ID:
        raise KeyError(f"policy must be one of the pack's ids ({', '.join(sorted(BY_ID))}), but {policy!r} was given")
    return BY_ID[policy]


__all__ = ["BY_ID", "PACK_NAME", "RULES", "WAIVER_EXPIRED", "WAIVER_INVALID", "Rule", "rule"]
