"""The AWS network for an EKS cluster: a VPC with private and public subnets per zone and NAT egress.

Built by ``components.aws.eks.EksCluster`` when the spec does not supply an existing VPC.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components.cluster_support import aws_subnet_layout


class Vpc(pulumi.ComponentResource):
    """A VPC whose private subnets hold the nodes and whose public subnets hold only NAT and load balancers.

    Subnet CIDRs come from ``aws_subnet_layout``, so the same spec always gives the same addresses.
    ``zones`` may be explicit names or an ``Output`` of the region's available zones.
    """

    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    public_subnet_ids: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        *,
        cidr: str,
        zone_count: int,
        cluster_name: str,
        nat_per_zone: bool,
        zones: Sequence[str] = (),
        flow_log_key_arn: pulumi.Input[str] | None = None,
        flow_log_retention_days: int = 90,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("gantry:aws:Vpc", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        layout = aws_subnet_layout(cidr, zone_count)
        zone_names: Sequence[pulumi.Input[str]]
        if zones:
            zone_names = list(zones)
        else:
            available = aws.get_availability_zones_output(state="available", opts=pulumi.InvokeOutputOptions(
                parent=self))
            zone_names = [available.names.apply(lambda names, i=i: names[i]) for i in range(zone_count)]
        # EKS and the AWS load balancer controller discover subnets by these tags.
        shared = {f"kubernetes.io/cluster/{cluster_name}": "shared"}

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={**tags, "Name": name},
            opts=child,
        )
        # The default security group of a new VPC allows all traffic between members; strip its rules.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg", vpc_id=vpc.id, ingress=[], egress=[], tags={**tags, "Name": f"{name}-default"},
            opts=child,
        )
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={**tags, "Name": name}, opts=child)

        public_rt = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
            tags={**tags, "Name": f"{name}-public"},
            opts=child,
        )
        public_subnets = []
        private_subnets = []
        for i, (priv_cidr, pub_cidr) in enumerate(zip(layout.private, layout.public, strict=True)):
            pub = aws.ec2.Subnet(
                f"{name}-public-{i}",
                vpc_id=vpc.id,
                cidr_block=pub_cidr,
                availability_zone=zone_names[i],
                # Instances never get public IPs; only NAT gateways and load balancers live here.
                map_public_ip_on_launch=False,
                tags={**tags, **shared, "Name": f"{name}-public-{i}", "kubernetes.io/role/elb": "1"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{i}", subnet_id=pub.id, route_table_id=public_rt.id, opts=child
            )
            priv = aws.ec2.Subnet(
                f"{name}-private-{i}",
                vpc_id=vpc.id,
                cidr_block=priv_cidr,
                availability_zone=zone_names[i],
                map_public_ip_on_launch=False,
                tags={**tags, **shared, "Name": f"{name}-private-{i}", "kubernetes.io/role/internal-elb": "1"},
                opts=child,
            )
            public_subnets.append(pub)
            private_subnets.append(priv)

        nat_count = zone_count if nat_per_zone else 1
        nats = []
        for i in range(nat_count):
            eip = aws.ec2.Eip(f"{name}-nat-{i}", domain="vpc", tags={**tags, "Name": f"{name}-nat-{i}"},
                              opts=child)
            nats.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{i}",
                    allocation_id=eip.id,
                    subnet_id=public_subnets[i].id,
                    tags={**tags, "Name": f"{name}-nat-{i}"},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                )
            )
        for i, priv in enumerate(private_subnets):
            # With one NAT every zone shares it; per-zone NAT keeps egress alive when a zone fails.
            nat = nats[i if nat_per_zone else 0]
            rt = aws.ec2.RouteTable(
                f"{name}-private-{i}",
                vpc_id=vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}],
                tags={**tags, "Name": f"{name}-private-{i}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(f"{name}-private-{i}", subnet_id=priv.id, route_table_id=rt.id,
                                          opts=child)

        self._flow_logs(name, vpc.id, cluster_name, flow_log_key_arn, flow_log_retention_days, tags)

        self.vpc_id = vpc.id
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private_subnets])
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public_subnets])
        self.register_outputs(
            {"vpcId": self.vpc_id, "privateSubnetIds": self.private_subnet_ids,
             "publicSubnetIds": self.public_subnet_ids}
        )

    def _flow_logs(
        self,
        name: str,
        vpc_id: pulumi.Input[str],
        cluster_name: str,
        key_arn: pulumi.Input[str] | None,
        retention_days: int,
        tags: Mapping[str, str],
    ) -> None:
        """All traffic is logged to a retained (and, with a key, encrypted) group under the cluster's prefix."""
        child = pulumi.ResourceOptions(parent=self)
        group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=flow_log_group_name(cluster_name),
            retention_in_days=retention_days,
            kms_key_id=key_arn,
            tags=dict(tags),
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs",
            assume_role_policy=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                               "Action": "sts:AssumeRole"}],
            }),
            tags=dict(tags),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=group.arn.apply(lambda arn: json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow",
                               "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                               "Resource": [arn, f"{arn}:*"]}],
            })),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-logs",
            vpc_id=vpc_id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=dict(tags),
            opts=child,
        )


def flow_log_group_name(cluster_name: str) -> str:
    """Under the cluster's ``/aws/eks/<name>/`` prefix, which the key policy lets CloudWatch Logs use."""
    return f"/aws/eks/{cluster_name}/vpc-flow-logs"
