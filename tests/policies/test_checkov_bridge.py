"""The Checkov bridge against Checkov itself: fixture twins, graph checks with and without references, levels.

Every fixture in tests/fixtures/bridge renders a non-compliant program and its compliant twin. All of them
go to one Checkov process (Checkov's import is the expensive part); each test then judges its own slice.
Checkov comes from .venv-checkov (scripts/setup.sh); without it these tests fail with the install hint.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sarif_shape import sarif_problems

from infra.render import RenderResult, render_callable
from policies.bridge.catalog import ALIASES, MANDATORY_IN_PROD
from policies.bridge.findings import BridgeSummary, merge
from policies.bridge.runner import CheckovSession, ScanResult
from policies.bridge.translate import Bundle, nodes_from_render, translate
from policies.config import PolicyConfig, build_settings, load_policy_config
from policies.engine import BridgeMode, Finding, FindingStatus, StackReport, evaluate, resources_from_render
from policies.model import Level, TierName
from policies.pack import BY_ID
from policies.report import Format, render
from policies.waivers import Waiver

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bridge"
TODAY = dt.date(2026, 12, 2)

# (resource name, check id) that must fail on the non-compliant program, per fixture.
EXPECTED: dict[str, set[tuple[str, str]]] = {
    "aws_bucket": {("site-policy", "CKV_AWS_70"), ("site-access", "CKV_AWS_53"), ("site-access", "CKV_AWS_54"),
                   ("site-access", "CKV_AWS_55"), ("site-access", "CKV_AWS_56"), ("site", "CKV2_AWS_6"),
                   ("site", "CKV_AWS_145"), ("site", "CKV_AWS_21")},
    "aws_network": {("web", "CKV_AWS_24")},
    "aws_rds": {("orders", "CKV_AWS_16"), ("orders", "CKV_AWS_17"), ("orders", "CKV_AWS_293")},
    "aws_iam": {("admin", "CKV_AWS_62"), ("admin", "CKV_AWS_63"), ("admin", "CKV2_AWS_40")},
    "aws_ecs": {("web", "CKV_AWS_336")},
    "gcp_bucket": {("public-read", "CKV_GCP_28"), ("assets", "CKV_GCP_114"), ("assets", "CKV_GCP_29")},
    "gcp_firewall": {("ssh", "CKV_GCP_2")},
    "azure_storage": {("assets", "CKV_AZURE_44"), ("assets", "CKV_AZURE_3"), ("assets", "CKV_AZURE_35"),
                      ("site", "CKV_AZURE_34")},
    "azure_nsg": {("admin", "CKV_AZURE_9")},
    "k8s_deployment": {("web", "CKV_K8S_43"), ("web", "CKV_K8S_11"), ("web", "CKV2_K8S_6")},
}
# Gantry's own findings (policy, resource, aliases it must carry) on the non-compliant programs.
GANTRY: dict[str, set[tuple[str, str, tuple[str, ...]]]] = {
    # pulumi-aws marks an RDS password as secret itself, so the plain literal is encrypted: no finding.
    "aws_rds": set(),
    "aws_ecs": {("image-pinned", "web", ()), ("secrets-not-in-env", "web", ())},
    "aws_bucket": set(),
    "aws_network": set(),
    "aws_iam": set(),
    "gcp_bucket": {("stateful-protect", "assets", ())},
    "gcp_firewall": set(),
    "azure_storage": {("stateful-protect", "assets", ())},
    "azure_nsg": set(),
    "k8s_deployment": {("image-pinned", "web", ("CKV_K8S_14",)), ("secrets-not-in-env", "web", ()),
                       ("no-default-namespace", "web", ("CKV_K8S_21",)), ("secrets-plain-input", "web-config", ())},
}


@dataclass
class Judged:
    render: RenderResult
    bundle: Bundle
    scan: ScanResult
    findings: list[Finding]
    summary: BridgeSummary

    def checkov(self) -> set[tuple[str, str]]:
        return {(f.name, f.policy) for f in self.findings if f.source == "checkov"}

    def gantry(self) -> set[tuple[str, str, tuple[str, ...]]]:
        return {(f.policy, f.name, tuple(sorted(a for a in f.aliases))) for f in self.findings
                if f.source == "gantry"}


def _program(fixture: str, variant: str) -> Callable[[], None]:
    sys.path.insert(0, str(FIXTURES))
    try:
        module = importlib.import_module(fixture)
    finally:
        sys.path.remove(str(FIXTURES))
    fn: Callable[[], None] = getattr(module, variant)
    return fn


def _judge(result: RenderResult, bundle: Bundle, scan: ScanResult, config: PolicyConfig,
           tier: TierName = TierName.PROD, waivers: tuple[Waiver, ...] = ()) -> Judged:
    views = [v for v in resources_from_render(result) if v.type != "pulumi:pulumi:Stack"]
    findings = evaluate(views, build_settings(config, tier), config.levels(tier), waivers, today=TODAY)
    merged, summary = merge(findings, scan, bundle, views, lambda c: config.check_level(c, tier), waivers, {}, TODAY)
    return Judged(result, bundle, scan, merged, summary)


@pytest.fixture(scope="module")
def judged() -> dict[tuple[str, str], Judged]:
    """Every fixture twin, plus the network twin translated without references, through one Checkov run."""
    jobs: list[tuple[tuple[str, str], RenderResult, Bundle]] = []
    for fixture in EXPECTED:
        for variant in ("noncompliant", "compliant"):
            result = render_callable(_program(fixture, variant), project="bridge", stack="prod")
            jobs.append(((fixture, variant), result, translate(nodes_from_render(result.resources))))
    for fixture in ("aws_network", "aws_bucket"):
        result = render_callable(_program(fixture, "compliant"), project="bridge", stack="prod")
        jobs.append(((fixture, "no-references"), result,
                     translate(nodes_from_render(result.resources), references=False)))
    with CheckovSession() as session:
        scans = session.scan_many([b for _, _, b in jobs])
    config = load_policy_config()
    return {key: _judge(result, bundle, scan, config) for (key, result, bundle), scan in zip(jobs, scans, strict=True)}


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_noncompliant_twin_fails_the_expected_checks_on_the_expected_resources(
        judged: dict[tuple[str, str], Judged], fixture: str) -> None:
    j = judged[(fixture, "noncompliant")]
    assert j.scan.errors == [] and j.summary.unmapped == []
    assert EXPECTED[fixture] <= j.checkov(), sorted(j.checkov())
    # Every finding names its check and points at the URN of a resource the program registered.
    urns = {r.urn for r in j.render.resources}
    for f in j.findings:
        assert f.urn in urns
        if f.source == "checkov":
            assert f.check_name and f.policy in f.message and f.check_name in f.message
    gantry = j.gantry()
    assert GANTRY[fixture] <= gantry, sorted(gantry)


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_compliant_twin_has_no_finding_at_all(judged: dict[tuple[str, str], Judged], fixture: str) -> None:
    j = judged[(fixture, "compliant")]
    assert j.scan.errors == [] and j.summary.unmapped == []
    assert [(f.policy, f.name, f.message) for f in j.findings] == []
    assert len(j.scan.passed) > 0  # Checkov did judge the twin


def test_curated_checks_block_prod_and_only_advise_elsewhere(judged: dict[tuple[str, str], Judged]) -> None:
    j = judged[("aws_iam", "noncompliant")]
    by_id = {f.policy: f for f in j.findings}
    assert by_id["CKV_AWS_62"].level is Level.MANDATORY and by_id["CKV_AWS_62"].blocking
    dev = _judge(j.render, j.bundle, j.scan, load_policy_config(), TierName.DEV)
    assert {f.policy: f.level for f in dev.findings}["CKV_AWS_62"] is Level.ADVISORY
    # A check outside the curated set advises even in prod.
    k8s = judged[("k8s_deployment", "noncompliant")]
    assert {f.policy: f.level for f in k8s.findings}["CKV_K8S_43"] is Level.ADVISORY


def test_policy_config_sets_a_check_level_per_tier(judged: dict[tuple[str, str], Judged]) -> None:
    j = judged[("gcp_firewall", "noncompliant")]
    config = PolicyConfig({**load_policy_config().rules})
    from policies.config import parse_policy_config

    config = parse_policy_config({"checkov": {"checks": {"CKV_GCP_2": {"tiers": {"prod": "disabled"}}}}}, "t")
    assert "CKV_GCP_2" not in {f.policy for f in _judge(j.render, j.bundle, j.scan, config).findings}
    config = parse_policy_config({"checkov": {"level": "mandatory"}}, "t")
    k8s = judged[("k8s_deployment", "noncompliant")]
    levels = {f.policy: f.level for f in _judge(k8s.render, k8s.bundle, k8s.scan, config, TierName.DEV).findings}
    assert levels["CKV_K8S_43"] is Level.MANDATORY


def test_a_ckv_waiver_with_reason_and_expiry_waives_and_an_expired_one_does_not(
        judged: dict[tuple[str, str], Judged]) -> None:
    j = judged[("azure_nsg", "noncompliant")]
    urn = next(r.urn for r in j.render.resources if r.name == "admin")
    config = load_policy_config()
    live = Waiver("CKV_AZURE_9", urn, "jump host migration", dt.date(2027, 1, 31), "waivers.yaml:waivers[0]")
    waived = _judge(j.render, j.bundle, j.scan, config, waivers=(live,))
    [f] = [f for f in waived.findings if f.policy == "CKV_AZURE_9"]
    assert f.status is FindingStatus.WAIVED and "jump host migration" in (f.waiver or "") and not f.blocking
    old = Waiver("CKV_AZURE_9", urn, "jump host migration", dt.date(2026, 1, 31), "waivers.yaml:waivers[0]")
    expired = _judge(j.render, j.bundle, j.scan, config, waivers=(old,))
    assert {(f.policy, f.status) for f in expired.findings} >= {
        ("CKV_AZURE_9", FindingStatus.VIOLATION), ("waiver-expired", FindingStatus.VIOLATION)}


def test_aliased_checks_are_reported_once_under_gantrys_id(judged: dict[tuple[str, str], Judged]) -> None:
    j = judged[("k8s_deployment", "noncompliant")]
    ids = [f.policy for f in j.findings]
    assert not set(ids) & set(ALIASES), "an aliased check was reported on its own"
    assert len(ids) == len(set(zip(ids, (f.urn for f in j.findings), strict=True)))
    privileged = next(f for f in j.findings if f.policy == "no-privilege-escalation")
    assert {"CKV_K8S_16", "CKV_K8S_20"} <= set(privileged.aliases)
    assert privileged.label.startswith("no-privilege-escalation (CKV_K8S_")


@pytest.mark.parametrize("fixture, graph_checks", [
    ("aws_network", {("main", "CKV2_AWS_11"), ("app", "CKV2_AWS_19"), ("web", "CKV2_AWS_5")}),
    ("aws_bucket", {("site", "CKV2_AWS_6"), ("site", "CKV2_AWS_61"), ("site", "CKV2_AWS_62")}),
])
def test_graph_checks_see_connections_only_through_references(
        judged: dict[tuple[str, str], Judged], fixture: str, graph_checks: set[tuple[str, str]]) -> None:
    wired, naive = judged[(fixture, "compliant")], judged[(fixture, "no-references")]
    assert wired.bundle.references > 0 and naive.bundle.references == 0
    assert "${" in wired.bundle.files["main.tf.json"] and "${" not in naive.bundle.files["main.tf.json"]
    # A naive translation flags the EIP as unattached and the VPC as without flow logs; references fix it.
    assert graph_checks <= naive.checkov()
    assert not graph_checks & wired.checkov()


def test_the_catalogue_holds_every_id_the_bridge_names() -> None:
    with CheckovSession() as session:
        catalogue = session.catalogue()
    assert len(catalogue) > 1000
    missing = sorted((set(ALIASES) | MANDATORY_IN_PROD) - set(catalogue))
    assert missing == []
    assert set(ALIASES.values()) <= set(BY_ID)


PROJECT = Path(__file__).resolve().parents[1] / "fixtures" / "bridge_project"


@pytest.fixture(scope="module")
def foreign_report() -> StackReport:
    from infra.commands.check import check_stack

    return check_stack(PROJECT, "production-eu", load_policy_config(), [], bridge=BridgeMode.ON, today=TODAY)


def test_a_foreign_stack_named_production_is_prod_and_blocks_on_curated_checks(foreign_report: StackReport) -> None:
    r = foreign_report
    assert r.tier is TierName.PROD and r.tier_source == "stack name" and not r.passed
    by_id = {f.policy: f for f in r.findings}
    assert by_id["CKV_AWS_62"].blocking and by_id["CKV_AWS_62"].name == "admin"
    # Checkov's findings point where the program constructed the resource, as Gantry's do.
    where = by_id["CKV_AWS_62"].location
    assert where is not None and where.file == "__main__.py"
    constructor = (PROJECT / where.file).read_text().splitlines()[where.line - 1]
    assert constructor.startswith('aws.iam.RolePolicy("admin"'), constructor
    # The bucket's tag waives CKV_AWS_20 with a reason and an expiry: reported, not blocking.
    waived = by_id["CKV_AWS_20"]
    assert waived.status is FindingStatus.WAIVED and "public website by design" in (waived.waiver or "")
    assert r.bridge is not None and r.bridge.status == "ran" and r.bridge.unmapped == []


@pytest.mark.parametrize("fmt", list(Format))
def test_every_format_carries_the_check_id_and_name(foreign_report: StackReport, fmt: Format) -> None:
    text = render(fmt, [foreign_report])
    name = next(f.check_name for f in foreign_report.findings if f.policy == "CKV_AWS_62")
    assert name
    flat = " ".join(text.split())
    assert "CKV_AWS_62" in flat
    # Text and Markdown fold long cells; JSON escapes quotes: compare a quote-free prefix of the name.
    assert name.split('"')[0].strip() in flat
    if fmt is Format.SARIF:
        doc = json.loads(text)
        rules = {d["id"]: d for d in doc["runs"][0]["tool"]["driver"]["rules"]}
        assert rules["CKV_AWS_62"]["shortDescription"]["text"] == name
        [result] = [x for x in doc["runs"][0]["results"] if x["ruleId"] == "CKV_AWS_62"]
        region = result["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] == next(f.location.line for f in foreign_report.findings
                                           if f.policy == "CKV_AWS_62" and f.location)
        assert sarif_problems(doc) == []


def test_cli_prints_the_tier_and_exits_1(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from infra.cli import app

    result = CliRunner().invoke(app, ["check", "--project", str(PROJECT), "--stack", "feature-x", "--checkov",
                                      "on", "--format", "json"])
    # feature-x is dev by its name: the curated checks only advise, nothing blocks.
    assert result.exit_code == 0, result.output
    assert "feature-x: tier dev (from stack name); checkov bridge: ran" in result.stderr
    doc = json.loads(result.stdout)
    assert {f["level"] for f in doc["findings"] if f["source"] == "checkov"} == {"advisory"}
    assert doc["stacks"][0]["checkov"]["status"] == "ran"


def test_crossguard_runs_the_same_bridge_as_a_stack_policy(judged: dict[tuple[str, str], Judged]) -> None:
    from pulumi_policy import (
        EnforcementLevel,
        PolicyProviderResource,
        PolicyResource,
        StackValidationArgs,
        StackValidationPolicy,
    )

    from policies.crossguard import build_policies

    j = judged[("aws_iam", "noncompliant")]
    provider = PolicyProviderResource("pulumi:providers:aws", {}, "urn:p", "default")
    resources = [PolicyResource(r.type, r.inputs, r.urn, r.name, _opts(), provider if r.custom else None, None, [],
                                {}) for r in j.render.resources if r.type != "pulumi:pulumi:Stack"]
    policies = {p.name: p for p in build_policies(load_policy_config(), TierName.PROD)}
    reported: list[tuple[str, str | None]] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append((message, urn))

    checkov = policies["checkov"]
    assert isinstance(checkov, StackValidationPolicy)
    checkov.validate(StackValidationArgs(resources, {}), report)
    offline = {(f.policy, f.urn) for f in j.findings if f.source == "checkov" and f.blocking}
    assert {(m.split(":", 1)[0], urn) for m, urn in reported} == offline
    assert checkov.enforcement_level is EnforcementLevel.MANDATORY


def _opts() -> Any:
    from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions

    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def test_gantrys_own_prod_stack_passes_with_the_bridge() -> None:
    from infra.commands.check import check_stack
    from policies.waivers import DEFAULT_PATH, load_waivers

    repo = Path(__file__).resolve().parents[2]
    report = check_stack(repo, "prod", load_policy_config(), load_waivers(DEFAULT_PATH), bridge=BridgeMode.ON)
    blocking = [f"{f.policy} {f.name}: {f.message}" for f in report.findings if f.blocking]
    assert blocking == [] and report.bridge is not None and report.bridge.status == "ran"
    assert report.bridge.unmapped == [] and report.bridge.references > 0
