"""The AKS cluster component: private API server, Entra ID with Azure RBAC, CMK disks, monitoring.

Built by ``components.cluster.build_cluster`` for stacks whose cloud is ``azure``. Local accounts are
disabled, so every identity goes through Entra ID; the kubeconfig uses kubelogin.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

import pulumi
import pulumi_azure_native as azure
import pulumi_kubernetes as k8s

from components.azure.keyvault import (
    ROLE_NETWORK_CONTRIBUTOR,
    ROLE_READER,
    DiskEncryption,
    assignment_name,
    role_definition_id,
)
from components.cluster_support import (
    azure_node_subnet,
    dig,
    https,
    instance_type,
    resource_tags,
    system_pool_index,
    text,
    validated_tags,
    zone_count,
)
from components.spec import ClusterSpec, NodePoolSpec, Tier

AKS_LOG_CATEGORIES: dict[str, str] = {
    "api": "kube-apiserver",
    "audit": "kube-audit-admin",
    "authenticator": "guard",
    "controllerManager": "kube-controller-manager",
    "scheduler": "kube-scheduler",
}
"""EKS log type to AKS diagnostic category (``kube-audit-admin`` omits read-only audit noise)."""

SERVICE_CIDR = "172.20.0.0/16"
DNS_SERVICE_IP = "172.20.0.10"
POD_CIDR = "192.168.0.0/16"
"""Overlay ranges outside the 10/8 space the VNets use, so they never overlap the node subnet."""


def pool_profile(pool: NodePoolSpec, *, system: bool, zones: list[str], subnet_id: pulumi.Input[str],
                 tags: Mapping[str, str]) -> dict[str, object]:
    profile: dict[str, object] = {
        "name": pool.name,
        "mode": "System" if system else "User",
        "vm_size": instance_type(pool, "azure"),
        "enable_auto_scaling": True,
        "min_count": pool.min_size,
        "count": pool.desired_size,
        "max_count": pool.max_size,
        "os_type": "Linux",
        "os_sku": "AzureLinux",
        "os_disk_type": "Managed",
        "os_disk_size_gb": pool.disk_size_gb,
        "type": "VirtualMachineScaleSets",
        "availability_zones": zones,
        "vnet_subnet_id": subnet_id,
        "enable_node_public_ip": False,
        "upgrade_settings": {"max_surge": "33%"},
        "node_labels": {"gantry.dev/pool": pool.name, "gantry.dev/role": pool.role, **pool.labels},
        "tags": dict(tags),
    }
    if pool.role == "system":
        profile["node_taints"] = ["CriticalAddonsOnly=true:NoSchedule"]
    return profile


class AksCluster(pulumi.ComponentResource):
    """A private AKS cluster in its own resource group and VNet, with disks encrypted by a Gantry key."""

    cluster_name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: pulumi.ProviderResource
    disk_encryption_set_id: pulumi.Output[str]
    oidc_issuer_url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        spec: ClusterSpec,
        *,
        region: str,
        tier: Tier,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        tags = validated_tags(spec, tags, cloud="azure", region=region)
        super().__init__("gantry:azure:AksCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        all_tags = resource_tags(tags, spec.name)
        client = azure.authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        subscription_id: pulumi.Output[str] = client.subscription_id
        tenant_id: pulumi.Output[str] = client.tenant_id

        rg = azure.resources.ResourceGroup(f"{name}-rg", resource_group_name=f"rg-{spec.name}", location=region,
                                           tags=all_tags, opts=child)

        # --- network: created, or supplied
        if spec.network.existing_vpc_id is None:
            vnet = azure.network.VirtualNetwork(
                f"{name}-vnet", virtual_network_name=f"vnet-{spec.name}", resource_group_name=rg.name,
                location=region, address_space={"address_prefixes": [spec.network.cidr]}, tags=all_tags,
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["subnets"]),
            )
            subnet = azure.network.Subnet(
                f"{name}-nodes", subnet_name="nodes", virtual_network_name=vnet.name, resource_group_name=rg.name,
                address_prefix=azure_node_subnet(spec.network.cidr),
                # Egress goes through the cluster's load balancer, never implicit default outbound access.
                default_outbound_access=False,
                opts=child,
            )
            subnet_id: pulumi.Input[str] = subnet.id
        else:
            subnet_id = spec.network.existing_private_subnet_ids[0]

        # --- control-plane identity, allowed to manage the node subnet and nothing else
        identity = azure.managedidentity.UserAssignedIdentity(
            f"{name}-identity", resource_name_=f"id-{spec.name}", resource_group_name=rg.name, location=region,
            tags=all_tags, opts=child,
        )
        net_role = azure.authorization.RoleAssignment(
            f"{name}-identity-subnet",
            role_assignment_name=assignment_name(spec.name, "identity", "subnet"),
            principal_id=identity.principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=subscription_id.apply(lambda s: role_definition_id(s, ROLE_NETWORK_CONTRIBUTOR)),
            scope=subnet_id,
            opts=child,
        )
        depends: list[pulumi.Resource] = [net_role]

        # --- disk encryption: created, or supplied
        if spec.encryption.create_key:
            encryption = DiskEncryption(
                f"{name}-encryption", cluster_name=spec.name, resource_group_name=rg.name, location=region,
                tenant_id=tenant_id, subscription_id=subscription_id, rotation_days=spec.encryption.rotation_days,
                tags=all_tags, opts=child,
            )
            des_id: pulumi.Output[str] = encryption.disk_encryption_set_id
            depends.append(encryption)
        else:
            des_id = pulumi.Output.from_input(str(spec.encryption.existing_key_id))
        depends.append(azure.authorization.RoleAssignment(
            f"{name}-identity-des",
            role_assignment_name=assignment_name(spec.name, "identity", "des"),
            principal_id=identity.principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=subscription_id.apply(lambda s: role_definition_id(s, ROLE_READER)),
            scope=des_id,
            opts=child,
        ))

        workspace = azure.operationalinsights.Workspace(
            f"{name}-logs", workspace_name=f"log-{spec.name}", resource_group_name=rg.name, location=region,
            sku={"name": "PerGB2018"}, retention_in_days=spec.logging.retention_days, tags=all_tags, opts=child,
        )

        zones = list(spec.network.zones) or ["1", "2", "3"][: zone_count(spec.network, tier)]
        system_index = system_pool_index(spec.node_pools)
        profiles = [
            pool_profile(pool, system=i == system_index, zones=zones, subnet_id=subnet_id, tags=all_tags)
            for i, pool in enumerate(spec.node_pools)
        ]
        # The autoscaler owns each pool's count; ignoring it avoids a permanent diff.
        ignore = [f"agentPoolProfiles[{i}].count" for i, pool in enumerate(spec.node_pools)
                  if pool.autoscaler_owns_desired]
        endpoint = spec.endpoint
        access: dict[str, object] = {
            "enable_private_cluster": not endpoint.public_access,
            "enable_private_cluster_public_fqdn": False,
            "disable_run_command": True,
        }
        if endpoint.public_access:
            access["authorized_ip_ranges"] = list(endpoint.public_access_cidrs)
        cluster = azure.containerservice.ManagedCluster(
            f"{name}-aks",
            resource_name_=spec.name,
            resource_group_name=rg.name,
            location=region,
            dns_prefix=spec.name,
            kubernetes_version=spec.version,
            node_resource_group=f"rg-{spec.name}-nodes",
            identity={"type": "UserAssigned", "user_assigned_identities": [identity.id]},
            sku={"name": "Base", "tier": "Standard" if tier is Tier.PROD else "Free"},
            enable_rbac=True,
            aad_profile={"managed": True, "enable_azure_rbac": True, "tenant_id": tenant_id},
            disable_local_accounts=True,
            api_server_access_profile=access,
            disk_encryption_set_id=des_id,
            agent_pool_profiles=profiles,
            network_profile={
                "network_plugin": "azure",
                "network_plugin_mode": "overlay",
                "network_dataplane": "cilium",
                "network_policy": "cilium",
                "load_balancer_sku": "standard",
                "outbound_type": "loadBalancer",
                "pod_cidr": POD_CIDR,
                "service_cidr": SERVICE_CIDR,
                "dns_service_ip": DNS_SERVICE_IP,
            },
            oidc_issuer_profile={"enabled": True},
            security_profile={"workload_identity": {"enabled": True},
                              "image_cleaner": {"enabled": True, "interval_hours": 168}},
            addon_profiles={
                "azurepolicy": {"enabled": True},
                "omsagent": {"enabled": True, "config": {"logAnalyticsWorkspaceResourceID": workspace.id}},
            },
            azure_monitor_profile={"metrics": {"enabled": spec.managed_prometheus}},
            auto_upgrade_profile={"upgrade_channel": "patch", "node_os_upgrade_channel": "NodeImage"},
            tags=all_tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends, ignore_changes=ignore),
        )

        if spec.logging.enabled:
            azure.monitor.DiagnosticSetting(
                f"{name}-control-plane-logs",
                name=f"{spec.name}-control-plane",
                resource_uri=cluster.id,
                workspace_id=workspace.id,
                log_analytics_destination_type="Dedicated",
                logs=[{"category": AKS_LOG_CATEGORIES[t], "enabled": True} for t in spec.logging.types],
                opts=child,
            )

        self.cluster_name = cluster.name
        host = cluster.private_fqdn if not endpoint.public_access else cluster.fqdn
        self.endpoint = host.apply(lambda h: https(text(h)))
        self.disk_encryption_set_id = des_id
        self.oidc_issuer_url = cluster.oidc_issuer_profile.apply(lambda p: text(dig(p, "issuer_url")))
        creds = azure.containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=rg.name, resource_name=cluster.name, format="exec",
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        self.kubeconfig = pulumi.Output.secret(creds.apply(_first_kubeconfig))
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=self.kubeconfig, enable_server_side_apply=True,
                                     opts=child)
        self.metrics_auth = "azure"
        self.metrics_url: pulumi.Output[str] | None = None
        if spec.managed_prometheus:
            from components.azure.prometheus import AzureManagedPrometheus

            amp = AzureManagedPrometheus(f"{name}-prometheus", cluster_name=spec.name, cluster_id=cluster.id,
                                         resource_group_name=rg.name, location=region, tags=all_tags, opts=child)
            self.metrics_url = amp.query_url
        self.register_outputs({
            "clusterName": self.cluster_name, "endpoint": self.endpoint, "kubeconfig": self.kubeconfig,
            "diskEncryptionSetId": self.disk_encryption_set_id, "oidcIssuerUrl": self.oidc_issuer_url,
            "metricsUrl": self.metrics_url,
        })


def _first_kubeconfig(result: object) -> str:
    """AKS returns kubeconfigs base64-encoded; the exec format runs kubelogin (no stored token)."""
    value = dig(result, "kubeconfigs", 0, "value")
    if not value:
        return ""
    return base64.b64decode(str(value)).decode("utf-8")
