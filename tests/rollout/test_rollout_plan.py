"""`gantry rollout plan`: the steps, gates with their exact queries and limits, hooks and target, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from components.spec import RouterKind, Strategy
from infra.config import load_stack
from infra.rollout.metrics.templates import TEMPLATES, DataPlane, track_ids
from infra.rollout.seams import Track

REPO = Path(__file__).resolve().parents[2]


def plan(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    # No network: proxies point nowhere, and the plan must not need them.
    env = {**os.environ, "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    return subprocess.run([sys.executable, "-m", "infra.cli", "rollout", "plan", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_prod_web_plan_shows_gateway_api_queries_and_the_restarts_gate(tmp_path: Path) -> None:
    before = sorted(p.name for p in REPO.iterdir())
    res = plan("--stack", "prod", "--service", "web", "--image", "ghcr.io/gantry-demo/web:1.5.0", "--format", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["steps"] == ["canary 10%", "canary 25%", "canary 50%", "canary 100%"]
    assert doc["target"].startswith("Pulumi stack prod")
    assert doc["metrics"]["auth"] == "sigv4" and doc["metrics"]["url"] is None
    assert "stack output metrics.url" in doc["metrics"]["source"]
    gates = {g["name"]: g for g in doc["gates"]}
    ids = track_ids("web", "web", 80, Strategy.CANARY)
    contour = TEMPLATES[DataPlane.CONTOUR]
    assert gates["error-rate"]["query"] == contour.error_rate_query(ids[Track.CANARY].as_map(), 60)
    assert gates["error-rate"] == {**gates["error-rate"], "kind": "absolute", "max": 0.05}
    assert gates["p95-latency"]["max"] == 2000.0
    assert gates["error-rate-sprt"]["kind"] == "comparative"
    assert gates["error-rate-sprt"]["baselineQuery"] == contour.error_rate_query(ids[Track.BASELINE].as_map(), 60)
    assert gates["restarts"]["max"] == 5.0
    assert "gantry.dev/track=canary" in gates["restarts"]["query"]
    assert all(("max" in g) != ("min" in g) for g in doc["gates"]), "each gate has exactly one limit"
    # The stack's migration (before any traffic moves) and smoke (before each analysis) hooks.
    assert [(h["name"], h["phase"]) for h in doc["hooks"]] == [("migrate", "pre-rollout"), ("smoke", "step")]
    assert sorted(p.name for p in REPO.iterdir()) == before, "plan writes nothing"


def test_plan_text_and_the_local_stacks_hooks() -> None:
    res = plan("--stack", "local", "--service", "api", "--image", "demo:v2")
    assert res.returncode == 0, res.stderr
    assert "pre-promotion analysis of the preview color" in res.stdout
    assert "smoke at step" in res.stdout
    assert 'version="v2"' in res.stdout and 'service="api"' in res.stdout


def test_istio_and_nginx_services_get_their_own_templates() -> None:
    cfg = load_stack("prod", REPO / "stacks")
    from infra.rollout.preview import preview

    for router, metric in (("istio", "istio_requests_total"), ("nginx", "nginx_ingress_controller_requests")):
        svc = cfg.services["web"].model_copy(update={"router": RouterKind(router)})
        variant = cfg.model_copy(update={"services": {**cfg.services, "web": svc}})
        doc = preview(variant, stack="prod", service="web", image="ghcr.io/a/web:2", strategy=Strategy.CANARY,
                      settings=variant.rollout_for("web")).as_json()
        gates = doc["gates"]
        assert isinstance(gates, list)
        queries = [g["query"] for g in gates if isinstance(g, dict)]
        assert any(metric in str(q) for q in queries), (router, queries)


def test_bad_input_is_one_line_exit_2() -> None:
    res = plan("--stack", "prod", "--service", "nope", "--image", "ghcr.io/a/web:1")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "one of the stack's services" in res.stderr
    res = plan("--stack", "prod", "--service", "web", "--image", "web:latest")
    assert res.returncode == 2 and "--image" in res.stderr and "Traceback" not in res.stderr
