"""Meta-tests over the registry: ids unique, one rule per module, both kinds of fixture, generated files current."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import sys
from collections import Counter
from pathlib import Path

import pytest
from policy_cases import CASES

import policies.rules
from policies.config import DEFAULT_PATH, config_schema, load_policy_config
from policies.pack import RULES


def test_ids_are_unique_and_kebab_case() -> None:
    counts = Counter(r.id for r in RULES)
    assert [i for i, n in counts.items() if n > 1] == []
    assert all(r.id == r.id.lower() and " " not in r.id for r in RULES)


def _rule_modules() -> list[str]:
    """Every module under policies/rules/<category>/ (packages' __init__ hold shared helpers only)."""
    found = []
    for info in pkgutil.walk_packages(policies.rules.__path__, prefix="policies.rules."):
        if not info.ispkg:
            found.append(info.name)
    return sorted(found)


def test_one_rule_per_module_and_every_module_is_a_rule() -> None:
    modules = _rule_modules()
    assert sorted(r.function_module for r in RULES) == modules
    for name in modules:
        module = importlib.import_module(name)
        rule = module.RULE
        # The module is named after the rule, and defines exactly one check function.
        assert name.rsplit(".", 1)[1] == rule.id.replace("-", "_") == rule.function_name, name
        checks = [fn for n, fn in inspect.getmembers(module, inspect.isfunction)
                  if fn.__module__ == name and not n.startswith("_")
                  and list(inspect.signature(fn).parameters) in (["r", "s"], ["resources", "s"])]
        assert [fn.__name__ for fn in checks] == [rule.function_name], name


def test_the_registry_refuses_a_module_without_a_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from policies.rules import discover

    category = tmp_path / "extra"
    category.mkdir()
    (category / "__init__.py").write_text("")
    (category / "half_written.py").write_text("X = 1\n")
    monkeypatch.setattr(policies.rules, "__path__", [*policies.rules.__path__, str(tmp_path)])
    discover.cache_clear()
    try:
        with pytest.raises(TypeError, match=r"policies\.rules\.extra\.half_written must define RULE"):
            discover()
    finally:
        discover.cache_clear()
        for name in [m for m in sys.modules if m.startswith("policies.rules.extra")]:
            del sys.modules[name]


def test_every_rule_has_a_passing_and_a_failing_fixture() -> None:
    passing = {c.policy for c in CASES if c.compliant}
    failing = {c.policy for c in CASES if not c.compliant}
    ids = {r.id for r in RULES}
    assert ids - passing == set(), "rules without a compliant fixture"
    assert ids - failing == set(), "rules without a non-compliant fixture"
    assert {c.policy for c in CASES} <= ids, "fixtures for unknown ids"


def test_the_original_ids_are_all_still_present() -> None:
    # Issue 10's rules and issue 15's additions keep their ids when rules move between modules.
    issue = (
        "eks-endpoint-private", "eks-secrets-encryption", "eks-control-plane-logging",
        "eks-nodegroup-no-open-ssh", "node-imdsv2-required", "gke-private-cluster",
        "gke-master-authorized-networks", "gke-no-legacy-auth", "gke-node-hardening",
        "gke-secrets-encryption-cmek", "gke-logging-monitoring", "aks-private-or-authorized-ips",
        "aks-rbac-no-local-accounts", "aks-policy-addon", "aks-monitoring", "k8s-version-supported",
        "node-disk-encryption", "network-policy-enforced", "kms-key-rotation", "kms-deletion-protection",
        "kms-policy-no-wildcard-principal", "nodepool-autoscaling-bounds", "hpa-targets-existing-workload",
        "hpa-min-replicas", "hpa-no-static-replicas", "pdb-allows-disruption", "service-no-public-exposure",
        "no-host-namespaces", "cloud-required-tags", "k8s-recommended-labels", "container-resources",
        "container-probes", "image-pinned", "no-privilege-escalation", "run-as-non-root",
        "readonly-root-filesystem", "drop-capabilities-seccomp", "sa-token-no-automount",
        "no-default-namespace", "secrets-not-in-env", "workload-ha", "deployment-selector-matches-template",
        "service-selects-one-color", "canary-weights-valid", "canary-stable-parity",
        "rollout-strategy-safe", "cost-budget", "secrets-plain-input", "stateful-protect", "opaque-component",
    )
    assert set(issue) <= {r.id for r in RULES}


def test_generated_policy_config_and_readme_table_are_current() -> None:
    from policies.generate import README, config_text, readme_text

    assert DEFAULT_PATH.read_text(encoding="utf-8") == config_text(), "run `python -m policies.generate`"
    readme = README.read_text(encoding="utf-8")
    assert readme == readme_text(readme), "run `python -m policies.generate`"
    for r in RULES:
        assert f"| `{r.id}` |" in readme


def test_generate_check_fails_on_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from policies import generate

    stale = tmp_path / "policy-config.json"
    stale.write_text("{}\n")
    readme = tmp_path / "README.md"
    readme.write_text(generate.README.read_text(encoding="utf-8"))
    monkeypatch.setattr(generate, "DEFAULT_PATH", stale)
    monkeypatch.setattr(generate, "README", readme)
    assert generate.main(["--check"]) == 1
    assert generate.main([]) == 0 and generate.main(["--check"]) == 0
    assert json.loads(stale.read_text()) == json.loads(generate.config_text())


def test_every_rule_has_description_and_remediation() -> None:
    for r in RULES:
        assert r.description.endswith(".") and len(r.remediation) > 10, r.id


def test_shipped_policy_config_covers_every_rule_and_fits_the_crossguard_schema() -> None:
    doc = json.loads(DEFAULT_PATH.read_text())
    assert set(doc) == {r.id for r in RULES} | {"checkov"}
    import jsonschema  # type: ignore[import-untyped]  # untyped; installed with moto[server]

    for policy, entry in doc.items():
        # Pulumi validates each entry of --policy-pack-config against the policy's JSON schema.
        schema = {"type": "object", "properties": config_schema(policy), "additionalProperties": False}
        jsonschema.validate(entry, schema)
    load_policy_config()


@pytest.mark.parametrize("entry", [{"level": "blocking"}, {"tiers": {"qa": "advisory"}}, {"budget": 1}])
def test_the_crossguard_schema_refuses_bad_entries(entry: dict[str, object]) -> None:
    import jsonschema

    schema = {"type": "object", "properties": config_schema("image-pinned"), "additionalProperties": False}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(entry, schema)
