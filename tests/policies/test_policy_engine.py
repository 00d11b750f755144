"""The offline engine: levels per tier, rule errors, waivers from the file and from tags, expiry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest

from policies import fixtures as b
from policies.config import PolicyConfig, PolicyConfigError, build_settings, parse_policy_config
from policies.engine import Finding, FindingStatus, evaluate
from policies.model import Level, Outcome, Resource, Settings, StackOutcome, TierName
from policies.pack import BY_ID, RULES, Rule
from policies.waivers import WaiverError, parse_waivers

TODAY = dt.date(2026, 11, 27)
PUBLIC = b.res("aws:eks/cluster:Cluster", b.eks_cluster(
    vpcConfig={"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}), name="prod")


def run(resources: Sequence[Resource], *, tier: TierName = TierName.PROD, config: PolicyConfig | None = None,
        waivers_doc: object = None, rules: Sequence[Rule] = RULES) -> list[Finding]:
    cfg = config or PolicyConfig()
    return evaluate(resources, b.settings(tier), cfg.levels(tier), parse_waivers(waivers_doc, "w.yaml"),
                    today=TODAY, rules=rules)


def ids(findings: list[Finding], status: FindingStatus = FindingStatus.VIOLATION) -> set[str]:
    return {f.policy for f in findings if f.status is status}


def test_secure_resources_give_no_findings() -> None:
    resources = [b.res("aws:eks/cluster:Cluster", b.eks_cluster(), name="prod", protect=True),
                 b.res("aws:eks/addon:Addon", {"addonName": "vpc-cni", "clusterName": "prod", "tags": b.TAGS,
                                               "configurationValues": '{"enableNetworkPolicy": "true"}'}, name="cni")]
    assert run(resources) == []


def test_finding_carries_the_fields_the_json_report_needs() -> None:
    finding = next(f for f in run([PUBLIC]) if f.policy == "eks-endpoint-private")
    doc = finding.to_json()
    assert {k: doc[k] for k in ("policy", "status", "level", "urn", "type", "name")} == {
        "policy": "eks-endpoint-private", "status": "violation", "level": "mandatory", "urn": PUBLIC.urn,
        "type": "aws:eks/cluster:Cluster", "name": "prod"}
    assert "0.0.0.0/0" in str(doc["message"])


def test_levels_follow_the_tier_from_one_config_file() -> None:
    config = parse_policy_config({"eks-endpoint-private": {"level": "mandatory", "tiers": {"dev": "advisory"}}},
                                 "cfg.json")
    prod = next(f for f in run([PUBLIC], config=config) if f.policy == "eks-endpoint-private")
    dev = next(f for f in run([PUBLIC], tier=TierName.DEV, config=config) if f.policy == "eks-endpoint-private")
    assert (prod.level, prod.blocking) == (Level.MANDATORY, True)
    assert (dev.level, dev.blocking) == (Level.ADVISORY, False)


def test_disabled_rules_do_not_run() -> None:
    config = parse_policy_config({"eks-endpoint-private": "disabled"}, "cfg.json")
    assert "eks-endpoint-private" not in ids(run([PUBLIC], config=config))


def test_shipped_config_makes_hardening_mandatory_in_prod_only() -> None:
    from policies.config import load_policy_config

    config = load_policy_config()
    assert config.level_for("readonly-root-filesystem", TierName.PROD) is Level.MANDATORY
    assert config.level_for("readonly-root-filesystem", TierName.DEV) is Level.ADVISORY
    assert config.level_for("eks-control-plane-logging", TierName.DEV) is Level.ADVISORY
    assert config.level_for("eks-endpoint-private", TierName.DEV) is Level.MANDATORY


@pytest.mark.parametrize("doc, fragment", [
    ({"no-such-rule": "mandatory"}, "no-such-rule must be a policy id"),
    ({"image-pinned": "blocking"}, "image-pinned.level must be one of advisory, mandatory, disabled"),
    ({"image-pinned": {"tiers": {"qa": "advisory"}}}, "image-pinned.tiers.qa must be one of dev, staging, prod"),
    ({"image-pinned": {"budget": 1}}, "image-pinned.budget is not a known property"),
])
def test_bad_policy_config_names_the_key_and_the_fix(doc: object, fragment: str) -> None:
    with pytest.raises(PolicyConfigError) as info:
        parse_policy_config(doc, "cfg.json")
    assert fragment in str(info.value) and str(info.value).startswith("cfg.json: ")


@pytest.mark.parametrize("doc, line", [
    ({"kms-key-rotation": {"maxDays": "90"}},
     "cfg.json: kms-key-rotation.maxDays must be a whole number of days from 1 to 365, but '90' was given"),
    ({"kms-key-rotation": {"maxDays": 400}},
     "cfg.json: kms-key-rotation.maxDays must be a whole number of days from 1 to 365, but 400 was given"),
    ({"kms-deletion-protection": {"minDays": True}},
     "cfg.json: kms-deletion-protection.minDays must be a whole number of days from 7 to 30, but True was given"),
    ({"cost-budget": {"threshold": "high"}},
     "cfg.json: cost-budget.threshold must be a number above 0 and at most 1: the share of the budget pools may "
     "use, but 'high' was given"),
    ({"cloud-required-tags": {"requiredTags": "owner"}},
     "cfg.json: cloud-required-tags.requiredTags must be a list of tag keys as strings, such as [\"owner\", "
     "\"env\"], but 'owner' was given"),
    ({"k8s-version-supported": {"supportedVersions": ["1.33", 1.34]}},
     "cfg.json: k8s-version-supported.supportedVersions.1 must be a list of Kubernetes minor versions as strings, "
     "such as [\"1.32\", \"1.33\"], but 1.34 was given"),
    ({"dr-dns-ttl-within-rto": {"maxTtlSeconds": 0}},
     "cfg.json: dr-dns-ttl-within-rto.maxTtlSeconds must be a whole number of seconds from 1 to 3600 (default 60: "
     "a fifth of the seed's 5-minute RTO), but 0 was given"),
])
def test_rule_options_are_checked_by_type_not_only_by_name(doc: object, line: str) -> None:
    # These used to fall back to the defaults silently (the rule then enforced something else than configured).
    with pytest.raises(PolicyConfigError) as info:
        parse_policy_config(doc, "cfg.json")
    assert str(info.value) == line


def test_valid_rule_options_reach_the_rules() -> None:
    from policies.rule import options_of
    from policies.rules.cost.cost_budget import Options as BudgetOptions
    from policies.rules.dr.dr_dns_ttl_within_rto import Options as TtlOptions
    from policies.rules.keys.kms_key_rotation import Options as RotationOptions

    config = parse_policy_config({"kms-key-rotation": {"maxDays": 30}, "cost-budget": {"threshold": 1},
                                  "dr-dns-ttl-within-rto": {"maxTtlSeconds": 20}}, "cfg.json")
    settings = build_settings(config, TierName.PROD, prices={})
    assert options_of(settings, "kms-key-rotation", RotationOptions).max_days == 30
    assert options_of(settings, "cost-budget", BudgetOptions).threshold == 1.0
    assert options_of(settings, "dr-dns-ttl-within-rto", TtlOptions).max_ttl_seconds == 20
    defaults = build_settings(parse_policy_config({}, "cfg.json"), TierName.PROD, prices={})
    assert options_of(defaults, "dr-dns-ttl-within-rto", TtlOptions).max_ttl_seconds == 60


def test_a_policy_config_error_is_an_input_error_of_the_gantry_tree() -> None:
    from components.errors import ExitCode, InputError
    from components.validation import SpecError
    from policies.waivers import WaiverError

    for error in (PolicyConfigError, WaiverError, SpecError):
        assert issubclass(error, InputError) and issubclass(error, ValueError)
        assert error.exit_code is ExitCode.USAGE


def test_a_rule_that_raises_is_an_error_and_the_others_still_run() -> None:
    def broken(r: Resource, s: Settings) -> Outcome:
        raise KeyError("vpcConfig")

    target = BY_ID["eks-endpoint-private"]
    others = [r for r in RULES if r.id != target.id]
    boom = Rule(target.id, target.category, Level.MANDATORY, "d.", "fix it", resource=broken)
    findings = run([PUBLIC], rules=[boom, *others])
    errors = [f for f in findings if f.status is FindingStatus.ERROR]
    assert [(f.policy, f.urn) for f in errors] == [("eks-endpoint-private", PUBLIC.urn)]
    assert "KeyError" in errors[0].message and errors[0].blocking
    assert "eks-secrets-encryption" not in ids(findings)  # compliant, still evaluated
    other = b.res("aws:eks/cluster:Cluster", b.eks_cluster(encryptionConfig=None), name="x")
    assert "eks-secrets-encryption" in ids(run([other], rules=[boom, *others]))


def test_a_stack_rule_that_raises_is_an_error_on_the_stack() -> None:
    def broken(resources: Sequence[Resource], s: Settings) -> list[StackOutcome]:
        raise ValueError("bad graph")

    target = BY_ID["eks-endpoint-private"]
    boom = Rule(target.id, target.category, Level.ADVISORY, "d.", "fix it", stack=broken)
    advisory = parse_policy_config({"eks-endpoint-private": "advisory"}, "cfg.json")
    (finding,) = run([PUBLIC], rules=[boom], config=advisory)
    assert finding.status is FindingStatus.ERROR and finding.type == "pulumi:pulumi:Stack"
    assert not finding.blocking  # advisory rule errors do not fail the check


def _waiver(**o: object) -> dict[str, list[dict[str, object]]]:
    entry: dict[str, object] = {"policy": "eks-endpoint-private", "urn": "urn:pulumi:test::proj::*::prod",
                                "reason": "VPN-less on-call access until the bastion ships", "expires": "2027-01-31"}
    entry.update(o)
    return {"waivers": [entry]}


def test_a_file_waiver_marks_the_finding_waived_and_it_is_still_reported() -> None:
    findings = run([PUBLIC], waivers_doc=_waiver())
    (waived,) = [f for f in findings if f.policy == "eks-endpoint-private"]
    assert waived.status is FindingStatus.WAIVED and not waived.blocking
    assert "VPN-less" in (waived.waiver or "") and "2027-01-31" in (waived.waiver or "")


def test_a_waiver_for_another_policy_or_urn_does_not_apply() -> None:
    assert "eks-endpoint-private" in ids(run([PUBLIC], waivers_doc=_waiver(policy="eks-secrets-encryption")))
    assert "eks-endpoint-private" in ids(run([PUBLIC], waivers_doc=_waiver(urn="urn:pulumi:prod::*")))


def test_an_expired_waiver_stops_applying_and_is_itself_a_mandatory_finding() -> None:
    findings = run([PUBLIC], waivers_doc=_waiver(expires="2026-11-01"))
    assert "eks-endpoint-private" in ids(findings)
    (expired,) = [f for f in findings if f.policy == "waiver-expired"]
    assert expired.level is Level.MANDATORY and expired.blocking and "2026-11-01" in expired.message


@pytest.mark.parametrize("override, fragment", [
    ({"reason": ""}, "waivers[0].reason must be a non-empty explanation"),
    ({"reason": None}, "waivers[0].reason must be a non-empty explanation"),
    ({"expires": None}, "waivers[0].expires must be a date"),
    ({"expires": "next year"}, "waivers[0].expires must be a date"),
    ({"policy": "no-such"}, "waivers[0].policy must be a policy id"),
    ({"urn": ""}, "waivers[0].urn must be a URN or URN glob"),
    ({"owner": "me"}, "unknown key(s) owner"),
])
def test_a_malformed_waiver_is_refused(override: dict[str, object], fragment: str) -> None:
    with pytest.raises(WaiverError) as info:
        parse_waivers(_waiver(**override), "policies/waivers.yaml")
    assert fragment in str(info.value)


def _tagged(value: str) -> Resource:
    return b.res("kubernetes:apps/v1:Deployment", b.deployment(
        pod={"containers": [b.container(image="nginx:latest")]},
        metadata={"annotations": {"gantry.io/waive": value}}), name="web")


def test_a_waive_annotation_waives_only_its_policy() -> None:
    findings = run([_tagged("image-pinned=vendor image, pinned upstream next sprint")])
    assert "image-pinned" in ids(findings, FindingStatus.WAIVED)
    assert "image-pinned" not in ids(findings)


def test_a_waive_tag_on_a_cloud_resource() -> None:
    tags = {**b.TAGS, "gantry.io/waive": "eks-endpoint-private=break-glass cluster until 2027-02-01"}
    cluster = b.res("aws:eks/cluster:Cluster", {**PUBLIC.props, "tags": tags}, name="prod")
    (f,) = [f for f in run([cluster]) if f.policy == "eks-endpoint-private"]
    assert f.status is FindingStatus.WAIVED and "2027-02-01" in (f.waiver or "")


def test_a_waive_tag_without_a_reason_is_refused_and_reported() -> None:
    findings = run([_tagged("image-pinned=")])
    assert "image-pinned" in ids(findings)
    invalid = [f for f in findings if f.policy == "waiver-invalid"]
    assert len(invalid) == 1 and "no reason" in invalid[0].message and invalid[0].blocking


def test_an_expired_waive_tag_is_a_finding() -> None:
    findings = run([_tagged("image-pinned=legacy until 2026-01-01")])
    assert {"image-pinned", "waiver-expired"} <= ids(findings)


def test_settings_take_the_stack_over_the_config_file() -> None:
    from policies.config import StackPolicy
    from policies.rule import options_of
    from policies.rules.clusters.k8s_version_supported import Options as VersionOptions
    from policies.rules.cost.cost_budget import Options as BudgetOptions
    from policies.rules.exposure.service_no_public_exposure import Options as ExposureOptions

    def seen(s: Settings) -> tuple[list[str], float, float | None, list[str]]:
        budget = options_of(s, "cost-budget", BudgetOptions)
        return (options_of(s, "k8s-version-supported", VersionOptions).supported_versions, budget.threshold,
                budget.monthly_budget_usd, options_of(s, "service-no-public-exposure", ExposureOptions).allow_list)

    config = parse_policy_config({"k8s-version-supported": {"supportedVersions": ["1.30"]},
                                  "cost-budget": {"threshold": 0.5},
                                  "service-no-public-exposure": {"allowList": ["web/web"]}}, "cfg.json")
    assert seen(build_settings(config, TierName.PROD, prices={})) == (["1.30"], 0.5, None, ["web/web"])
    stack = StackPolicy(supported_versions=("1.33",), monthly_budget_usd=9.0, public_load_balancers=("api/api",))
    # The stack's versions and budget replace the file's; its public load balancers add to the file's.
    assert seen(build_settings(config, TierName.PROD, stack, prices={})) == (["1.33"], 0.5, 9.0,
                                                                             ["api/api", "web/web"])


def test_a_current_waiver_wins_over_an_expired_one_for_the_same_finding() -> None:
    doc = {"waivers": [*_waiver(expires="2026-01-01")["waivers"], *_waiver(reason="renewed after review")["waivers"]]}
    findings = run([PUBLIC], waivers_doc=doc)
    (f,) = [f for f in findings if f.policy == "eks-endpoint-private"]
    assert f.status is FindingStatus.WAIVED and "renewed" in (f.waiver or "")
    # The stale entry still matches the stack, so it is reported for clean-up.
    assert "waiver-expired" in ids(findings)
