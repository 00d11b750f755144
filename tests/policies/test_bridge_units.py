"""The Checkov bridge's pure parts and its process boundary, without Checkov: names, references, levels,
waivers by check id, tier resolution, and a driver that hangs, crashes or lies."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from infra.commands.check import check_stack
from infra.render import render_callable
from policies.bridge.catalog import MANDATORY_IN_PROD, default_level
from policies.bridge.findings import merge
from policies.bridge.runner import (
    BridgeFailed,
    BridgeUnavailable,
    CheckovSession,
    CheckRecord,
    ScanResult,
    checkov_python,
    parse_output,
)
from policies.bridge.translate import Bundle, Framework, Node, nodes_from_render, snake, tf_type, translate
from policies.config import PolicyConfigError, parse_policy_config
from policies.engine import BridgeMode, Finding, FindingStatus, resolve_tier, tier_from_stack_name
from policies.model import Level, Resource, TierName
from policies.waivers import WaiverError, parse_waivers, tag_waivers

REPO = Path(__file__).resolve().parents[2]
INSECURE = REPO / "tests" / "fixtures" / "insecure_project"


@pytest.mark.parametrize("token, expected", [
    ("aws:s3/bucket:Bucket", "aws_s3_bucket"),
    ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "aws_s3_bucket_public_access_block"),
    ("aws:ec2/securityGroup:SecurityGroup", "aws_security_group"),
    ("aws:ec2/vpc:Vpc", "aws_vpc"),
    ("aws:ec2/flowLog:FlowLog", "aws_flow_log"),
    ("aws:rds/instance:Instance", "aws_db_instance"),
    ("aws:iam/rolePolicy:RolePolicy", "aws_iam_role_policy"),
    ("aws:ecs/taskDefinition:TaskDefinition", "aws_ecs_task_definition"),
    ("aws:cloudwatch/logGroup:LogGroup", "aws_cloudwatch_log_group"),
    ("aws:lb/loadBalancer:LoadBalancer", "aws_lb"),
    ("gcp:storage/bucketIAMMember:BucketIAMMember", "google_storage_bucket_iam_member"),
    ("gcp:compute/firewall:Firewall", "google_compute_firewall"),
    ("gcp:container/nodePool:NodePool", "google_container_node_pool"),
    ("azure-native:storage:StorageAccount", None),
    ("kubernetes:apps/v1:Deployment", None),
])
def test_pulumi_tokens_map_onto_terraform_types(token: str, expected: str | None) -> None:
    assert tf_type(token) == expected


@pytest.mark.parametrize("name, expected", [("ipv6CidrBlocks", "ipv6_cidr_blocks"), ("kmsKeyId", "kms_key_id"),
                                            ("bucketIAMMember", "bucket_iam_member"), ("arn", "arn")])
def test_snake_case(name: str, expected: str) -> None:
    assert snake(name) == expected


def _network() -> None:
    import pulumi_aws as aws

    vpc = aws.ec2.Vpc("main", cidr_block="10.0.0.0/16")
    aws.ec2.FlowLog("main", vpc_id=vpc.id, traffic_type="ALL", log_destination="arn:aws:logs:x")
    # A literal that happens to equal nothing and a hostile name: neither may become a reference or markup.
    aws.ec2.SecurityGroup("[bold]web sg[/bold]", vpc_id=vpc.id, description="vpc-literal")


def test_references_follow_the_renders_dependencies_and_output_is_deterministic() -> None:
    first = translate_render(_network)
    doc = json.loads(first.files["main.tf.json"])["resource"]
    [vpc] = doc["aws_vpc"]  # names are unique across types: the VPC and its flow log are both "main"
    [flow] = doc["aws_flow_log"].values()
    assert flow["vpc_id"] == "${aws_vpc." + vpc + ".id}" and {vpc, *doc["aws_flow_log"]} == {"main", "main_2"}
    sg = next(iter(doc["aws_security_group"].values()))
    assert sg["vpc_id"] == "${aws_vpc." + vpc + ".id}" and sg["description"] == "vpc-literal"
    assert all(c.isalnum() or c in "_-" for c in next(iter(doc["aws_security_group"])))
    assert first.references == 2
    assert translate_render(_network).files == first.files  # same program, same bytes


def translate_render(program: Callable[[], None]) -> Bundle:
    result = render_callable(program, project="t", stack="prod")
    return translate(nodes_from_render(result.resources))


def test_ecs_container_definitions_are_decoded_without_false_flags() -> None:
    defs = json.dumps([{"name": "web", "image": "nginx:1.27", "privileged": False, "readonlyRootFilesystem": True}])
    bundle = translate([Node("urn:t", "aws:ecs/taskDefinition:TaskDefinition", "web",
                             {"family": "web", "containerDefinitions": defs})])
    body = json.loads(bundle.files["main.tf.json"])["resource"]["aws_ecs_task_definition"]["web"]
    # Keys stay in the AWS API's camelCase; an explicit false would read as a truthy [False] in Checkov.
    assert body["container_definitions"] == [{"name": "web", "image": "nginx:1.27", "readonlyRootFilesystem": True}]


def test_arm_and_manifests_and_untranslatable_types() -> None:
    nodes = [
        Node("urn:sa", "azure-native:storage:StorageAccount", "sa", {
            "accountName": "acct1", "resourceGroupName": "rg", "location": "westeurope", "sku": {"name": "x"},
            "enableHttpsTrafficOnly": False, "networkRuleSet": {"defaultAction": "Allow"}}),
        Node("urn:dep", "kubernetes:apps/v1:Deployment", "web", {"metadata": {"name": "web"}, "spec": {
            "replicas": 2.0}}),
        Node("urn:rnd", "random:index/randomPet:RandomPet", "pet", {}),
        Node("urn:comp", "gantry:aws:EksCluster", "c", {}, custom=False),
    ]
    bundle = translate(nodes)
    template = json.loads(bundle.files["azure/template.json"])
    [sa] = template["resources"]
    assert sa["type"] == "Microsoft.Storage/storageAccounts" and sa["name"] == "acct1" and "sku" in sa
    assert sa["properties"] == {"supportsHttpsTrafficOnly": False, "networkAcls": {"defaultAction": "Allow"}}
    manifest = json.loads(bundle.files["k8s/0000.yaml"])
    assert manifest["apiVersion"] == "apps/v1" and manifest["metadata"]["namespace"] == "default"
    assert manifest["spec"]["replicas"] == 2 and isinstance(manifest["spec"]["replicas"], int)
    assert bundle.lookup(Framework.KUBERNETES, "Deployment.default.web") == "urn:dep"
    assert bundle.lookup(Framework.KUBERNETES, "Pod.default.web.app-web") == "urn:dep"  # graph checks' pods
    assert bundle.lookup(Framework.ARM, "Microsoft.Storage/storageAccounts.acct1") == "urn:sa"
    assert set(bundle.skipped) == {"random:index/randomPet:RandomPet"}


@pytest.mark.parametrize("stack, tier", [("prod", TierName.PROD), ("production-eu", TierName.PROD),
                                         ("acme/shop/prod-us", TierName.PROD), ("staging", TierName.STAGING),
                                         ("stage-2", TierName.STAGING), ("dev", TierName.DEV),
                                         ("feature-x", TierName.DEV), ("preprod", TierName.DEV)])
def test_tier_from_the_stack_name(stack: str, tier: TierName) -> None:
    assert tier_from_stack_name(stack) is tier


def test_tier_precedence_flag_then_stack_config_then_name() -> None:
    assert resolve_tier("dev", TierName.PROD, TierName.STAGING) == (TierName.PROD, "--tier")
    assert resolve_tier("dev", None, TierName.STAGING) == (TierName.STAGING, "gantry:tier")
    assert resolve_tier("prod-eu", None, None) == (TierName.PROD, "stack name")


def test_check_levels_in_policy_config() -> None:
    config = parse_policy_config({"checkov": {"level": "advisory", "checks": {
        "CKV_AWS_20": {"level": "advisory", "tiers": {"prod": "disabled"}}, "CKV_K8S_43": "mandatory"}}}, "t")
    assert config.check_level("CKV_AWS_20", TierName.PROD) is Level.DISABLED
    assert config.check_level("CKV_AWS_20", TierName.DEV) is Level.ADVISORY
    assert config.check_level("CKV_K8S_43", TierName.DEV) is Level.MANDATORY
    assert config.check_level("CKV_AWS_24", TierName.PROD) is Level.MANDATORY  # curated
    assert config.check_level("CKV_AWS_24", TierName.STAGING) is Level.ADVISORY
    assert not parse_policy_config({"checkov": {"tiers": {"dev": "disabled"}}}, "t").bridge_enabled(TierName.DEV)
    assert all(default_level(c, TierName.PROD) is Level.MANDATORY for c in MANDATORY_IN_PROD)


@pytest.mark.parametrize("doc, fragment", [
    ({"CKV_AWS_20": "disabled"}, "set Checkov check levels under checkov.checks.CKV_AWS_20"),
    ({"checkov": {"checks": {"aws-20": "advisory"}}}, "checkov.checks.aws-20 must be a Checkov check id"),
    ({"checkov": {"checks": {"CKV_AWS_20": "blocking"}}}, "checkov.checks.CKV_AWS_20 must be one of"),
    ({"checkov": {"checks": {"CKV_AWS_20": {"tiers": {"qa": "advisory"}}}}}, "CKV_AWS_20.tiers.qa must be one of"),
    ({"checkov": {"checks": []}}, "checkov.checks must be an object"),
])
def test_bad_check_levels_name_the_field(doc: dict[str, object], fragment: str) -> None:
    with pytest.raises(PolicyConfigError) as exc:
        parse_policy_config(doc, "policy.json")
    assert fragment in str(exc.value)


def test_waivers_name_check_ids_in_the_file_and_in_tags() -> None:
    [w] = parse_waivers({"waivers": [{"policy": "CKV_AWS_20", "urn": "*::site", "reason": "public website",
                                      "expires": "2099-01-01"}]}, "w.yaml")
    assert w.covers("CKV_AWS_20", "urn:pulumi:prod::p::aws:s3/bucket:Bucket::site")
    with pytest.raises(WaiverError, match="policy id of the pack or a Checkov check id"):
        parse_waivers({"waivers": [{"policy": "CKV_NOPE", "urn": "*", "reason": "r", "expires": "2099-01-01"}]}, "w")
    r = Resource("urn:x", "aws:s3/bucket:Bucket", "site", {"tags": {
        "gantry.io/waive": "CKV_AWS_20=public website until 2099-01-01; CKV2_AWS_6="}})
    waivers, problems = tag_waivers(r)
    assert [(w.policy, w.expires) for w in waivers] == [("CKV_AWS_20", dt.date(2099, 1, 1))]
    assert len(problems) == 1 and "no reason" in problems[0].message


def _rec(cid: str, resource: str = "aws_s3_bucket.site") -> CheckRecord:
    return CheckRecord(cid, f"name of {cid}", Framework.TERRAFORM, resource, "main.tf.json", (1, 2))


def test_merge_aliases_dedupes_and_reports_unmapped() -> None:
    urn = "urn:pulumi:prod::p::aws:eks/cluster:Cluster::site"
    bundle = translate([Node(urn, "aws:eks/cluster:Cluster", "site", {"name": "site"})])
    views = [Resource(urn, "aws:eks/cluster:Cluster", "site", {})]
    gantry = [Finding("eks-secrets-encryption", FindingStatus.VIOLATION, Level.MANDATORY, urn, "t", "site", "m")]
    scan = ScanResult("3.3", [_rec("CKV_AWS_58", "aws_eks_cluster.site"), _rec("CKV_AWS_37", "aws_eks_cluster.site"),
                              _rec("CKV_AWS_339", "aws_eks_cluster.site"), _rec("CKV_AWS_339", "aws_eks_cluster.site"),
                              _rec("CKV_AWS_999", "aws_eks_cluster.site"), _rec("CKV_AWS_1", "aws_vpc.ghost")], [])
    out, summary = merge(gantry, scan, bundle, views, lambda c: Level.ADVISORY, [], {}, dt.date(2026, 12, 2))
    assert out[0].aliases == ("CKV_AWS_58",)  # same problem, once, under Gantry's id
    # CKV_AWS_37 and CKV_AWS_339 judge what Gantry judges and Gantry passed: nothing of their own.
    assert [f.policy for f in out[1:]] == ["CKV_AWS_999"]
    assert out[1].check_name == "name of CKV_AWS_999" and out[1].source == "checkov"
    assert summary.unmapped == ["CKV_AWS_1 terraform_json:aws_vpc.ghost"] and summary.aliased == 3


def _fake_python(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "python"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); its state says it is gone.
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split(") ", 1)[-1][:1] != "Z"


def test_a_hanging_checkov_times_out_and_is_reaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANTRY_CHECKOV_TIMEOUT", "1")
    session = CheckovSession(_fake_python(tmp_path, "echo ready; exec sleep 60")).start()
    assert session.proc is not None
    pid = session.proc.pid
    bundle = translate([Node("urn:b", "aws:s3/bucket:Bucket", "b", {"bucket": "b"})])
    with pytest.raises(BridgeFailed, match="did not finish within 1 s"):
        session.scan(bundle)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


@pytest.mark.parametrize("stdout, stderr, fragment", [
    ("", "Traceback...\nModuleNotFoundError: No module named 'checkov'", None),
    ("", "boom", "did not start: boom"),
    ("ready\nnot json", "", "returned no result"),
    ("ready\n{\"version\": \"3\", \"results\": []}", "", r"0 result\(s\) for 1 job\(s\)"),
])
def test_garbled_driver_output_is_a_clear_failure(stdout: str, stderr: str, fragment: str | None) -> None:
    if fragment is None:
        with pytest.raises(BridgeUnavailable, match=r"run scripts/setup\.sh"):
            parse_output(stdout, stderr, 1)
        return
    with pytest.raises(BridgeFailed, match=fragment):
        parse_output(stdout, stderr, 1)


def test_missing_checkov_is_named_with_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GANTRY_CHECKOV_PYTHON", str(tmp_path / "nope" / "python"))
    with pytest.raises(BridgeUnavailable) as exc:
        checkov_python()
    assert "scripts/setup.sh" in str(exc.value) and "--checkov off" in str(exc.value)


def test_bridge_modes_when_checkov_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from policies.config import load_policy_config

    monkeypatch.setenv("GANTRY_CHECKOV_PYTHON", str(tmp_path / "nope"))
    report = check_stack(INSECURE, "dev", load_policy_config(), [], bridge=BridgeMode.AUTO)
    assert report.bridge is not None and report.bridge.status.startswith("unavailable:")
    assert {f.source for f in report.findings} == {"gantry"}
    with pytest.raises(BridgeUnavailable):
        check_stack(INSECURE, "dev", load_policy_config(), [], bridge=BridgeMode.ON)


def test_a_crashing_checkov_fails_closed_in_prod(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from policies.config import load_policy_config

    monkeypatch.setenv("GANTRY_CHECKOV_PYTHON", str(_fake_python(tmp_path, "echo ready; echo boom >&2; exit 3")))
    prod = check_stack(INSECURE, "dev", load_policy_config(), [], tier=TierName.PROD)
    [error] = [f for f in prod.findings if f.policy == "checkov"]
    assert error.status is FindingStatus.ERROR and error.blocking and "Checkov's driver returned no result" in \
        error.message
    assert prod.bridge is not None and prod.bridge.status.startswith("failed:")


def test_ecs_container_definitions_mask_only_their_secret_values() -> None:
    def program() -> None:
        import pulumi
        import pulumi_aws as aws

        from infra.config import SecretValue

        password = pulumi.Output.secret(SecretValue("shop:dbPassword"))  # how a secure: config value renders
        defs = password.apply(lambda p: json.dumps([{"name": "web", "image": "nginx:latest", "environment": [
            {"name": "DB_HOST", "value": "orders.internal"}, {"name": "DB_PASSWORD", "value": p},
            {"name": "DSN", "value": f"postgres://app:{p}@orders/db"}]}]))
        aws.ecs.TaskDefinition("web", family="web", container_definitions=defs)
        # Secret text that is not a container-definitions document stays wholly masked.
        aws.ssm.Parameter("blob", type="String", value=password.apply(lambda p: f"[{{\"k\": \"{p}\"}}]"))

    result = render_callable(program, project="shop", stack="prod")
    task = result.one("aws:ecs/taskDefinition:TaskDefinition").inputs["containerDefinitions"]
    assert "[secret:" not in task and "shop:dbPassword" not in task
    [container] = json.loads(task)
    assert container["image"] == "nginx:latest"
    assert {e["name"]: e["value"] for e in container["environment"]} == {
        "DB_HOST": "orders.internal", "DB_PASSWORD": "[secret]", "DSN": "postgres://app:[secret]@orders/db"}
    assert result.one("aws:ssm/parameter:Parameter").inputs["value"] == "[secret]"
    # And the rules see the unpinned image and the secret in plain environment.
    from policies.config import build_settings, load_policy_config
    from policies.engine import evaluate, resources_from_render

    views = [v for v in resources_from_render(result) if v.type.startswith("aws:ecs")]
    config = load_policy_config()
    found = {f.policy for f in evaluate(views, build_settings(config, TierName.PROD), config.levels(TierName.PROD))}
    assert {"image-pinned", "secrets-not-in-env"} <= found
