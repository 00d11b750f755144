"""`gantry check` end to end: exit codes, formats, waivers, tiers and the shipped stacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sarif_shape import sarif_problems
from typer.testing import CliRunner, Result

from infra.cli import app

REPO = Path(__file__).resolve().parents[2]
INSECURE = REPO / "tests" / "fixtures" / "insecure_project"
EXPECTED = {"eks-endpoint-private", "eks-secrets-encryption", "eks-control-plane-logging", "image-pinned",
            "container-resources", "service-selects-one-color"}


def check(*args: str) -> Result:
    """``gantry check`` with the Checkov bridge off unless asked for: these tests judge Gantry's own rules
    (tests/policies/test_checkov_bridge.py runs the bridge)."""
    bridge = [] if "--checkov" in args or "--list-rules" in args else ["--checkov", "off"]
    return CliRunner().invoke(app, ["check", *bridge, *args])


def test_insecure_project_exits_1_with_the_expected_ids() -> None:
    result = check("--project", str(INSECURE), "--stack", "dev", "--format", "json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert {f["policy"] for f in doc["findings"] if f["status"] == "violation"} == EXPECTED
    # No gantry:tier in a foreign stack: the stack's name decides, and the tier used is printed.
    assert doc["summary"]["passed"] is False and doc["stacks"][0]["tier"] == "dev"
    assert "dev: tier dev (from stack name)" in result.stderr


def test_sarif_output_file(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "gantry.sarif"
    result = check("--project", str(INSECURE), "--stack", "dev", "--format", "sarif", "--output", str(out))
    assert result.exit_code == 1
    assert result.stdout == ""  # the report went to the file; a one-line note goes to stderr
    assert "blocking finding" in result.stderr
    assert sarif_problems(json.loads(out.read_text())) == []


def test_waiving_every_violation_gives_exit_0_and_keeps_them_reported(tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("waivers:\n" + "".join(
        f"  - {{policy: {p}, urn: 'urn:pulumi:dev::insecure-shop::*', reason: demo fixture, expires: 2099-12-31}}\n"
        for p in sorted(EXPECTED)))
    result = check("--project", str(INSECURE), "--stack", "dev", "--format", "json", "--waivers", str(waivers))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert {f["status"] for f in doc["findings"]} == {"waived"}
    assert {f["policy"] for f in doc["findings"]} == EXPECTED


def test_an_expired_waiver_fails_the_check(tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("waivers:\n  - {policy: image-pinned, urn: '*shop-blue', reason: old, expires: 2020-01-01}\n")
    result = check("--project", str(INSECURE), "--stack", "dev", "--format", "json", "--waivers", str(waivers))
    assert result.exit_code == 1
    assert "waiver-expired" in {f["policy"] for f in json.loads(result.stdout)["findings"]}


def test_tier_flag_changes_levels() -> None:
    result = check("--project", str(INSECURE), "--stack", "dev", "--format", "json", "--tier", "dev")
    levels = {f["policy"]: f["level"] for f in json.loads(result.stdout)["findings"]}
    assert levels["eks-control-plane-logging"] == "advisory" and levels["eks-endpoint-private"] == "mandatory"
    assert result.exit_code == 1


@pytest.mark.parametrize("args, fragment", [
    ([], "pass --stack NAME (repeatable) or --all-stacks"),
    (["--stack", "dev", "--all-stacks"], "cannot be combined"),
    (["--stack", "dev", "--format", "xml"], "'xml' is not one of 'text', 'json', 'sarif', 'markdown', 'junit'"),
    (["--stack", "dev", "--tier", "qa"], "'qa' is not one of 'dev', 'staging', 'prod'"),
    (["--stack", "nope"], "stack file not found; known stacks: dev"),
])
def test_usage_errors_exit_2_with_one_clear_line(args: list[str], fragment: str) -> None:
    result = check("--project", str(INSECURE), *args)
    assert result.exit_code == 2, result.output
    # Typer draws usage errors in a box; compare the words only.
    assert fragment in " ".join(result.stderr.replace("│", " ").split())
    assert "Traceback" not in result.output


def test_a_waiver_without_reason_is_rejected_with_exit_2(tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("waivers:\n  - {policy: image-pinned, urn: '*', reason: '', expires: 2099-01-01}\n")
    result = check("--project", str(INSECURE), "--stack", "dev", "--waivers", str(waivers))
    assert result.exit_code == 2
    assert "waivers[0].reason must be a non-empty explanation" in result.stderr


def test_a_bad_policy_config_is_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "policy.json"
    cfg.write_text('{"image-pinned": {"level": "blocking"}}')
    result = check("--project", str(INSECURE), "--stack", "dev", "--policy-config", str(cfg))
    assert result.exit_code == 2
    assert "image-pinned.level must be one of advisory, mandatory, disabled" in result.stderr


def test_a_rule_option_of_the_wrong_type_is_exit_2_with_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "policy.json"
    cfg.write_text('{"kms-key-rotation": {"maxDays": "ninety"}}')
    for extra in ([], ["--list-rules"]):
        result = check("--project", str(INSECURE), "--stack", "dev", "--policy-config", str(cfg), *extra)
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines() == [
            f"error: {cfg}: kms-key-rotation.maxDays must be a whole number of days from 1 to 365, but 'ninety' "
            "was given"]
        assert "Traceback" not in result.output


def test_a_program_that_raises_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: broken\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    (tmp_path / "__main__.py").write_text("raise RuntimeError('no cluster for you')\n")
    result = check("--project", str(tmp_path), "--stack", "dev")
    assert result.exit_code == 2
    assert "project broken, stack dev: the program raised RuntimeError: no cluster for you" in result.stderr


def test_list_rules_prints_the_pack_under_a_header_at_the_tier_asked() -> None:
    from policies.bridge.catalog import MANDATORY_IN_PROD
    from policies.pack import RULES

    prod, dev = check("--list-rules"), check("--list-rules", "--tier", "dev")
    assert prod.exit_code == 0 and dev.exit_code == 0
    header, *rows = prod.stdout.splitlines()
    assert header.split()[:4] == ["ID", "LEVEL", "KIND", "DESCRIPTION"] and "tier prod" in header
    ids = [line.split()[0] for line in rows]
    assert ids[:len(RULES)] == [r.id for r in RULES]
    assert set(ids[len(RULES):]) == {*MANDATORY_IN_PROD, "CKV_*"}
    level = {line.split()[0]: line.split()[1] for line in rows}
    dev_level = {line.split()[0]: line.split()[1] for line in dev.stdout.splitlines()[1:]}
    # policy-config.json: eks-control-plane-logging is advisory in dev; curated checks block only prod.
    assert level["eks-control-plane-logging"] == "mandatory" and dev_level["eks-control-plane-logging"] == "advisory"
    assert level["CKV_AWS_20"] == "mandatory" and dev_level["CKV_AWS_20"] == "advisory"
    assert "tier dev" in dev.stdout.splitlines()[0]


def test_shipped_stacks_have_no_mandatory_violations() -> None:
    result = check("--project", str(REPO), "--all-stacks", "--format", "json")
    doc = json.loads(result.stdout) if result.stdout else {}
    blocking = [f"{f['stack']}: {f['policy']} {f['name']}: {f['message']}" for f in doc.get("findings", [])
                if f["level"] == "mandatory" and f["status"] != "waived"]
    assert result.exit_code == 0, "\n".join(blocking) or result.stderr
    from infra.render import Project

    checked = {s["stack"] for s in doc["stacks"]}
    assert checked == set(Project.load(REPO).stacks()) and {"dev", "prod", "prod-gcp", "prod-azure"} <= checked
