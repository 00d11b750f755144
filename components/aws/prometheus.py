"""Amazon Managed Service for Prometheus for an EKS cluster: a key-encrypted workspace and an agentless scraper.

Built by ``EksCluster`` when ``cluster.managedPrometheus`` is on (the default). The workspace's query
endpoint becomes the stack output the rollout engine reads (SigV4-signed queries, service ``aps``).
The scraper runs in the cluster's private subnets; its role is mapped into the cluster by an access
entry and may only read what scraping needs (a ClusterRole of get/list/watch on pods, endpoints,
services and nodes, plus ``/metrics``).

The scrape configuration keeps pods annotated ``prometheus.io/scrape: "true"`` and copies the labels
Gantry's delivery components set (``app.kubernetes.io/name`` -> ``app``, ``gantry.dev/track`` ->
``track``, ``gantry.dev/color`` -> ``color``) and the namespace onto every series, which the ``app``
health-query template selects on; the data planes' own metrics (Istio, ingress-nginx, Envoy) keep
their native labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

SCRAPER_USER = "aps-collector-user"
"""The Kubernetes user the scraper's role maps to (the name AWS's managed-collector guide uses)."""

SCRAPE_INTERVAL = "15s"


def scrape_configuration(interval: str = SCRAPE_INTERVAL) -> str:
    """The scraper's Prometheus configuration (YAML), as AMP's managed collector accepts it."""
    relabel = "\n".join(
        f"      - source_labels: [{source}]\n        target_label: {target}"
        for source, target in (
            ("__meta_kubernetes_namespace", "namespace"),
            ("__meta_kubernetes_pod_name", "pod"),
            ("__meta_kubernetes_pod_label_app_kubernetes_io_name", "app"),
            ("__meta_kubernetes_pod_label_gantry_dev_track", "track"),
            ("__meta_kubernetes_pod_label_gantry_dev_color", "color"),
        )
    )
    return (
        "global:\n"
        f"  scrape_interval: {interval}\n"
        "scrape_configs:\n"
        "  - job_name: pods\n"
        "    kubernetes_sd_configs:\n"
        "      - role: pod\n"
        "    relabel_configs:\n"
        "      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]\n"
        "        action: keep\n"
        "        regex: \"true\"\n"
        "      - source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port]\n"
        "        action: replace\n"
        "        regex: ([^:]+)(?::\\d+)?;(\\d+)\n"
        "        replacement: $1:$2\n"
        "        target_label: __address__\n"
        "      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_path]\n"
        "        action: replace\n"
        "        regex: (.+)\n"
        "        target_label: __metrics_path__\n"
        f"{relabel}\n"
    )


class AmpScraper(pulumi.ComponentResource):
    """A workspace encrypted with the cluster's key, and a managed scraper of the cluster into it."""

    def __init__(
        self,
        name: str,
        *,
        cluster_name: pulumi.Input[str],
        cluster_arn: pulumi.Input[str],
        subnet_ids: pulumi.Input[Sequence[str]],
        key_arn: pulumi.Input[str],
        provider: pulumi.ProviderResource,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("gantry:aws:AmpScraper", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        workspace = aws.amp.Workspace(f"{name}-workspace", alias=cluster_name, kms_key_arn=key_arn, tags=dict(tags),
                                      opts=child)
        # Read-only RBAC for the scraper's Kubernetes user, before the scraper starts.
        on_cluster = pulumi.ResourceOptions(parent=self, provider=provider)
        role = k8s.rbac.v1.ClusterRole(
            f"{name}-reader",
            metadata={"name": "gantry-aps-collector"},
            rules=[
                {"apiGroups": [""], "resources": ["nodes", "nodes/metrics", "services", "endpoints", "pods"],
                 "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                 "verbs": ["get", "list", "watch"]},
                {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
            ],
            opts=on_cluster,
        )
        binding = k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-reader-binding",
            metadata={"name": "gantry-aps-collector"},
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "gantry-aps-collector"},
            subjects=[{"kind": "User", "name": SCRAPER_USER, "apiGroup": "rbac.authorization.k8s.io"}],
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[role]),
        )
        scraper = aws.amp.Scraper(
            f"{name}-scraper",
            alias=cluster_name,
            source={"eks": {"cluster_arn": cluster_arn, "subnet_ids": subnet_ids}},
            destination={"amp": {"workspace_arn": workspace.arn}},
            scrape_configuration=scrape_configuration(),
            tags=dict(tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[binding]),
        )
        aws.eks.AccessEntry(
            f"{name}-scraper-access",
            cluster_name=cluster_name,
            principal_arn=scraper.role_arn,
            user_name=SCRAPER_USER,
            tags=dict(tags),
            opts=child,
        )
        self.workspace_arn: pulumi.Output[str] = workspace.arn
        # The endpoint ends with '/'; the query API lives below it (…/workspaces/<id>/api/v1/query).
        self.query_url: pulumi.Output[str] = workspace.prometheus_endpoint.apply(lambda e: str(e).rstrip("/"))
        self.register_outputs({"workspaceArn": self.workspace_arn, "queryUrl": self.query_url})
