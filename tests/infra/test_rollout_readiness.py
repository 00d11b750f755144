"""Rollout settings that cannot work are config errors at load, and `gantry stacks --format json` reports readiness."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.config import ConfigError, parse
from infra.rollout.readiness import readiness

REPO = Path(__file__).resolve().parents[2]


def base(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "cloud": "gcp", "region": "europe-west1", "environment": "dev", "tier": "dev",
        "cluster": {"name": "c1"},
        "services": {"web": {"namespace": "web", "image": "ghcr.io/acme/web:1.0.0"}},
    }
    values.update(overrides)
    return values


def problems(values: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(values, source="stacks/Pulumi.dev.yaml")
    return info.value.problems


def test_a_cluster_stack_is_ready_through_its_exported_managed_prometheus() -> None:
    assert readiness(parse(base(), source="x")) == []


def test_no_url_and_no_exported_endpoint_names_the_key() -> None:
    (line,) = problems(base(cluster={"name": "c1", "managedPrometheus": False}))
    assert line.startswith("gantry:rollout.metrics.url must be set (a Prometheus base URL), or exported by the "
                           "cluster (cluster.managedPrometheus: true")
    ok = base(cluster={"name": "c1", "managedPrometheus": False}, rollout={"metrics": {"url": "http://prom:9090"}})
    assert readiness(parse(ok, source="x")) == []


def test_cloudwatch_needs_a_region_off_aws() -> None:
    values = base(rollout={"metrics": {"provider": "cloudwatch"}, "gates": [{"name": "alarm", "expr": "alarm:x",
                                                                             "max": 0}]})
    (line,) = problems(values)
    assert line.startswith("gantry:rollout.metrics.region must be set (an AWS region) for cloudwatch")
    values["rollout"]["metrics"]["region"] = "eu-west-1"
    assert readiness(parse(values, source="x")) == []


def test_cloudwatch_on_aws_defaults_to_the_stacks_region() -> None:
    values = base(cloud="aws", region="us-west-2", rollout={"metrics": {"provider": "cloudwatch"},
                                                            "gates": [{"name": "a", "expr": "alarm:x", "max": 0}]})
    assert readiness(parse(values, source="x")) == []


def test_providers_without_traffic_need_gates_and_per_service_keys_are_named() -> None:
    values = base()
    values["services"]["web"]["rollout"] = {"metrics": {"provider": "http", "url": "http://probe"}}
    (line,) = problems(values)
    assert line == ("gantry:services.web.rollout.gates must be non-empty when metrics.kind is http (it gives no "
                    "per-version traffic), but [] was given")


def test_region_shape_is_checked() -> None:
    (line,) = problems(base(rollout={"metrics": {"region": "mars"}}))
    assert line.startswith("gantry:rollout.metrics.region must")


def test_stacks_json_reports_rollout_readiness(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "infra.cli", "stacks", "--format", "json"], cwd=REPO,
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    rows = {r["stack"]: r for r in json.loads(res.stdout)["stacks"]}
    assert set(rows) >= {"dev", "staging", "prod", "prod-gcp", "prod-azure", "local"}
    for name, row in rows.items():
        assert row["rollout"] == {"ready": True, "problems": []}, name
    bad = tmp_path / "proj"
    (bad / "stacks").mkdir(parents=True)
    (bad / "Pulumi.yaml").write_text("name: p\nruntime: python\nstackConfigDir: stacks\n")
    (bad / "stacks" / "Pulumi.dev.yaml").write_text(
        "config:\n  gantry:cloud: gcp\n  gantry:region: europe-west1\n  gantry:environment: dev\n"
        "  gantry:tier: dev\n  gantry:cluster:\n    name: c1\n    managedPrometheus: false\n"
        "  gantry:services:\n    web:\n      namespace: web\n      image: ghcr.io/a/web:1.0.0\n")
    res = subprocess.run([sys.executable, "-m", "infra.cli", "stacks", "--format", "json", "--project", str(bad)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 1
    (row,) = json.loads(res.stdout)["stacks"]
    assert row["rollout"]["ready"] is False
    assert "gantry:rollout.metrics.url must be set" in row["rollout"]["problems"][0]


def test_a_local_stack_without_the_sandbox_target_renders_but_is_not_ready() -> None:
    cfg = parse({"cloud": "local", "environment": "dev", "tier": "dev",
                 "services": {"web": {"namespace": "web", "image": "ghcr.io/acme/web:1.0.0"}}}, source="x")
    assert readiness(cfg) == ["services.web.rollout.target must be haproxy (the sandbox) on a local stack, "
                              "or pulumi with metrics.url sandbox (the engine-driven sandbox), but 'pulumi' "
                              "was given"]


def test_the_engine_driven_sandbox_stack_is_ready() -> None:
    from infra.config import load_stack

    assert readiness(load_stack("local-engine", Path(__file__).resolve().parents[2] / "stacks")) == []
