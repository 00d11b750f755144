"""The EKS cluster component: private endpoint, envelope encryption, full control-plane logging, IRSA.

Built by ``components.cluster.build_cluster`` for stacks whose cloud is ``aws``. Unlike pulumi-eks,
every default here is the locked-down one: public endpoint off, all five log types on, a created
KMS key with rotation, IMDSv2 required on nodes and no SSH.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws.kms import EncryptionKey
from components.aws.network import Vpc
from components.cluster_support import (
    aws_partition,
    dig,
    instance_type,
    nat_per_zone,
    resource_tags,
    text,
    validated_tags,
    zone_count,
)
from components.kubeconfig import exec_kubeconfig_output
from components.spec import ClusterSpec, NodePoolSpec, Tier

SYSTEM_TAINT = {"key": "CriticalAddonsOnly", "value": "true", "effect": "NO_SCHEDULE"}
"""Keeps application pods off system pools; cluster add-ons tolerate it."""

DESIRED_SIZE_PATH = "scalingConfig.desiredSize"
"""Property the cluster autoscaler owns; ignoring it avoids a permanent diff (pulumi-eks#321)."""


def _assume_role(service: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service},
                       "Action": ["sts:AssumeRole", "sts:TagSession"]}],
    })


def _irsa_trust(provider_arn: str, issuer_url: str, namespace: str, service_account: str) -> str:
    """Only one service account in one namespace may assume the role, and only for STS."""
    host = issuer_url.removeprefix("https://")
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                f"{host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                f"{host}:aud": "sts.amazonaws.com",
            }},
        }],
    })


