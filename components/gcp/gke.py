"""The GKE cluster component: private nodes and endpoint, Workload Identity, Dataplane V2, CMEK.

Built by ``components.cluster.build_cluster`` for stacks whose cloud is ``gcp``. The default node
pool is removed; each ``NodePoolSpec`` becomes an autoscaling pool with KMS-encrypted boot disks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components.cluster_support import (
    dig,
    gcp_labels,
    gke_ranges,
    https,
    instance_type,
    resource_tags,
    text,
    validated_tags,
    zone_count,
)
from components.gcp.kms import EncryptionKey
from components.kubeconfig import exec_kubeconfig_output
from components.spec import ClusterSpec, NodePoolSpec, Tier

MASTER_CIDR = "172.16.0.0/28"
"""The control plane's private range; each Gantry cluster has its own VPC, so one constant is safe."""

GKE_LOG_COMPONENTS: dict[str, str] = {
    "api": "APISERVER",
    "controllerManager": "CONTROLLER_MANAGER",
    "scheduler": "SCHEDULER",
}
"""EKS log type to GKE logging component. Audit logs are Cloud Audit Logs (always on); GKE has no
separate authenticator log."""

GKE_REGIONAL_ZONES = 3
"""A regional cluster spans three zones unless ``nodeLocations`` says otherwise."""

NODE_ROLES: tuple[str, ...] = ("roles/container.defaultNodeServiceAccount", "roles/artifactregistry.reader")
"""The node service account's only project roles: GKE's least-privilege node role and image pulls."""

