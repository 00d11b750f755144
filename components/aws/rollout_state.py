"""Shared rollout state on AWS: the DynamoDB table for the journal and leases, and the S3 bucket for checkpoints.

A program adds ``RolloutState`` once per account or team; its ``state_url`` output is the value for
``gantry:rollout.state`` (see ``infra.settings.state_url``). Secure by default: the table has
point-in-time recovery, encryption at rest and deletion protection; the bucket blocks every kind of
public access, enforces its owner, keeps versions, encrypts with KMS (a given key, else the account's
S3 key) or AES256, refuses plain-HTTP requests and any put that does not ask for server-side
encryption (Gantry asks on every put), and both are ``protect``-ed against ``pulumi destroy``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.validation import Violation, raise_first

CHECKPOINT_PREFIX = "rollouts"
"""Where checkpoint objects go in the bucket (the ``prefix`` of ``checkpoints=s3://bucket/prefix``)."""

_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True, kw_only=True)
class RolloutStateProps:
    """What the shared state is called and how it is protected. Every default is the safe choice."""

    table_name: str | None = None
    """DynamoDB table name. Default: ``<name>-rollouts``."""
    bucket_name: str | None = None
    """S3 bucket name for checkpoints. Default: a Pulumi auto-name from ``<name>-checkpoints``."""
    checkpoints: bool = True
    """Create the checkpoint bucket. Default: true (without it a checkpoint must fit a 400 KB item)."""
    kms_key_arn: str | None = None
    """Customer-managed KMS key for the table and the bucket. Default: none (the AWS-managed keys:
    ``aws/dynamodb`` for the table, SSE-KMS with ``aws/s3`` for the bucket)."""
    noncurrent_version_days: int = 90
    """Days an overwritten or deleted checkpoint version is kept. Default: 90."""
    protect: bool = True
    """Protect the table and the bucket from ``pulumi destroy``. Default: true."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every resource. Default: none."""


def props_violations(props: RolloutStateProps) -> list[Violation]:
    out: list[Violation] = []
    if props.table_name is not None and not _TABLE.match(props.table_name):
        out.append(Violation("table_name", "3-255 letters, digits, '_', '-' or '.'", props.table_name))
    if props.bucket_name is not None and not _BUCKET.match(props.bucket_name):
        out.append(Violation("bucket_name", "a valid S3 bucket name (3-63 lowercase letters, digits, '.', '-')",
                             props.bucket_name))
    if not 1 <= props.noncurrent_version_days <= 3650:
        out.append(Violation("noncurrent_version_days", "within 1..3650", props.noncurrent_version_days))
    if props.bucket_name is not None and not props.checkpoints:
        out.append(Violation("bucket_name", "unset when checkpoints is false", props.bucket_name))
    return out


def bucket_policy(bucket_arn: str) -> str:
    """Deny plain HTTP, and deny any put that does not request server-side encryption."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": [bucket_arn, f"{bucket_arn}/*"],
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Sid": "DenyUnencryptedPuts", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
             "Resource": f"{bucket_arn}/*",
             "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}}},
        ],
    }, sort_keys=True)


def runner_policy(table_arn: str, bucket_arn: str | None) -> str:
    """The least privilege a pipeline runner needs for this state (attach it to the runners' role)."""
    statements: list[dict[str, object]] = [
        {"Sid": "RolloutJournalAndLease", "Effect": "Allow",
         "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                    "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem"],
         "Resource": table_arn}]
    if bucket_arn is not None:
        statements.append({"Sid": "RolloutCheckpoints", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                           "Resource": f"{bucket_arn}/{CHECKPOINT_PREFIX}/*"})
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


class RolloutState(pulumi.ComponentResource):
    """The table (and bucket) every pipeline runner of a team shares for rollout journals, leases and checkpoints."""

    table_name: pulumi.Output[str]
    table_arn: pulumi.Output[str]
    bucket_name: pulumi.Output[str] | None
    state_url: pulumi.Output[str]
    """The ``gantry:rollout.state`` value naming this table and bucket."""
    runner_policy: pulumi.Output[str]

    def __init__(self, name: str, props: RolloutStateProps | None = None, *, region: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        props = props or RolloutStateProps()
        raise_first(props_violations(props))
        super().__init__("gantry:aws:RolloutState", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        kept = pulumi.ResourceOptions(parent=self, protect=props.protect)
        tags = dict(props.tags)
        table = aws.dynamodb.Table(
            f"{name}-rollouts",
            name=props.table_name or f"{name}-rollouts",
            billing_mode="PAY_PER_REQUEST",
            hash_key="pk",
            range_key="sk",
            attributes=[aws.dynamodb.TableAttributeArgs(name="pk", type="S"),
                        aws.dynamodb.TableAttributeArgs(name="sk", type="S")],
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
                enabled=True, kms_key_arn=props.kms_key_arn),
            deletion_protection_enabled=True,
            tags=tags,
            opts=kept,
        )
        self.table_name = table.name
        self.table_arn = table.arn
        self.bucket_name = None
        url = table.name.apply(lambda t: f"dynamodb://{t}?region={region}")
        policy = table.arn.apply(lambda arn: runner_policy(arn, None))
        if props.checkpoints:
            bucket = aws.s3.Bucket(
                f"{name}-checkpoints",
                bucket=props.bucket_name,
                bucket_prefix=None if props.bucket_name else f"{name}-checkpoints-"[:37],
                force_destroy=False,
                tags=tags,
                opts=kept,
            )
            block = aws.s3.BucketPublicAccessBlock(
                f"{name}-checkpoints-public-access", bucket=bucket.id, block_public_acls=True,
                block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True, opts=child)
            aws.s3.BucketOwnershipControls(
                f"{name}-checkpoints-ownership", bucket=bucket.id,
                rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"), opts=child)
            aws.s3.BucketServerSideEncryptionConfiguration(
                f"{name}-checkpoints-encryption", bucket=bucket.id,
                rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3
                    .BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=props.kms_key_arn),
                    bucket_key_enabled=True)],
                opts=child)
            aws.s3.BucketVersioning(
                f"{name}-checkpoints-versioning", bucket=bucket.id,
                versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
                opts=child)
            aws.s3.BucketLifecycleConfiguration(
                f"{name}-checkpoints-lifecycle", bucket=bucket.id,
                rules=[aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-old-versions", status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=f"{CHECKPOINT_PREFIX}/"),
                    noncurrent_version_expiration=aws.s3
                    .BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=props.noncurrent_version_days),
                    abort_incomplete_multipart_upload=aws.s3
                    .BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(days_after_initiation=1))],
                opts=child)
            # After the public-access block: a policy is applied only once the bucket can no longer be public.
            aws.s3.BucketPolicy(f"{name}-checkpoints-policy", bucket=bucket.id, policy=bucket.arn.apply(bucket_policy),
                                opts=pulumi.ResourceOptions(parent=self, depends_on=[block]))
            self.bucket_name = bucket.bucket
            url = pulumi.Output.all(table.name, bucket.bucket).apply(
                lambda v: f"dynamodb://{v[0]}?region={region}&checkpoints=s3://{v[1]}/{CHECKPOINT_PREFIX}")
            policy = pulumi.Output.all(table.arn, bucket.arn).apply(lambda v: runner_policy(v[0], v[1]))
        self.state_url = url
        self.runner_policy = policy
        outputs: dict[str, object] = {"tableName": self.table_name, "tableArn": self.table_arn,
                                      "stateUrl": self.state_url, "runnerPolicy": self.runner_policy}
        if self.bucket_name is not None:
            outputs["bucketName"] = self.bucket_name
        self.register_outputs(outputs)