def _key_use_policy(key_arn: str) -> str:
    """The cluster role may use the secrets key and nothing else in KMS."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow",
                       "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                       "Resource": key_arn}],
    })


class EksCluster(pulumi.ComponentResource):
    """An EKS cluster with its network, key, IAM roles, OIDC provider, log group and node groups."""

    cluster_name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: pulumi.ProviderResource
    key_arn: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    vpc_id: pulumi.Output[str]

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
        # Validate before registering anything, so a bad spec leaves no half-built component.
        tags = validated_tags(spec, tags, cloud="aws", region=region)
        super().__init__("gantry:aws:EksCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster_name = spec.name
        all_tags = resource_tags(tags, cluster_name)
        partition = aws_partition(region)

        # --- encryption key: created, or supplied
        if spec.encryption.create_key:
            key = EncryptionKey(
                f"{name}-encryption",
                cluster_name=cluster_name,
                region=region,
                rotation_days=spec.encryption.rotation_days,
                deletion_window_days=spec.encryption.deletion_window_days,
                tags=all_tags,
                opts=child,
            )
            key_arn: pulumi.Output[str] = key.arn
        else:
            key_arn = pulumi.Output.from_input(str(spec.encryption.existing_key_id))

        # --- network: created, or supplied
        if spec.network.existing_vpc_id is None:
            vpc = Vpc(
                f"{name}-network",
                cidr=spec.network.cidr,
                zone_count=zone_count(spec.network, tier),
                zones=spec.network.zones,
                nat_per_zone=nat_per_zone(spec.network, tier),
                cluster_name=cluster_name,
                flow_log_key_arn=key_arn,
                flow_log_retention_days=spec.logging.retention_days,
                tags=all_tags,
                opts=child,
            )
            vpc_id: pulumi.Output[str] = vpc.vpc_id
            private_subnets: pulumi.Input[list[str]] = vpc.private_subnet_ids
        else:
            vpc_id = pulumi.Output.from_input(spec.network.existing_vpc_id)
            private_subnets = list(spec.network.existing_private_subnet_ids)

        # --- control-plane IAM: the one managed policy EKS needs, plus use of this key only
        cluster_role = aws.iam.Role(f"{name}-cluster-role", assume_role_policy=_assume_role("eks.amazonaws.com"),
                                    tags=all_tags, opts=child)
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy",
            role=cluster_role.name,
            policy_arn=f"arn:{partition}:iam::aws:policy/AmazonEKSClusterPolicy",
            opts=child,
        )
        key_use = aws.iam.RolePolicy(f"{name}-cluster-key-use", role=cluster_role.id,
                                     policy=key_arn.apply(_key_use_policy), opts=child)

        # --- log group first, so EKS does not create one with infinite retention
        log_types = list(spec.logging.types) if spec.logging.enabled else []
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/eks/{cluster_name}/cluster",
            retention_in_days=spec.logging.retention_days,
            kms_key_id=key_arn,
            tags=all_tags,
            opts=child,
        )

        endpoint = spec.endpoint
        vpc_config: dict[str, object] = {
            "subnet_ids": private_subnets,
            "endpoint_private_access": endpoint.private_access,
            "endpoint_public_access": endpoint.public_access,
        }
        if endpoint.public_access:
            vpc_config["public_access_cidrs"] = list(endpoint.public_access_cidrs)
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=cluster_name,
            role_arn=cluster_role.arn,
            version=spec.version,
            vpc_config=vpc_config,
            encryption_config={"provider": {"key_arn": key_arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=log_types,
            # Access entries instead of the aws-auth ConfigMap; the deployer starts as the only admin.
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": True},
            deletion_protection=tier is Tier.PROD,
            tags=all_tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster_policy, key_use, log_group]),
        )

        # --- IRSA: an OIDC provider for the cluster's issuer
        issuer: pulumi.Output[str] = cluster.identities.apply(
            lambda ids: text(dig(ids, 0, "oidcs", 0, "issuer"))
        )
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc", url=issuer, client_id_lists=["sts.amazonaws.com"], tags=all_tags, opts=child
        )

        # The VPC CNI gets its ENI permissions through IRSA, so nodes do not carry them.
        cni_role = aws.iam.Role(
            f"{name}-vpc-cni-role",
            assume_role_policy=pulumi.Output.all(oidc.arn, issuer).apply(
                lambda a: _irsa_trust(str(a[0]), str(a[1]), "kube-system", "aws-node")
            ),
            tags=all_tags,
            opts=child,
        )
        cni_policy = aws.iam.RolePolicyAttachment(
            f"{name}-vpc-cni-policy", role=cni_role.name,
            policy_arn=f"arn:{partition}:iam::aws:policy/AmazonEKS_CNI_Policy", opts=child,
        )
        cni = aws.eks.Addon(
            f"{name}-vpc-cni",
            cluster_name=cluster.name,
            addon_name="vpc-cni",
            # The CNI's network-policy agent is off by default; without it NetworkPolicies are not enforced.
            configuration_values=json.dumps({"enableNetworkPolicy": "true"}),
            service_account_role_arn=cni_role.arn,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="PRESERVE",
            tags=all_tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cni_policy]),
        )

        # --- nodes: worker and registry-read policies only (CNI is on IRSA above)
        node_role = aws.iam.Role(f"{name}-node-role", assume_role_policy=_assume_role("ec2.amazonaws.com"),
                                 tags=all_tags, opts=child)
        node_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{short}", role=node_role.name,
                policy_arn=f"arn:{partition}:iam::aws:policy/{policy}", opts=child,
            )
            for short, policy in (("worker", "AmazonEKSWorkerNodePolicy"),
                                  ("ecr-read", "AmazonEC2ContainerRegistryReadOnly"))
        ]
        for pool in spec.node_pools:
            NodeGroup(
                f"{name}-{pool.name}",
                pool,
                cluster_name=cluster.name,
                node_role_arn=node_role.arn,
                subnet_ids=private_subnets,
                key_arn=key_arn,
                tags=all_tags,
                after=[cni, *node_policies],
                opts=child,
            )

        self.cluster_name = cluster.name
        self.endpoint = cluster.endpoint
        self.key_arn = key_arn
        self.oidc_provider_arn = oidc.arn
        self.vpc_id = vpc_id
        ca = cluster.certificate_authority.apply(lambda c: text(dig(c, "data")))
        self.kubeconfig = exec_kubeconfig_output(
            cluster.name, cluster.endpoint, ca,
            command="aws",
            args=lambda cluster_name: ["eks", "get-token", "--cluster-name", cluster_name, "--region", region,
                                       "--output", "json"],
            install_hint="Install the AWS CLI v2: https://aws.amazon.com/cli/",
        )
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=self.kubeconfig, enable_server_side_apply=True,
                                     opts=child)
        self.metrics_auth = "sigv4"
        self.metrics_url: pulumi.Output[str] | None = None
        if spec.managed_prometheus:
            from components.aws.prometheus import AmpScraper

            amp = AmpScraper(f"{name}-prometheus", cluster_name=cluster.name, cluster_arn=cluster.arn,
                             subnet_ids=private_subnets, key_arn=key_arn, provider=self.provider, tags=all_tags,
                             opts=child)
            self.metrics_url = amp.query_url
        self.register_outputs({
            "clusterName": self.cluster_name, "endpoint": self.endpoint, "kubeconfig": self.kubeconfig,
            "keyArn": self.key_arn, "oidcProviderArn": self.oidc_provider_arn, "vpcId": self.vpc_id,
            "metricsUrl": self.metrics_url,
        })


class NodeGroup(pulumi.ComponentResource):
    """A managed node group with a launch template: CMK-encrypted root volume, IMDSv2 only, no SSH."""

    node_group_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        pool: NodePoolSpec,
        *,
        cluster_name: pulumi.Input[str],
        node_role_arn: pulumi.Input[str],
        subnet_ids: pulumi.Input[list[str]],
        key_arn: pulumi.Input[str],
        tags: Mapping[str, str],
        after: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``after``: resources the node group must wait for (a component's own depends_on does not
        reach its children, so the wait is placed on the node group itself)."""
        super().__init__("gantry:aws:NodeGroup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        pool_tags = {**tags, "gantry-pool": pool.name}
        template = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            description=f"Gantry node pool {pool.name}",
            block_device_mappings=[{
                "device_name": "/dev/xvda",
                "ebs": {
                    "volume_size": pool.disk_size_gb,
                    "volume_type": "gp3",
                    "encrypted": "true",
                    "kms_key_id": key_arn,
                    "delete_on_termination": "true",
                },
            }],
            # IMDSv2 only, and one hop: pods cannot reach the node's credentials (they use IRSA).
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",
                "http_put_response_hop_limit": 1,
                "instance_metadata_tags": "disabled",
            },
            monitoring={"enabled": True},
            tag_specifications=[
                {"resource_type": "instance", "tags": pool_tags},
                {"resource_type": "volume", "tags": pool_tags},
            ],
            update_default_version=True,
            tags=pool_tags,
            opts=child,
        )
        labels = {"gantry.dev/pool": pool.name, "gantry.dev/role": pool.role, **pool.labels}
        # The autoscaler moves desiredSize at runtime; without ignoring it every `up` would fight it.
        ignore = [DESIRED_SIZE_PATH] if pool.autoscaler_owns_desired else []
        group = aws.eks.NodeGroup(
            f"{name}-ng",
            cluster_name=cluster_name,
            node_group_name=name,
            node_role_arn=node_role_arn,
            subnet_ids=subnet_ids,
            scaling_config={"min_size": pool.min_size, "desired_size": pool.desired_size,
                            "max_size": pool.max_size},
            instance_types=[instance_type(pool, "aws")],
            ami_type="AL2023_x86_64_STANDARD",
            capacity_type="ON_DEMAND",
            # No remote_access block and no key pair in the template: no SSH from anywhere.
            launch_template={
                "id": template.id,
                "version": template.latest_version.apply(lambda v: "$Default" if v is None else str(v)),
            },
            update_config={"max_unavailable": 1},
            labels=labels,
            taints=[SYSTEM_TAINT] if pool.role == "system" else [],
            tags=pool_tags,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=ignore, depends_on=list(after)),
        )
        self.node_group_name = group.node_group_name
        self.register_outputs({"nodeGroupName": self.node_group_name})
