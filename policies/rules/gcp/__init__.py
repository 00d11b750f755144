"""GKE rules over raw ``gcp:container/*`` resources (Gantry's GKE component and raw programs alike).

Shared by the rule modules of this category (one rule per module)."""

from __future__ import annotations

CATEGORY = "clusters-gcp"

GKE_CLUSTER = "gcp:container/cluster:Cluster"

GKE_NODEPOOL = "gcp:container/nodePool:NodePool"
