"""Rules in Gantry-component form: shipped components comply; insecure stack settings fail their rule.

Insecure settings that the components accept (a public endpoint with the acknowledgement flag, logging
off, a fixed-size prod pool, a small budget) must be caught by exactly the rule that owns them.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.commands.check import check_stack
from infra.render import render_project
from policies.config import StackPolicy, build_settings, load_policy_config
from policies.engine import BridgeMode, FindingStatus, resources_from_render, run_rule, stack_inputs
from policies.model import State, TierName
from policies.pack import RULES

REPO = Path(__file__).resolve().parents[2]
PROD_STACKS = ("prod", "prod-gcp", "prod-azure")


@pytest.fixture(scope="module")
def judged() -> dict[str, dict[str, set[State]]]:
    """For each rule, the states it reached on each prod stack's component-built resources."""
    out: dict[str, dict[str, set[State]]] = defaultdict(lambda: defaultdict(set))
    for stack in PROD_STACKS:
        result = render_project(REPO, stack)
        views = [v for v in resources_from_render(result) if v.type != "pulumi:pulumi:Stack"]
        policy = stack_inputs(REPO / "stacks", stack).policy
        settings = build_settings(load_policy_config(), TierName.PROD, policy)
        for rule in RULES:
            for _subject, outcome in run_rule(rule, views, settings):
                out[rule.id][stack].add(outcome.state)
    return out


def test_every_rule_is_judged_compliant_on_some_component_built_stack(
        judged: dict[str, dict[str, set[State]]]) -> None:
    never = [r.id for r in RULES if not any(State.COMPLIANT in s for s in judged[r.id].values())
             and r.category != "dr"]
    # Gantry's components take no secret-named inputs at all (credentials come from workload identity), so
    # secrets-plain-input has nothing to judge there; tests/policies/test_checkov_bridge.py judges it. The DR
    # rules judge the failover components, which no prod stack builds; tests/policies/test_policy_dr.py renders
    # them on every cloud.
    assert never == ["secrets-plain-input"]


@pytest.mark.parametrize("rule_id, stack", [
    ("eks-endpoint-private", "prod"), ("eks-secrets-encryption", "prod"), ("node-imdsv2-required", "prod"),
    ("gke-private-cluster", "prod-gcp"), ("gke-secrets-encryption-cmek", "prod-gcp"),
    ("gke-node-hardening", "prod-gcp"), ("aks-rbac-no-local-accounts", "prod-azure"),
    ("aks-private-or-authorized-ips", "prod-azure"), ("node-disk-encryption", "prod-azure"),
    ("kms-key-rotation", "prod-azure"), ("service-selects-one-color", "prod"), ("canary-weights-valid", "prod"),
    ("cost-budget", "prod-gcp"),
])
def test_component_built_resources_comply(judged: dict[str, dict[str, set[State]]], rule_id: str,
                                          stack: str) -> None:
    states = judged[rule_id][stack]
    assert State.COMPLIANT in states and State.NON_COMPLIANT not in states, states


def _copy_project(tmp: Path, mutate: Callable[[dict[str, Any]], None]) -> Path:
    shutil.copy(REPO / "Pulumi.yaml", tmp / "Pulumi.yaml")
    (tmp / "stacks").mkdir()
    (tmp / "infra").mkdir()
    shutil.copy(REPO / "infra" / "__main__.py", tmp / "infra" / "__main__.py")
    doc = yaml.safe_load((REPO / "stacks" / "Pulumi.prod.yaml").read_text())
    mutate(doc["config"])
    (tmp / "stacks" / "Pulumi.prod.yaml").write_text(yaml.safe_dump(doc))
    return tmp


def _violations(project: Path) -> set[str]:
    report = check_stack(project, "prod", load_policy_config(), [], bridge=BridgeMode.OFF)
    return {f.policy for f in report.findings if f.status is FindingStatus.VIOLATION}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    return _violations(_copy_project(tmp_path_factory.mktemp("base"), lambda c: None))


def _public(c: dict[str, Any]) -> None:
    c["gantry:cluster"]["endpoint"] = {"privateAccess": True, "publicAccess": True,
                                       "publicAccessCidrs": ["0.0.0.0/0"], "acknowledgePublicInternet": True}


def _no_logging(c: dict[str, Any]) -> None:
    c["gantry:cluster"]["logging"] = {"enabled": False}


def _fixed_pool(c: dict[str, Any]) -> None:
    c["gantry:cluster"]["nodePools"][1].update(minSize=4, desiredSize=4, maxSize=4)


def _small_budget(c: dict[str, Any]) -> None:
    c["gantry:policy"]["monthlyBudgetUsd"] = 1000


def _newer_versions_only(c: dict[str, Any]) -> None:
    c["gantry:policy"]["supportedVersions"] = ["1.34"]


@pytest.mark.parametrize("mutate, expected", [
    (_public, {"eks-endpoint-private"}),
    (_no_logging, {"eks-control-plane-logging"}),
    (_fixed_pool, {"nodepool-autoscaling-bounds"}),
    (_small_budget, {"cost-budget"}),
    (_newer_versions_only, {"k8s-version-supported"}),
], ids=["public-endpoint", "logging-off", "fixed-size-prod-pool", "budget", "supported-versions"])
def test_insecure_component_settings_fail_exactly_their_rule(
        tmp_path: Path, baseline: set[str], mutate: Callable[[dict[str, Any]], None], expected: set[str]) -> None:
    assert _violations(_copy_project(tmp_path, mutate)) - baseline == expected


def test_stack_policy_block_reaches_the_rules() -> None:
    inputs = stack_inputs(REPO / "stacks", "prod")
    assert inputs.tier is TierName.PROD
    assert inputs.policy == StackPolicy(monthly_budget_usd=15000.0)
