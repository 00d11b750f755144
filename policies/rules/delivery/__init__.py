"""Progressive-delivery rules: selectors, one color per Service, canary weights and parity, safe strategies.

Shared by the rule modules of this category (one rule per module)."""

from __future__ import annotations

from policies import k8s

CATEGORY = "delivery"

SELECTED_KINDS = frozenset({k8s.DEPLOYMENT, k8s.STATEFULSET, k8s.REPLICASET, k8s.DAEMONSET})