SYSTEM_TAINT = {"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}


def log_components(types: list[str], enabled: bool) -> list[str]:
    if not enabled:
        return []
    return ["SYSTEM_COMPONENTS", "WORKLOADS", *(GKE_LOG_COMPONENTS[t] for t in types if t in GKE_LOG_COMPONENTS)]


def log_filter(cluster_name: str) -> str:
    """Cloud Logging filter for everything one cluster emits (control plane, nodes, pods)."""
    return f'resource.labels.cluster_name="{cluster_name}"'


def service_account_id(cluster_name: str) -> str:
    """Service-account ids are 6-30 characters; trim deterministically."""
    return f"{cluster_name}-nodes"[:30].rstrip("-")


class GkeNetwork(pulumi.ComponentResource):
    """A custom-mode VPC with one subnetwork (pods and services as secondary ranges) and Cloud NAT."""

    network: pulumi.Output[str]
    subnetwork: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        cidr: str,
        region: str,
        project: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("gantry:gcp:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ranges = gke_ranges(cidr)
        net = gcp.compute.Network(f"{name}-vpc", name=name, project=project, auto_create_subnetworks=False,
                                  routing_mode="REGIONAL", opts=child)
        sub = gcp.compute.Subnetwork(
            f"{name}-nodes",
            name=f"{name}-nodes",
            project=project,
            region=region,
            network=net.id,
            ip_cidr_range=ranges.nodes,
            secondary_ip_ranges=[
                {"range_name": "pods", "ip_cidr_range": ranges.pods},
                {"range_name": "services", "ip_cidr_range": ranges.services},
            ],
            # Private nodes reach Google APIs (registries, logging) without public IPs.
            private_ip_google_access=True,
            log_config={"aggregation_interval": "INTERVAL_5_SEC", "flow_sampling": 0.5,
                        "metadata": "INCLUDE_ALL_METADATA"},
            opts=child,
        )
        router = gcp.compute.Router(f"{name}-router", name=f"{name}-router", project=project, region=region,
                                    network=net.id, opts=child)
        gcp.compute.RouterNat(
            f"{name}-nat",
            name=f"{name}-nat",
            project=project,
            region=region,
            router=router.name,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            log_config={"enable": True, "filter": "ERRORS_ONLY"},
            opts=child,
        )
        self.network = net.id
        self.subnetwork = sub.id
        self.register_outputs({"network": self.network, "subnetwork": self.subnetwork})


class GkeCluster(pulumi.ComponentResource):
    """A regional, private GKE cluster with secrets encrypted by a Cloud KMS key Gantry controls."""

    cluster_name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: pulumi.ProviderResource
    key_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        spec: ClusterSpec,
        *,
        region: str,
        tier: Tier,
        tags: Mapping[str, str],
        project: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        tags = validated_tags(spec, tags, cloud="gcp", region=region)
        super().__init__("gantry:gcp:GkeCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = gcp_labels(resource_tags(tags, spec.name))
        project_id: pulumi.Output[str] = (
            pulumi.Output.from_input(project) if project is not None
            else gcp.organizations.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self)).project
        )

        # --- network
        if spec.network.existing_vpc_id is None:
            network = GkeNetwork(f"{name}-network", cidr=spec.network.cidr, region=region, project=project_id,
                                 opts=child)
            network_id: pulumi.Input[str] = network.network
            subnetwork_id: pulumi.Input[str] = network.subnetwork
            ip_policy: dict[str, object] = {"cluster_secondary_range_name": "pods",
                                            "services_secondary_range_name": "services"}
        else:
            network_id = spec.network.existing_vpc_id
            subnetwork_id = spec.network.existing_private_subnet_ids[0]
            ip_policy = {}  # GKE allocates the secondary ranges in the supplied subnetwork

        # --- key
        depends: list[pulumi.Resource] = []
        if spec.encryption.create_key:
            key = EncryptionKey(f"{name}-encryption", cluster_name=spec.name, region=region, project=project_id,
                                rotation_days=spec.encryption.rotation_days, labels=labels, opts=child)
            key_id: pulumi.Output[str] = key.key_id
            depends.append(key)  # the service agents need the key before the cluster and disks use it
        else:
            key_id = pulumi.Output.from_input(str(spec.encryption.existing_key_id))

        # --- node identity: a dedicated, least-privilege service account instead of the Compute default
        sa = gcp.serviceaccount.Account(f"{name}-nodes", account_id=service_account_id(spec.name),
                                        display_name=f"GKE nodes of {spec.name}", project=project_id, opts=child)
        # The email follows from the account id and project, so it is known before the account exists.
        sa_email = project_id.apply(lambda p: f"{service_account_id(spec.name)}@{p}.iam.gserviceaccount.com")
        for role in NODE_ROLES:
            depends.append(gcp.projects.IAMMember(
                f"{name}-nodes-{role.rsplit('.', 1)[-1].lower()}", project=project_id, role=role,
                member=sa_email.apply(lambda e: f"serviceAccount:{e}"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[sa]),
            ))

        zones = zone_count(spec.network, tier)
        node_locations: pulumi.Input[list[str]] | None = None
        if spec.network.zones:
            node_locations = list(spec.network.zones)
        elif zones != GKE_REGIONAL_ZONES:
            available = gcp.compute.get_zones_output(region=region, project=project_id, status="UP",
                                                     opts=pulumi.InvokeOutputOptions(parent=self))
            node_locations = available.names.apply(lambda names: sorted(names or [])[:zones])

        endpoint = spec.endpoint
        if endpoint.public_access:
            authorized = [{"cidr_block": c, "display_name": f"public-{i}"}
                          for i, c in enumerate(endpoint.public_access_cidrs)]
        elif spec.network.existing_vpc_id is None:
            authorized = [{"cidr_block": spec.network.cidr, "display_name": "cluster-network"}]
        else:
            authorized = []
        node_config = _node_config(None, key_id=key_id, sa_email=sa_email, labels=labels)
        cluster = gcp.container.Cluster(
            f"{name}-gke",
            name=spec.name,
            project=project_id,
            location=region,
            node_locations=node_locations,
            # The default pool cannot be configured like ours; it is created (hardened) and removed.
            remove_default_node_pool=True,
            initial_node_count=1,
            node_config=node_config,
            deletion_protection=tier is Tier.PROD,
            min_master_version=spec.version,
            release_channel={"channel": spec.release_channel},
            network=network_id,
            subnetwork=subnetwork_id,
            networking_mode="VPC_NATIVE",
            ip_allocation_policy=ip_policy,
            private_cluster_config={
                "enable_private_nodes": True,
                "enable_private_endpoint": not endpoint.public_access,
                "master_ipv4_cidr_block": MASTER_CIDR,
                "master_global_access_config": {"enabled": False},
            },
            master_authorized_networks_config={"cidr_blocks": authorized, "gcp_public_cidrs_access_enabled": False},
            master_auth={"client_certificate_config": {"issue_client_certificate": False}},
            workload_identity_config={"workload_pool": project_id.apply(lambda p: f"{p}.svc.id.goog")},
            enable_shielded_nodes=True,
            enable_legacy_abac=False,
            # Dataplane V2 enforces NetworkPolicy natively (no Calico add-on needed).
            datapath_provider="ADVANCED_DATAPATH",
            database_encryption={"state": "ENCRYPTED", "key_name": key_id},
            logging_config={"enable_components": log_components(spec.logging.types, spec.logging.enabled)},
            monitoring_config={
                "enable_components": ["SYSTEM_COMPONENTS", "APISERVER", "SCHEDULER", "CONTROLLER_MANAGER"],
                "managed_prometheus": {"enabled": spec.managed_prometheus},
            },
            resource_labels=labels,
            # nodeConfig only shapes the default pool, which is deleted at creation; a later change to it
            # would otherwise force a replacement of the whole cluster.
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends, ignore_changes=["nodeConfig"]),
        )

        if spec.logging.enabled:
            # GKE has no per-cluster retention; route this cluster's logs to its own bucket that has one.
            bucket = gcp.logging.ProjectBucketConfig(
                f"{name}-log-bucket", project=project_id, location=region, bucket_id=f"{spec.name}-logs",
                retention_days=spec.logging.retention_days,
                description=f"Logs of GKE cluster {spec.name}", opts=child,
            )
            gcp.logging.ProjectSink(
                f"{name}-log-sink", name=f"{spec.name}-logs", project=project_id,
                destination=bucket.id.apply(lambda i: f"logging.googleapis.com/{i}"),
                filter=log_filter(spec.name), unique_writer_identity=True, opts=child,
            )

        for pool in spec.node_pools:
            # Autoscaling bounds are totals across zones; the initial count is per zone.
            per_zone = max(1, math.ceil(pool.desired_size / zones))
            ignore = ["initialNodeCount"] if pool.autoscaler_owns_desired else []
            gcp.container.NodePool(
                f"{name}-{pool.name}",
                name=pool.name,
                project=project_id,
                location=region,
                cluster=cluster.name,
                initial_node_count=per_zone,
                autoscaling={"total_min_node_count": pool.min_size, "total_max_node_count": pool.max_size,
                             "location_policy": "BALANCED"},
                management={"auto_repair": True, "auto_upgrade": True},
                upgrade_settings={"max_surge": 1, "max_unavailable": 0},
                node_config=_node_config(pool, key_id=key_id, sa_email=sa_email, labels=labels),
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=ignore),
            )

        self.cluster_name = cluster.name
        self.endpoint = cluster.endpoint.apply(lambda e: https(text(e)))
        self.key_id = key_id
        ca = cluster.master_auth.apply(lambda m: text(dig(m, "cluster_ca_certificate")))
        self.kubeconfig = exec_kubeconfig_output(
            cluster.name, self.endpoint, ca,
            command="gke-gcloud-auth-plugin",
            args=lambda _cluster_name: [],
            install_hint="Install gke-gcloud-auth-plugin: gcloud components install gke-gcloud-auth-plugin",
        )
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=self.kubeconfig, enable_server_side_apply=True,
                                     opts=child)
        # Managed collection writes into the project's Monarch store; its Prometheus-compatible query API is
        # per project (queried with the monitoring read scope; see infra/rollout/metrics/auth.py).
        self.metrics_auth = "google"
        self.metrics_url: pulumi.Output[str] | None = (
            project_id.apply(gmp_query_url) if spec.managed_prometheus else None)
        self.register_outputs({"clusterName": self.cluster_name, "endpoint": self.endpoint,
                               "kubeconfig": self.kubeconfig, "keyId": self.key_id, "metricsUrl": self.metrics_url})


