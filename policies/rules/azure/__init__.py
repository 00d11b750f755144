"""AKS rules over raw ``azure-native:containerservice:*`` resources.

Shared by the rule modules of this category (one rule per module)."""

from __future__ import annotations

CATEGORY = "clusters-azure"

AKS_CLUSTER = "azure-native:containerservice:ManagedCluster"

AKS_AGENTPOOL = "azure-native:containerservice:AgentPool"
