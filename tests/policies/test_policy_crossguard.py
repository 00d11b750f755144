"""The CrossGuard adapter: the same rules as `gantry check`, called the way the analyzer calls them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError

from policies import fixtures as b
from policies.config import load_policy_config
from policies.crossguard import build_policies
from policies.model import Level, TierName
from policies.pack import RULES

REPO = Path(__file__).resolve().parents[2]


def _opts(ignore_changes: list[str] | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(False, ignore_changes or [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def _args(type_: str, props: dict[str, Any], name: str = "r", config: dict[str, Any] | None = None,
          provider: dict[str, Any] | None = None) -> ResourceValidationArgs:
    prov = PolicyProviderResource("pulumi:providers:aws", provider, "urn:p", "p") if provider else None
    return ResourceValidationArgs(type_, props, b.urn(type_, name), name, _opts(), prov, config or {})


def _policy(tier: TierName, policy_id: str) -> Any:
    return next(p for p in build_policies(load_policy_config(), tier) if p.name == policy_id)


def _run(policy: ResourceValidationPolicy, args: ResourceValidationArgs) -> tuple[list[str], str | None]:
    messages: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        messages.append(message)

    try:
        policy.validate(args, report)
    except _NotApplicableError as exc:
        return messages, exc.reason or "not applicable"
    return messages, None


def test_one_policy_per_rule_with_levels_from_the_config_file() -> None:
    prod = build_policies(load_policy_config(), TierName.PROD)
    dev = build_policies(load_policy_config(), TierName.DEV)
    # One per rule, the two waiver policies, then the Checkov bridge as two stack policies (blocking and
    # advisory checks).
    assert [p.name for p in prod] == [*(r.id for r in RULES), "waiver-invalid", "waiver-expired", "checkov",
                                      "checkov-advisory"]
    kinds = {p.name: type(p) for p in prod}
    assert kinds["cost-budget"] is StackValidationPolicy and kinds["image-pinned"] is ResourceValidationPolicy
    level = {p.name: p.enforcement_level for p in prod}
    dev_level = {p.name: p.enforcement_level for p in dev}
    assert level["readonly-root-filesystem"] is EnforcementLevel.MANDATORY
    assert dev_level["readonly-root-filesystem"] is EnforcementLevel.ADVISORY
    # Every property in the shipped config is declared, so the file passes --policy-pack-config.
    for p in prod:
        if p.name not in ("checkov-advisory", "waiver-invalid", "waiver-expired"):  # not configurable
            assert p.config_schema is not None and "tiers" in p.config_schema.properties


def test_resource_policy_reports_the_rule_message() -> None:
    policy = _policy(TierName.PROD, "eks-endpoint-private")
    bad = _args("aws:eks/cluster:Cluster", b.eks_cluster(vpcConfig={"endpointPublicAccess": True}))
    messages, _ = _run(policy, bad)
    assert len(messages) == 1 and "endpointPublicAccess" in messages[0]
    assert _run(policy, _args("aws:eks/cluster:Cluster", b.eks_cluster())) == ([], None)


def test_not_applicable_is_reported_as_such() -> None:
    policy = _policy(TierName.PROD, "eks-endpoint-private")
    assert _run(policy, _args("aws:s3/bucket:Bucket", {})) == ([], "not applicable")


def test_policy_pack_config_properties_reach_the_rule() -> None:
    policy = _policy(TierName.PROD, "k8s-version-supported")
    cluster = b.eks_cluster(version="1.30")
    assert _run(policy, _args("aws:eks/cluster:Cluster", cluster))[0]
    allowed = _args("aws:eks/cluster:Cluster", cluster, config={"supportedVersions": ["1.30"]})
    assert _run(policy, allowed) == ([], None)


def test_provider_default_tags_count() -> None:
    policy = _policy(TierName.PROD, "cloud-required-tags")
    untagged = b.eks_cluster(tags=None)
    assert _run(policy, _args("aws:eks/cluster:Cluster", untagged))[0]
    ok = _args("aws:eks/cluster:Cluster", untagged, provider={"defaultTags": {"tags": b.TAGS}})
    assert _run(policy, ok) == ([], None)


def test_a_waive_tag_turns_the_violation_into_a_not_applicable_reason() -> None:
    policy = _policy(TierName.PROD, "eks-endpoint-private")
    props = b.eks_cluster(vpcConfig={"endpointPublicAccess": True},
                          tags={**b.TAGS, "gantry.io/waive": "eks-endpoint-private=break-glass access"})
    messages, reason = _run(policy, _args("aws:eks/cluster:Cluster", props))
    assert messages == [] and reason is not None and reason.startswith("waived: break-glass access")


def test_a_rule_that_raises_is_reported_not_crashing_the_pack(monkeypatch: pytest.MonkeyPatch) -> None:
    from policies.pack import BY_ID, Rule

    def boom(r: Any, s: Any) -> Any:
        raise RuntimeError("oops")

    rule = BY_ID["eks-endpoint-private"]
    broken = Rule(rule.id, rule.category, Level.MANDATORY, rule.description, rule.remediation, resource=boom)
    monkeypatch.setattr("policies.crossguard.RULES", tuple(broken if r.id == rule.id else r for r in RULES))
    messages, _ = _run(_policy(TierName.PROD, rule.id), _args("aws:eks/cluster:Cluster", b.eks_cluster()))
    assert messages == ["rule eks-endpoint-private raised RuntimeError: oops"]
    # The other policies of the same pack are unaffected.
    assert _run(_policy(TierName.PROD, "eks-secrets-encryption"), _args("aws:eks/cluster:Cluster",
                                                                        b.eks_cluster())) == ([], None)


def _pr(type_: str, props: dict[str, Any], name: str, ignore: list[str] | None = None) -> PolicyResource:
    return PolicyResource(type_, props, b.urn(type_, name), name, _opts(ignore), None, None, [], {})


def test_stack_policy_sees_every_resource() -> None:
    policy = _policy(TierName.PROD, "service-selects-one-color")
    resources = [
        _pr("kubernetes:apps/v1:Deployment", b.deployment("web-blue", b.app_labels(color="blue")), "web-blue"),
        _pr("kubernetes:apps/v1:Deployment", b.deployment("web-green", b.app_labels(color="green")), "web-green"),
        _pr("kubernetes:core/v1:Service", b.service(), "web"),
    ]
    reported: list[tuple[str, str | None]] = []
    policy.validate(StackValidationArgs(resources, {}), lambda msg, urn=None: reported.append((msg, urn)))
    assert [urn for _, urn in reported] == [b.urn("kubernetes:core/v1:Service", "web")]
    assert "blue and green" in reported[0][0]


def test_the_pack_entry_point_starts_a_server_on_localhost() -> None:
    # The analyzer protocol: the pack prints its gRPC port on stdout, then serves until killed.
    proc = subprocess.Popen([sys.executable, str(REPO / "policies" / "__main__.py")], cwd=REPO / "policies",
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.isdigit() and 0 < int(line) < 65536, proc.stderr.read() if proc.stderr else line
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_proxied_props_from_the_analyzer_are_read_like_plain_ones() -> None:
    from pulumi_policy.proxy import unknown_checking_proxy

    policy = _policy(TierName.PROD, "eks-control-plane-logging")
    two_types = b.eks_cluster(enabledClusterLogTypes=["api", "audit"])
    messages, _ = _run(policy, _args("aws:eks/cluster:Cluster", unknown_checking_proxy(two_types)))
    assert len(messages) == 1 and "authenticator" in messages[0]
    assert _run(policy, _args("aws:eks/cluster:Cluster", unknown_checking_proxy(b.eks_cluster()))) == ([], None)


def test_values_unknown_during_preview_are_left_to_crossguard() -> None:
    from pulumi.runtime.rpc import UNKNOWN
    from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

    # A key created in the same preview has no ARN yet; that is not a violation and not a rule error.
    props = b.eks_cluster(encryptionConfig={"resources": ["secrets"], "provider": {"keyArn": UNKNOWN}})
    policy = _policy(TierName.PROD, "eks-secrets-encryption")
    with pytest.raises(UnknownValueError):
        _run(policy, _args("aws:eks/cluster:Cluster", unknown_checking_proxy(props)))


def test_pack_tier_and_stack_policy_come_from_the_engine_config(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from policies.config import StackPolicy
    from policies.crossguard import pack_tier, stack_policy

    monkeypatch.delenv("GANTRY_TIER", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    assert pack_tier() is TierName.PROD and stack_policy() == StackPolicy()
    # The engine passes stack config to analyzers as PULUMI_CONFIG; structured values are JSON text.
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({
        "gantry:tier": "staging",
        "gantry:policy": json.dumps({"monthlyBudgetUsd": 4000, "supportedVersions": ["1.33"]})}))
    assert pack_tier() is TierName.STAGING
    assert stack_policy() == StackPolicy(monthly_budget_usd=4000.0, supported_versions=("1.33",))
    monkeypatch.setenv("GANTRY_TIER", "dev")
    assert pack_tier() is TierName.DEV
