"""`gantry check` and CrossGuard reach identical verdicts over the same resources, waivers and expiries included.

Both go through ``policies.engine.evaluate_all``; this test drives CrossGuard the way the analyzer does (the
``pulumi_policy`` SDK's validate callbacks with its argument types) and compares what each side reports.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

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
from policies.config import build_settings, load_policy_config
from policies.crossguard import build_policies
from policies.engine import STACK_TYPE, FindingStatus, evaluate_all
from policies.model import Level, Resource, TierName
from policies.waivers import Waiver

TODAY = dt.date(2026, 6, 1)
STACK_URN = "urn:pulumi:test::proj::pulumi:pulumi:Stack::proj-test"
EKS = "aws:eks/cluster:Cluster"
PUBLIC = {"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}


def _eks(name: str, waive: str | None = None, **overrides: object) -> Resource:
    tags = {**b.TAGS, **({"gantry.io/waive": waive} if waive else {})}
    return b.res(EKS, b.eks_cluster(tags=tags, **overrides), name=name, parent=STACK_URN)


def _stack() -> tuple[list[Resource], list[Waiver]]:
    resources = [
        _eks("compliant"),
        # Waived by a current tag; a second failure on the same resource is not waived.
        _eks("tag-waived", "eks-endpoint-private=break-glass access until 2027-01-31", vpcConfig=PUBLIC,
             enabledClusterLogTypes=["api"]),
        # A tag naming an unknown policy: waiver-invalid, and the violation stands.
        _eks("bad-tag", "no-such-policy=because", vpcConfig=PUBLIC),
        # A tag with no reason: waiver-invalid too.
        _eks("no-reason", "eks-endpoint-private=", vpcConfig=PUBLIC),
        # An expired tag: the violation stands and the waiver is a finding of its own.
        _eks("expired-tag", "eks-endpoint-private=old exception until 2026-01-01", vpcConfig=PUBLIC),
        # Waived and expired through the file.
        _eks("file-waived", vpcConfig=PUBLIC),
        _eks("file-expired", encryptionConfig=None),
        # A stack rule: a Service selecting both colors, with a Deployment per color.
        b.res("kubernetes:apps/v1:Deployment", b.deployment("web-blue", b.app_labels(color="blue")), name="web-blue"),
        b.res("kubernetes:apps/v1:Deployment", b.deployment("web-green", b.app_labels(color="green")),
              name="web-green"),
        b.res("kubernetes:core/v1:Service", b.service(), name="web"),
        b.res("kubernetes:core/v1:Service", b.service(name="api", selector=b.app_labels(app="api")), name="api"),
    ]
    waivers = [
        Waiver("eks-endpoint-private", b.urn(EKS, "file-waived"), "vendor access", dt.date(2027, 1, 1), "file:0"),
        Waiver("eks-secrets-encryption", b.urn(EKS, "file-expired"), "migration", dt.date(2026, 5, 1), "file:1"),
        Waiver("service-selects-one-color", b.urn("kubernetes:core/v1:Service", "web"), "cut-over window",
               dt.date(2027, 1, 1), "file:2"),
        # Expired and matching nothing in this stack: not a finding (it belongs to another stack).
        Waiver("image-pinned", "urn:pulumi:other::*", "elsewhere", dt.date(2026, 1, 1), "file:3"),
    ]
    return resources, waivers


@dataclass(frozen=True, order=True)
class Verdict:
    policy: str
    urn: str | None
    status: str
    level: str
    message: str


_LEVEL = {EnforcementLevel.ADVISORY: Level.ADVISORY, EnforcementLevel.MANDATORY: Level.MANDATORY}


def _opts(r: Resource) -> PolicyResourceOptions:
    return PolicyResourceOptions(r.protect, list(r.ignore_changes), None, [], PolicyCustomTimeouts(0, 0, 0), [])


def _provider() -> PolicyProviderResource:
    return PolicyProviderResource("pulumi:providers:aws", {}, "urn:pulumi:test::proj::pulumi:providers:aws::p", "p")


def offline(resources: list[Resource], waivers: list[Waiver], tier: TierName, today: dt.date = TODAY
            ) -> tuple[set[Verdict], set[tuple[str, str]]]:
    config = load_policy_config()
    evaluation = evaluate_all(resources, build_settings(config, tier), config.levels(tier), waivers, today=today,
                              stack_urn=STACK_URN)
    urns = {r.urn for r in resources}
    verdicts = {Verdict(f.policy, f.urn if f.urn in urns else None, "violation", f.level.value, f.message)
                for f in evaluation.findings if f.status is not FindingStatus.WAIVED}
    waived = {(f.policy, f.urn) for f in evaluation.findings if f.status is FindingStatus.WAIVED}
    return verdicts, waived


def _collector(into: set[Verdict], policy: str, level: str, subject: str | None) -> Callable[..., None]:
    """CrossGuard's report_violation: a resource policy's subject is its resource; a stack policy names it."""

    def report(message: str, urn: str | None = None) -> None:
        into.add(Verdict(policy, subject if subject is not None else urn, "violation", level, message))

    return report


def crossguard(resources: list[Resource], waivers: list[Waiver], tier: TierName, today: dt.date = TODAY
               ) -> tuple[set[Verdict], set[tuple[str, str]], set[str]]:
    policies = [p for p in build_policies(load_policy_config(), tier, waivers=waivers, today=today)
                if not p.name.startswith("checkov")]
    stack = PolicyResource(STACK_TYPE, {}, STACK_URN, "proj-test", _opts(b.res(STACK_TYPE, {})), None, None, [], {})
    engine_view = [stack] + [PolicyResource(r.type, r.props, r.urn, r.name, _opts(r), _provider(), None, [], {})
                             for r in resources]
    verdicts: set[Verdict] = set()
    waived: set[tuple[str, str]] = set()
    not_applicable_reasons: set[str] = set()
    for policy in policies:
        assert policy.enforcement_level is not None
        level = _LEVEL[policy.enforcement_level].value
        if isinstance(policy, ResourceValidationPolicy):
            for r in resources:
                args = ResourceValidationArgs(r.type, r.props, r.urn, r.name, _opts(r), _provider(), {})
                try:
                    policy.validate(args, _collector(verdicts, policy.name, level, r.urn))
                except _NotApplicableError as exc:
                    if exc.reason and exc.reason.startswith("waived: "):
                        waived.add((policy.name, r.urn))
                        not_applicable_reasons.add(exc.reason)
        else:
            assert isinstance(policy, StackValidationPolicy)
            policy.validate(StackValidationArgs(engine_view, {}), _collector(verdicts, policy.name, level, None))
    return verdicts, waived, not_applicable_reasons


def _policies(verdicts: Iterable[Verdict]) -> set[tuple[str, str | None]]:
    return {(v.policy, v.urn) for v in verdicts}


@pytest.mark.parametrize("tier", list(TierName))
def test_gantry_check_and_crossguard_reach_identical_verdicts(tier: TierName) -> None:
    resources, waivers = _stack()
    offline_verdicts, offline_waived = offline(resources, waivers, tier)
    cg_verdicts, cg_waived, _ = crossguard(resources, waivers, tier)
    assert sorted(cg_verdicts) == sorted(offline_verdicts)
    # CrossGuard shows a waiver as a not-applicable reason on resource policies; a stack policy has no
    # per-subject status, so a waived stack finding is simply not reported (checked by the equality above).
    from policies.pack import BY_ID

    assert cg_waived == {w for w in offline_waived if BY_ID[w[0]].kind == "resource"}


def test_the_shared_verdicts_cover_waivers_invalid_tags_and_expiry() -> None:
    resources, waivers = _stack()
    verdicts, waived, reasons = crossguard(resources, waivers, TierName.PROD)
    found = _policies(verdicts)

    def urn(name: str) -> str:
        return b.urn(EKS, name)

    # Invalid tags are mandatory findings under CrossGuard too (they used to be dropped).
    assert {("waiver-invalid", urn("bad-tag")), ("waiver-invalid", urn("no-reason"))} <= found
    # Expired waivers, on a tag or in the file, are mandatory findings under CrossGuard too.
    expired = {v for v in verdicts if v.policy == "waiver-expired"}
    assert {v.urn for v in expired} == {urn("expired-tag"), urn("file-expired")}
    assert all(v.level == "mandatory" for v in expired)
    assert {("eks-endpoint-private", urn("expired-tag")), ("eks-secrets-encryption", urn("file-expired"))} <= found
    # Current waivers hold, and only for the policy they name.
    assert {("eks-endpoint-private", urn("tag-waived")), ("eks-endpoint-private", urn("file-waived"))} <= waived
    assert ("eks-control-plane-logging", urn("tag-waived")) in found
    assert ("eks-endpoint-private", urn("tag-waived")) not in found
    assert ("service-selects-one-color", b.urn("kubernetes:core/v1:Service", "web")) not in found
    assert any(r.startswith("waived: break-glass access (tags.gantry.io/waive, until 2027-01-31)") for r in reasons)
    # The waiver for another stack is not this stack's finding.
    assert not any("image-pinned" in v.message for v in expired)


def test_after_the_expiry_date_a_waiver_stops_applying_on_both_sides() -> None:
    resources, waivers = _stack()
    later = dt.date(2027, 2, 1)
    offline_verdicts, _ = offline(resources, waivers, TierName.PROD, later)
    cg_verdicts, cg_waived, _ = crossguard(resources, waivers, TierName.PROD, later)
    assert sorted(cg_verdicts) == sorted(offline_verdicts)
    assert cg_waived == set()
    assert ("eks-endpoint-private", b.urn(EKS, "tag-waived")) in _policies(cg_verdicts)
