"""A customer-managed KMS key for one cluster: secrets envelope encryption, node volumes and logs.

Built by ``components.aws.eks.EksCluster`` unless the spec supplies an existing key ARN.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from components.cluster_support import aws_partition


def key_policy(*, account: str, region: str, cluster_name: str) -> str:
    """The key policy: named principals only, never ``"*"``.

    The account root administers the key (so IAM policies can delegate and the key can never be
    orphaned); CloudWatch Logs may use it for this cluster's log groups only; the Auto Scaling
    service-linked role may use it and create grants for AWS resources so node groups can launch
    instances whose root volumes are encrypted with it.
    """
    partition = aws_partition(region)
    root = f"arn:{partition}:iam::{account}:root"
    autoscaling = (
        f"arn:{partition}:iam::{account}:role/aws-service-role/autoscaling.amazonaws.com/"
        "AWSServiceRoleForAutoScaling"
    )
    # The cluster's log groups (control plane, VPC flow logs) all live under /aws/eks/<cluster>/.
    log_groups = f"arn:{partition}:logs:{region}:{account}:log-group:/aws/eks/{cluster_name}/*"
    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AccountAdministersKey", "Effect": "Allow", "Principal": {"AWS": root},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "ClusterLogGroupUsesKey", "Effect": "Allow",
             "Principal": {"Service": f"logs.{region}.amazonaws.com"},
             "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                        "kms:Describe*"],
             "Resource": "*",
             "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}}},
            {"Sid": "AutoScalingEncryptsNodeVolumes", "Effect": "Allow", "Principal": {"AWS": autoscaling},
             "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                        "kms:DescribeKey"],
             "Resource": "*"},
            {"Sid": "AutoScalingGrantsForAwsResources", "Effect": "Allow", "Principal": {"AWS": autoscaling},
             "Action": "kms:CreateGrant", "Resource": "*",
             "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}},
        ],
    }
    return json.dumps(doc, sort_keys=True)


class EncryptionKey(pulumi.ComponentResource):
    """A symmetric KMS key with rotation on, an alias, a deletion window and a policy without wildcards."""

    arn: pulumi.Output[str]
    key_id: pulumi.Output[str]
    alias_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        cluster_name: str,
        region: str,
        rotation_days: int,
        deletion_window_days: int,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("gantry:aws:EncryptionKey", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        policy = account.apply(lambda acct: key_policy(account=acct, region=region, cluster_name=cluster_name))
        key = aws.kms.Key(
            f"{name}-key",
            description=f"Gantry cluster {cluster_name}: secrets, node volumes and control-plane logs",
            key_usage="ENCRYPT_DECRYPT",
            customer_master_key_spec="SYMMETRIC_DEFAULT",
            enable_key_rotation=True,
            rotation_period_in_days=rotation_days,
            deletion_window_in_days=deletion_window_days,
            policy=policy,
            tags=dict(tags),
            opts=child,
        )
        alias = aws.kms.Alias(f"{name}-alias", name=f"alias/gantry/{cluster_name}", target_key_id=key.key_id,
                              opts=child)
        self.arn = key.arn
        self.key_id = key.key_id
        self.alias_name = alias.name
        self.register_outputs({"arn": self.arn, "keyId": self.key_id, "aliasName": self.alias_name})
