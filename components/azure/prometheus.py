"""Azure Monitor managed Prometheus for an AKS cluster: a workspace, its collection endpoint, rule and association.

Built by ``AksCluster`` when ``cluster.managedPrometheus`` is on (the default), beside the cluster's
``azureMonitorProfile.metrics``. The collection rule forwards the cluster's Prometheus stream
(``Microsoft-PrometheusMetrics``) into the Azure Monitor workspace, whose query endpoint becomes the
stack output the rollout engine reads (Entra ID bearer tokens for ``https://prometheus.monitor.azure.com``).
The workspace refuses public network access for ingestion; queries still need an identity with the
Monitoring Data Reader role on it.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_azure_native as azure

from components.cluster_support import dig, text

STREAM = "Microsoft-PrometheusMetrics"


class AzureManagedPrometheus(pulumi.ComponentResource):
    """Workspace, endpoint, rule and association; ``query_url`` is the workspace's Prometheus query endpoint."""

    def __init__(
        self,
        name: str,
        *,
        cluster_name: str,
        cluster_id: pulumi.Input[str],
        resource_group_name: pulumi.Input[str],
        location: str,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("gantry:azure:ManagedPrometheus", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        workspace = azure.monitor.AzureMonitorWorkspace(
            f"{name}-workspace", azure_monitor_workspace_name=f"amw-{cluster_name}",
            resource_group_name=resource_group_name, location=location, public_network_access="Disabled",
            tags=dict(tags), opts=child)
        endpoint = azure.monitor.DataCollectionEndpoint(
            f"{name}-dce", data_collection_endpoint_name=f"dce-{cluster_name}", kind="Linux",
            resource_group_name=resource_group_name, location=location,
            network_acls={"public_network_access": "Disabled"}, tags=dict(tags), opts=child)
        rule = azure.monitor.DataCollectionRule(
            f"{name}-dcr", data_collection_rule_name=f"dcr-{cluster_name}", kind="Linux",
            resource_group_name=resource_group_name, location=location,
            data_collection_endpoint_id=endpoint.id,
            data_sources={"prometheus_forwarder": [{"name": "PrometheusDataSource", "streams": [STREAM]}]},
            destinations={"monitoring_accounts": [{"account_resource_id": workspace.id, "name": "workspace"}]},
            data_flows=[{"streams": [STREAM], "destinations": ["workspace"]}],
            tags=dict(tags), opts=child)
        azure.monitor.DataCollectionRuleAssociation(
            f"{name}-dcra", association_name=f"dcra-{cluster_name}", resource_uri=cluster_id,
            data_collection_rule_id=rule.id, opts=child)
        self.workspace_id: pulumi.Output[str] = workspace.id
        self.query_url: pulumi.Output[str] = workspace.metrics.apply(
            lambda m: text(dig(m, "prometheus_query_endpoint")))
        self.register_outputs({"workspaceId": self.workspace_id, "queryUrl": self.query_url})
