"""Cluster rules that hold on every cloud: supported versions, encrypted node disks, network policy.

Shared by the rule modules of this category (one rule per module)."""

from __future__ import annotations

from collections.abc import Sequence

from policies.props import minor_version

CATEGORY = "clusters"


def supported_from(values: Sequence[object]) -> tuple[str, ...]:
    """Normalise a configured list (``[1.32, "1.33"]``) to minor-version strings."""
    return tuple(v for v in (minor_version(x) for x in values) if v is not None)
