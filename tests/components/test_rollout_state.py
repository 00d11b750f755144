"""RolloutState under the renderer's Pulumi mocks: secure by default, valid inputs only, and clean under the pack."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from components.aws.rollout_state import RolloutState, RolloutStateProps, bucket_policy, runner_policy
from components.validation import SpecError
from infra.render import RenderResult, render_callable
from infra.settings.state_url import DynamoState, S3Location, parse_state_url
from policies.config import build_settings, load_policy_config
from policies.engine import FindingStatus, evaluate, resources_from_render
from policies.model import TierName

TABLE = "aws:dynamodb/table:Table"
BUCKET = "aws:s3/bucket:Bucket"


def render(props: RolloutStateProps | None = None) -> RenderResult:
    import pulumi

    def program() -> None:
        state = RolloutState("team", props or RolloutStateProps(tags={"owner": "platform", "env": "prod",
                                                                      "cost-center": "eng"}), region="us-east-1")
        pulumi.export("stateUrl", state.state_url)
        pulumi.export("runnerPolicy", state.runner_policy)

    return render_callable(program, project="gantry", stack="prod", config={"aws:region": "us-east-1"})


@pytest.fixture(scope="module")
def default() -> RenderResult:
    return render()


def _inputs(result: RenderResult, type_: str, suffix: str) -> dict[str, object]:
    (found,) = [r for r in result.resources if r.type == type_ and r.name.endswith(suffix)]
    return dict(found.inputs)


def test_table_has_the_backend_key_schema_pitr_encryption_and_deletion_protection(default: RenderResult) -> None:
    table = default.one(TABLE)
    i = table.inputs
    assert (i["hashKey"], i["rangeKey"], i["billingMode"]) == ("pk", "sk", "PAY_PER_REQUEST")
    assert sorted((a["name"], a["type"]) for a in i["attributes"]) == [("pk", "S"), ("sk", "S")]
    assert i["pointInTimeRecovery"] == {"enabled": True}
    assert i["serverSideEncryption"]["enabled"] is True
    assert i["deletionProtectionEnabled"] is True
    assert table.protect and table.parent == default.one("gantry:aws:RolloutState").urn


def test_bucket_blocks_public_access_encrypts_versions_and_refuses_plain_http(default: RenderResult) -> None:
    bucket = default.one(BUCKET)
    assert bucket.protect and bucket.inputs.get("forceDestroy") is False
    block = _inputs(default, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "public-access")
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                          "restrictPublicBuckets"))
    sse = _inputs(default, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                  "encryption")
    rule = sse["rules"][0]  # type: ignore[index]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    versioning = _inputs(default, "aws:s3/bucketVersioning:BucketVersioning", "versioning")
    assert versioning["versioningConfiguration"] == {"status": "Enabled"}
    ownership = _inputs(default, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "ownership")
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    policy = json.loads(str(_inputs(default, "aws:s3/bucketPolicy:BucketPolicy", "policy")["policy"]))
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert by_sid["DenyUnencryptedPuts"]["Condition"] == {"Null": {"s3:x-amz-server-side-encryption": "true"}}
    assert all(s["Effect"] == "Deny" for s in policy["Statement"])


def test_state_url_output_is_a_valid_backend_url(default: RenderResult) -> None:
    url = parse_state_url(default.outputs["stateUrl"])
    assert isinstance(url, DynamoState)
    assert url.table == "team-rollouts" and url.region == "us-east-1"
    assert url.checkpoints is not None and url.checkpoints.prefix == "rollouts"


def test_runner_policy_is_least_privilege_on_this_table_and_prefix() -> None:
    doc = json.loads(runner_policy("arn:aws:dynamodb:us-east-1:1:table/t", "arn:aws:s3:::b"))
    resources = [s["Resource"] for s in doc["Statement"]]
    assert resources == ["arn:aws:dynamodb:us-east-1:1:table/t", "arn:aws:s3:::b/rollouts/*"]
    actions = [a for s in doc["Statement"] for a in s["Action"]]
    assert not [a for a in actions if "*" in a]
    assert "dynamodb:Scan" not in actions and "dynamodb:DeleteTable" not in actions


def test_a_customer_key_is_used_by_table_and_bucket() -> None:
    key = "arn:aws:kms:us-east-1:111122223333:key/abcd"
    result = render(RolloutStateProps(kms_key_arn=key, bucket_name="acme-rollout-checkpoints"))
    assert result.one(TABLE).inputs["serverSideEncryption"] == {"enabled": True, "kmsKeyArn": key}
    sse = _inputs(result, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                  "encryption")
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] == key  # type: ignore[index]
    assert parse_state_url(result.outputs["stateUrl"]).checkpoints == S3Location(  # type: ignore[union-attr]
        "acme-rollout-checkpoints", "rollouts")


def test_without_checkpoints_there_is_no_bucket_and_the_url_names_none() -> None:
    result = render(RolloutStateProps(checkpoints=False))
    assert result.of_type(BUCKET) == []
    assert parse_state_url(result.outputs["stateUrl"]) == DynamoState("team-rollouts", "us-east-1")


@pytest.mark.parametrize("props, field", [
    (RolloutStateProps(table_name="x"), "table_name"),
    (RolloutStateProps(bucket_name="Bad_Bucket"), "bucket_name"),
    (RolloutStateProps(noncurrent_version_days=0), "noncurrent_version_days"),
    (RolloutStateProps(bucket_name="fine-bucket", checkpoints=False), "bucket_name"),
])
def test_bad_props_fail_at_construction_naming_the_field(props: RolloutStateProps, field: str) -> None:
    with pytest.raises(SpecError) as info:
        render(props)
    assert info.value.field == field


def test_bucket_policy_covers_bucket_and_objects() -> None:
    doc = json.loads(bucket_policy("arn:aws:s3:::b"))
    assert doc["Statement"][0]["Resource"] == ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]


def test_the_policy_pack_finds_nothing_to_fault_in_prod(default: RenderResult) -> None:
    views = [v for v in resources_from_render(default) if v.type != "pulumi:pulumi:Stack"]
    policy = load_policy_config()
    findings = evaluate(views, build_settings(policy, TierName.PROD), policy.levels(TierName.PROD),
                        today=dt.date(2026, 12, 2))
    assert [(f.name, f.policy, f.status.value, f.message) for f in findings] == []


def test_the_pack_would_fault_an_unprotected_table_in_prod() -> None:
    # The pack really looks at these resources: the same component with protect off is a prod violation.
    result = render(RolloutStateProps(protect=False, tags={"owner": "platform", "env": "prod", "cost-center": "eng"}))
    views = [v for v in resources_from_render(result) if v.type != "pulumi:pulumi:Stack"]
    policy = load_policy_config()
    findings = evaluate(views, build_settings(policy, TierName.PROD), policy.levels(TierName.PROD),
                        today=dt.date(2026, 12, 2))
    faulted = {(f.type, f.policy) for f in findings if f.status is FindingStatus.VIOLATION}
    assert (TABLE, "stateful-protect") in faulted and (BUCKET, "stateful-protect") in faulted
