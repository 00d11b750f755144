"""Report formats: SARIF golden and structure, JSON fields, Markdown table, JUnit XML."""

from __future__ import annotations

import datetime as dt
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from sarif_shape import sarif_problems

from infra.commands.check import check_stack
from policies.config import load_policy_config
from policies.engine import BridgeMode, FindingStatus, StackReport
from policies.model import TierName
from policies.report import Format, render
from policies.waivers import parse_waivers

REPO = Path(__file__).resolve().parents[2]
INSECURE = REPO / "tests" / "fixtures" / "insecure_project"
GOLDEN = REPO / "tests" / "fixtures" / "policy_golden" / "insecure.sarif.json"
EXPECTED = {"eks-endpoint-private", "eks-secrets-encryption", "eks-control-plane-logging", "image-pinned",
            "container-resources", "service-selects-one-color"}


@pytest.fixture(scope="module")
def report() -> StackReport:
    waivers = parse_waivers({"waivers": [{
        "policy": "image-pinned", "urn": "urn:pulumi:dev::insecure-shop::*::shop-green",
        "reason": "mirrors upstream nginx; pinned in the next sprint", "expires": "2099-01-01"}]}, "waivers.yaml")
    cwd = Path.cwd()
    os.chdir(REPO)  # SARIF URIs are relative to the working directory, as in CI
    try:
        return check_stack(INSECURE, "dev", load_policy_config(), waivers, today=dt.date(2026, 11, 27),
                           tier=TierName.PROD, bridge=BridgeMode.OFF)
    finally:
        os.chdir(cwd)


def test_the_insecure_project_fails_with_exactly_the_expected_ids(report: StackReport) -> None:
    violations = {f.policy for f in report.findings if f.status is FindingStatus.VIOLATION}
    assert violations == EXPECTED
    assert report.tier is TierName.PROD and report.tier_source == "--tier"
    assert not report.passed


def _sarif(report: StackReport) -> Any:
    """The SARIF document as parsed JSON (untyped by nature)."""
    cwd = Path.cwd()
    os.chdir(REPO)
    try:
        return json.loads(render(Format.SARIF, [report]))
    finally:
        os.chdir(cwd)


def _golden_view(doc: Any) -> Any:
    """The document with the rules catalogue cut to the rules the results use, and results naming their rule
    by id only: adding a rule to the pack (one module) must not change the golden file."""
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]  # the index the viewer follows is right
        del result["ruleIndex"]
    run["results"].sort(key=lambda r: json.dumps(r, sort_keys=True))
    used = {r["ruleId"] for r in run["results"]}
    run["tool"]["driver"]["rules"] = sorted((r for r in rules if r["id"] in used), key=lambda r: r["id"])
    return doc


def test_sarif_matches_the_golden_file(report: StackReport) -> None:
    doc = _sarif(report)
    from policies.pack import RULES

    assert len(doc["runs"][0]["tool"]["driver"]["rules"]) == len(RULES) + 2  # every rule, and the waiver meta-rules
    doc = _golden_view(doc)
    if os.environ.get("GANTRY_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(doc, indent=2) + "\n")
    assert doc == json.loads(GOLDEN.read_text())


def test_sarif_is_structurally_valid_2_1_0(report: StackReport) -> None:
    doc = _sarif(report)
    assert sarif_problems(doc) == []
    results = doc["runs"][0]["results"]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    # Results point at the line of the program that constructs each resource (the SDK's source position).
    assert uris == {"tests/fixtures/insecure_project/__main__.py"}
    lines = (INSECURE / "__main__.py").read_text().splitlines()
    for r in results:
        line = lines[r["locations"][0]["physicalLocation"]["region"]["startLine"] - 1]
        assert f".{r['properties']['type'].rsplit(':', 1)[-1]}(" in line, line
    waived = [r for r in results if r.get("suppressions")]
    assert [r["ruleId"] for r in waived] == ["image-pinned"]
    assert waived[0]["suppressions"][0]["kind"] == "external"


def test_the_validator_catches_broken_sarif(report: StackReport) -> None:
    doc = _sarif(report)
    doc["version"] = "2.0.0"
    doc["runs"][0]["results"][0]["level"] = "fatal"
    del doc["runs"][0]["results"][1]["locations"]
    problems = sarif_problems(doc)
    assert any("version" in p for p in problems) and any("level" in p for p in problems)
    assert any("locations" in p for p in problems)


def test_json_report_lists_findings_and_summary(report: StackReport) -> None:
    doc = json.loads(render(Format.JSON, [report]))
    keys = {"policy", "status", "level", "urn", "type", "name", "message"}
    assert all(keys <= set(f) for f in doc["findings"])
    summary = doc["summary"]
    assert summary["passed"] is False and summary["waived"] == 1
    assert summary["blocking"] == sum(1 for f in doc["findings"] if f["status"] == "violation"
                                      and f["level"] == "mandatory")


def test_markdown_has_a_stack_table_and_top_findings(report: StackReport) -> None:
    md = render(Format.MARKDOWN, [report])
    assert md.startswith("## :x: gantry check:")
    row = next(line for line in md.splitlines() if line.startswith("| `dev`"))
    assert "| prod | 7 |" in row and "**fail**" in row
    assert "`service-selects-one-color`" in md and "### Top findings" in md


def test_junit_has_a_failure_per_violated_mandatory_rule(report: StackReport) -> None:
    root = ET.fromstring(render(Format.JUNIT, [report]))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "insecure-shop/dev"
    failed = {case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None}
    assert failed == EXPECTED
    assert int(suite.get("tests", "0")) == len(report.levels)


def test_text_report_puts_blocking_findings_first(report: StackReport) -> None:
    text = render(Format.TEXT, [report])
    row = next(line for line in text.splitlines() if "insecure-shop/dev" in line)
    assert "prod" in row and "FAIL" in row
    first_cells = [line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│")]
    levels = [cell for cell in first_cells if cell in ("MANDATORY", "advisory", "WAIVED")]
    assert levels[0] == "MANDATORY" and levels[-1] == "WAIVED"
    assert text.rstrip().endswith("1 stack(s) checked; 7 blocking finding(s)")
