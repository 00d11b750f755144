"""Meta-tests: ids are unique, every rule function is in the pack, every rule has both kinds of fixture."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from collections import Counter

import pytest
from policy_cases import CASES

import policies.rules
from policies.config import DEFAULT_PATH, config_schema, load_policy_config
from policies.pack import RULES


def test_ids_are_unique_and_kebab_case() -> None:
    counts = Counter(r.id for r in RULES)
    assert [i for i, n in counts.items() if n > 1] == []
    assert all(r.id == r.id.lower() and " " not in r.id for r in RULES)


def _rule_functions() -> set[str]:
    found: set[str] = set()
    for info in pkgutil.iter_modules(policies.rules.__path__):
        module = importlib.import_module(f"policies.rules.{info.name}")
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ != module.__name__ or name.startswith("_"):
                continue
            params = list(inspect.signature(fn).parameters)
            if params in (["r", "s"], ["resources", "s"]):
                found.add(f"{module.__name__}.{name}")
    return found


def test_every_rule_function_is_in_the_pack() -> None:
    in_pack = {f"{(r.resource or r.stack).__module__}.{r.function_name}" for r in RULES}  # type: ignore[union-attr]
    assert _rule_functions() == in_pack


def test_every_rule_has_a_passing_and_a_failing_fixture() -> None:
    passing = {c.policy for c in CASES if c.compliant}
    failing = {c.policy for c in CASES if not c.compliant}
    ids = {r.id for r in RULES}
    assert ids - passing == set(), "rules without a compliant fixture"
    assert ids - failing == set(), "rules without a non-compliant fixture"
    assert {c.policy for c in CASES} <= ids, "fixtures for unknown ids"


def test_issue_ids_are_all_present() -> None:
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
        "rollout-strategy-safe", "cost-budget",
        # issue 15: what Checkov cannot see
        "secrets-plain-input", "stateful-protect", "opaque-component",
    )
    assert sorted(issue) == sorted(r.id for r in RULES)


def test_every_rule_has_description_and_remediation() -> None:
    for r in RULES:
        assert r.description.endswith(".") and len(r.remediation) > 10, r.id


def test_shipped_policy_config_covers_every_rule_and_fits_the_crossguard_schema() -> None:
    doc = json.loads(DEFAULT_PATH.read_text())
    assert set(doc) == {r.id for r in RULES} | {"checkov"}
    import jsonschema  # installed with the dev extras (moto[server] depends on it)

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