def gmp_query_url(project: str) -> str:
    """Google Cloud Managed Service for Prometheus' query endpoint for one project."""
    return f"https://monitoring.googleapis.com/v1/projects/{project}/location/global/prometheus"


def _node_config(
    pool: NodePoolSpec | None,
    *,
    key_id: pulumi.Input[str],
    sa_email: pulumi.Input[str],
    labels: Mapping[str, str],
) -> dict[str, object]:
    """Hardened node settings shared by every pool (and the short-lived default pool)."""
    config: dict[str, object] = {
        "machine_type": instance_type(pool, "gcp") if pool else "e2-small",
        "disk_size_gb": pool.disk_size_gb if pool else 20,
        "disk_type": "pd-balanced",
        "image_type": "COS_CONTAINERD",
        "boot_disk_kms_key": key_id,
        "service_account": sa_email,
        "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
        "shielded_instance_config": {"enable_secure_boot": True, "enable_integrity_monitoring": True},
        # Pods see the GKE metadata server, never the node's credentials.
        "workload_metadata_config": {"mode": "GKE_METADATA"},
        "metadata": {"disable-legacy-endpoints": "true"},
        "resource_labels": dict(labels),
    }
    if pool is not None:
        config["labels"] = {"gantry.dev/pool": pool.name, "gantry.dev/role": pool.role, **pool.labels}
        if pool.role == "system":
            config["taints"] = [SYSTEM_TAINT]
    return config
