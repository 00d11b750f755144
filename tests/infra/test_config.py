"""Stack config loading: shipped stacks validate, and every bad input is one precise line, never a traceback."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.spec import Cloud, Color, Strategy, Tier
from infra.config import ConfigError, GantryConfig, SecretValue, load_stack, parse, read_stack_file

REPO = Path(__file__).resolve().parents[2]
STACKS = REPO / "stacks"
SHIPPED = {"dev": Cloud.AWS, "staging": Cloud.AWS, "prod": Cloud.AWS, "prod-gcp": Cloud.GCP, "prod-azure": Cloud.AZURE}


def base(**overrides: Any) -> dict[str, Any]:
    """A valid ``gantry:*`` mapping; overrides replace top-level keys."""
    values: dict[str, Any] = {
        "cloud": "aws",
        "region": "us-east-1",
        "environment": "prod",
        "tier": "prod",
        "cluster": {
            "name": "gantry-prod",
            "nodePools": [{"name": "general", "minSize": 2, "desiredSize": 3, "maxSize": 5}],
        },
        "services": {"web": {"namespace": "web", "image": "ghcr.io/acme/web:1.0.0"}},
    }
    values.update(overrides)
    return values


def problems(values: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(values, source="stacks/Pulumi.prod.yaml")
    return info.value.problems


@pytest.mark.parametrize("stack,cloud", sorted(SHIPPED.items()))
def test_shipped_stacks_validate(stack: str, cloud: Cloud) -> None:
    cfg = load_stack(stack, STACKS)
    assert cfg.cloud is cloud
    assert cfg.cluster is not None and cfg.cluster.node_pools
    assert {"web", "api"} <= set(cfg.services)
    assert cfg.services["web"].strategy is Strategy.CANARY
    assert cfg.services["api"].strategy is Strategy.BLUEGREEN
    assert {"owner", "env", "cost-center"} <= set(cfg.tags)


def test_prod_is_highly_available_and_dev_is_cheap() -> None:
    prod, dev = load_stack("prod", STACKS), load_stack("dev", STACKS)
    assert prod.tier is Tier.PROD and dev.tier is Tier.DEV
    assert prod.cluster is not None and dev.cluster is not None
    assert prod.cluster.network.zone_count == 3 and dev.cluster.network.zone_count == 2
    assert {p.role for p in prod.cluster.node_pools} == {"system", "workload"}
    assert len(dev.cluster.node_pools) == 1


def test_node_pool_bounds_error_names_file_key_value_and_limit() -> None:
    values = base()
    values["cluster"]["nodePools"][0].update(minSize=5, desiredSize=3)
    assert problems(values) == [
        "gantry:cluster.nodePools[0].minSize must be <= desiredSize (3), but 5 was given"
    ]
    with pytest.raises(ConfigError) as info:
        parse(values, source="stacks/Pulumi.prod.yaml")
    assert str(info.value) == (
        "stacks/Pulumi.prod.yaml: gantry:cluster.nodePools[0].minSize must be <= desiredSize (3), but 5 was given"
    )


@pytest.mark.parametrize(
    "path,typo,suggestion",
    [
        ((), "clustr", "cluster"),
        (("cluster",), "nodePool", "nodePools"),
        (("cluster", "nodePools", 0), "maxsize", "maxSize"),
        (("services", "web"), "canaryWieght", "canaryWeight"),
    ],
)
def test_unknown_keys_suggest_the_closest_known_key(path: tuple[Any, ...], typo: str, suggestion: str) -> None:
    values = base()
    node: Any = values
    for part in path:
        node = node[part]
    node[typo] = 1
    (line,) = problems(values)
    assert f"{typo} is not a known key; did you mean {suggestion}?" in line
    assert line.startswith("gantry:")


def test_wrong_types_and_ranges_use_the_message_template() -> None:
    values = base(tier="production")
    values["services"]["web"]["canaryWeight"] = 120
    out = problems(values)
    assert any(p.startswith("gantry:tier must be one of 'dev', 'staging' or 'prod', but 'production'") for p in out)
    assert any(p == "gantry:services.web.canaryWeight must be an integer from 0 to 100, but 120 was given" for p in out)


def test_missing_required_key_is_named() -> None:
    values = base()
    del values["environment"]
    assert problems(values) == ["gantry:environment must be set, but nothing was given"]


def test_cloud_needs_region_and_cluster_but_local_does_not() -> None:
    values = base()
    del values["region"], values["cluster"]
    assert problems(values) == ["gantry:region must be set for cloud aws, but None was given"]
    values["region"] = "us-east-1"
    assert problems(values) == ["gantry:cluster must be set for cloud aws, but None was given"]
    local = parse({"cloud": "local", "environment": "local", "tier": "dev"}, source="x")
    assert local.cloud is Cloud.LOCAL and local.cluster is None


def test_region_shape_is_checked_per_cloud() -> None:
    (line,) = problems(base(region="us-east"))
    assert line == "gantry:region must be an AWS region such as us-east-1, but 'us-east' was given"


def test_latest_image_and_default_namespace_are_refused() -> None:
    values = base()
    values["services"]["web"].update(image="nginx:latest")
    assert "gantry:services.web.image must be an image pinned" in problems(values)[0]
    values["services"]["web"].update(image="nginx:1.27", namespace="default")
    assert problems(values) == [
        "gantry:services.web.namespace must be an explicit namespace other than 'default', but 'default' was given"
    ]


def test_public_endpoint_open_to_internet_needs_acknowledgement() -> None:
    values = base()
    values["cluster"]["endpoint"] = {"publicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}
    (line,) = problems(values)
    assert line.startswith("gantry:cluster.endpoint.publicAccessCidrs must be free of 0.0.0.0/0")
    values["cluster"]["endpoint"]["acknowledgePublicInternet"] = True
    cfg = parse(values, source="x")
    assert cfg.cluster is not None and cfg.cluster.endpoint.public_access


def test_rollout_settings_validate_steps_and_durations() -> None:
    out = problems(base(rollout={"steps": [50, 10], "interval": "5x"}))
    assert any(p.startswith("gantry:rollout.interval must be a number with a unit") for p in out)
    out = problems(base(rollout={"steps": [10, 10, 200]}))
    assert any(p.startswith("gantry:rollout.steps") for p in out)


def test_stack_file_errors_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.bad.yaml").write_text("config: [1, 2\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        read_stack_file("bad", tmp_path)
    with pytest.raises(ConfigError, match="stack file not found; known stacks: bad"):
        read_stack_file("missing", tmp_path)


def test_secure_values_become_placeholders(tmp_path: Path) -> None:
    doc = yaml.safe_load((STACKS / "Pulumi.dev.yaml").read_text())
    doc["config"]["gantry:environment"] = {"secure": "v1:abc"}
    (tmp_path / "Pulumi.sec.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as info:
        load_stack("sec", tmp_path)  # a secret is not a valid environment name, but it never crashes
    assert "[secret:environment]" in str(info.value)
    assert isinstance(SecretValue("x"), str)


def test_service_lookup_lists_valid_names() -> None:
    cfg = parse(base(), source="x")
    with pytest.raises(KeyError, match=r"one of the stack's services \(web\)"):
        cfg.service("nope")
    assert cfg.service("web").active_color is Color.BLUE


# ---------------------------------------------------------------- fuzzing: no input may produce a traceback

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                      st.text(max_size=12))
json_tree = st.recursive(
    json_leaf,
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=10), kids, max_size=4)),
    max_leaves=20,
)
KEYS = ["cloud", "region", "environment", "tier", "cluster", "services", "rollout", "tags", "policy", "project"]


def _check(values: Any) -> None:
    try:
        cfg = parse(values, source="stacks/Pulumi.fuzz.yaml")
    except ConfigError as exc:
        assert exc.problems, "a ConfigError always carries at least one problem"
        for line in exc.problems:
            assert "\n" not in line and line.strip()
    else:
        assert isinstance(cfg, GantryConfig)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), json_tree, max_size=8))
def test_fuzz_arbitrary_values_never_traceback(values: dict[str, Any]) -> None:
    _check(values)


def _mutations() -> st.SearchStrategy[tuple[list[Any], Any]]:
    paths = st.sampled_from([
        ["cluster", "nodePools", 0, "minSize"], ["cluster", "nodePools", 0, "maxSize"], ["cluster", "version"],
        ["cluster", "endpoint"], ["cluster", "network", "cidr"], ["services", "web", "image"],
        ["services", "web", "canaryWeight"], ["services", "web", "strategy"], ["services", "web", "readiness"],
        ["rollout", "steps"], ["rollout", "interval"], ["tier"], ["cloud"], ["region"], ["tags"],
    ])
    return st.tuples(paths, json_tree)


@settings(max_examples=150, deadline=None)
@given(st.lists(_mutations(), min_size=1, max_size=4))
def test_fuzz_mutated_valid_config_never_tracebacks(mutations: list[tuple[list[Any], Any]]) -> None:
    values = copy.deepcopy(base(rollout={"steps": [10, 50, 100], "interval": "30s"}))
    for path, value in mutations:
        node: Any = values
        for part in path[:-1]:
            if isinstance(node, dict):
                node = node.setdefault(part, {}) if not isinstance(part, int) else node
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                break
        if isinstance(node, dict):
            node[path[-1]] = value
    _check(values)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_stack_file_text_never_tracebacks(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        Path(d, "Pulumi.fuzz.yaml").write_text(text, encoding="utf-8")
        try:
            load_stack("fuzz", Path(d))
        except ConfigError as exc:
            assert exc.problems
