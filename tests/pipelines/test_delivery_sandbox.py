"""Each pipeline's deploy commands, read from its YAML, run in job order against the sandbox (HAProxy, Prometheus).

How the environments map onto the one sandbox stack (``local``), and what is simulated:
- ``STAGING_STACK`` is ``local`` and ``PROD_STACK`` is ``local-prod``, a copy of it on the same sandbox: the
  pipeline's commands take the stack names as variables, so the test runs the very lines the jobs run.
  Staging and prod are therefore the same HAProxy: "prod" already serves what staging verified, so the
  promote job finds nothing to promote and succeeds (as a rerun of the job must).
- The manual approval (GitHub's required reviewers, GitLab's ``when: manual``) is the test going on to the
  next job; the jobs' `needs` are modelled by stopping at the first command that fails, as CI does.
- The hooks are the staging stack's own ``migrate`` and ``smoke`` hooks, verbatim, except that
  ``SMOKE_URL`` points at the sandbox's frontend; ``kubectl`` (the cluster, the outermost boundary) is a
  recording fake on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pipeline_jobs import REPO, commands, expand

from infra.sandbox import lifecycle, procs
from infra.sandbox.haproxy import RuntimeApi
from infra.sandbox.loadgen import LoadGenerator
from infra.sandbox.state import SandboxState, load, marker_for, sandbox_dir

pytestmark = pytest.mark.sandbox

BIN = str(Path(sys.executable).parent)


def leftovers(project: Path) -> list[int]:
    marker = marker_for(sandbox_dir(project))
    return [int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and procs.alive(int(p.name)) and procs.is_ours(int(p.name), marker)]


def staging_hooks(smoke_url: str) -> list[dict[str, Any]]:
    """The staging stack's web hooks, verbatim but for SMOKE_URL (the sandbox frontend)."""
    doc = yaml.safe_load((REPO / "stacks" / "Pulumi.staging.yaml").read_text())
    hooks: list[dict[str, Any]] = doc["config"]["gantry:services"]["web"]["rollout"]["hooks"]
    assert {h["name"] for h in hooks} == {"migrate", "smoke"}
    for hook in hooks:
        for var in hook.get("env", []):
            if isinstance(var, dict) and var["name"] == "SMOKE_URL":
                var["value"] = smoke_url
    return hooks


def fake_kubectl(directory: Path, record: Path, exit_code: int = 0) -> Path:
    """A ``kubectl`` that records its argv and environment keys (one JSON line per call) and exits ``exit_code``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "kubectl"
    path.write_text(f"#!{sys.executable}\n"
                    "import json, os, sys\n"
                    f"with open({str(record)!r}, 'a') as fh:\n"
                    "    fh.write(json.dumps({'argv': sys.argv[1:], 'env': sorted(os.environ)}) + '\\n')\n"
                    f"sys.exit({exit_code})\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Any:
    root = tmp_path / "proj"
    (root / "stacks").mkdir(parents=True)
    shutil.copyfile(REPO / "stacks" / "Pulumi.local.yaml", root / "stacks" / "Pulumi.local.yaml")
    # "prod" is a second stack on the same sandbox: promote refuses --to equal to --from.
    shutil.copyfile(REPO / "stacks" / "Pulumi.local.yaml", root / "stacks" / "Pulumi.local-prod.yaml")
    # The checkout's pipelines/ (CI runs the runner and the hooks from the checkout, as `python -m`).
    shutil.copytree(REPO / "pipelines", root / "pipelines", ignore=shutil.ignore_patterns("__pycache__"))
    yield root
    lifecycle.down(root)
    assert leftovers(root) == []
    shutil.rmtree(root, ignore_errors=True)


def configure(project: Path, st: SandboxState) -> None:
    """Give web the staging hooks and a short canary (50%, 100% every 3 s), on the running sandbox."""
    path = project / "stacks" / "Pulumi.local.yaml"
    doc = yaml.safe_load(path.read_text())
    cfg = doc["config"]
    rollout = dict(cfg["gantry:rollout"], steps=[50, 100], interval="3s",
                   hooks=staging_hooks(st.frontend_url("web") + "/"))
    cfg["gantry:services"]["web"]["rollout"] = rollout
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def env_for(fake_bin: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_"))}
    env["PATH"] = os.pathsep.join([BIN, str(fake_bin), env.get("PATH", "")])
    env["PYTHONPATH"] = str(REPO)  # gantry's own packages (the CI venv has them installed)
    return env


def promote_available(env: dict[str, str]) -> bool:
    return subprocess.run(["gantry", "promote", "--help"], env=env, capture_output=True,
                          timeout=60).returncode == 0


def live(st: SandboxState) -> tuple[dict[str, int], str]:
    weights = RuntimeApi(Path(st.haproxy_socket)).weights("be_web")
    fresh = load(Path(st.directory))
    assert fresh is not None
    stable = fresh.services["web"].slots["stable"]
    assert stable is not None
    return weights, stable.image


def events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.startswith("{")]


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_pipeline_delivers_a_healthy_release_and_stops_a_faulty_one_before_prod(
        kind: str, project: Path, tmp_path: Path) -> None:
    st = lifecycle.up(project)
    configure(project, st)
    record = tmp_path / "kubectl.jsonl"
    env = env_for(fake_kubectl(tmp_path / "fakebin", record).parent)
    variables = {"STAGING_STACK": "local", "PROD_STACK": "local-prod", "SERVICE": "web"}
    stages = [c.stage for c in commands(kind)]
    assert stages[-2:] == ["deploy", "promote"] and sorted(stages[:-2]) == ["check", "test", "wheel"], stages
    deploy_only = {"deploy", "promote"}

    with LoadGenerator(st.frontend_url("web"), rate_rps=200, max_seconds=200):
        # 1. A healthy release (demo:v2): staging promotes and verifies it, then prod gets it.
        ran = run_pipeline_only(kind, project, {**variables, "IMAGE": "demo:v2"}, env, deploy_only)
        deploy = ran[0]
        assert deploy["stage"] == "deploy" and deploy["code"] == 0, deploy["out"][-3000:]
        assert "rollback verification: rollout" in deploy["out"] and "promoted and verified" in deploy["out"]
        assert live(st) == ({"stable": 100, "canary": 0}, "demo:v2")
        log = events(project / "reports" / "rollout-local-web.jsonl")
        results = [(i, r) for i, e in enumerate(log) if e["event"] == "hook" for r in e["data"]["results"]]
        first_shift = next(i for i, e in enumerate(log)
                           if e["event"] == "applied" and e["data"].get("action") == "set_weight")
        migrations = [(i, r) for i, r in results if r["name"] == "migrate"]
        assert len(migrations) == 1 and migrations[0][1]["ok"] is True, migrations
        assert migrations[0][0] < first_shift, "the migration must run before any traffic moves"
        smokes = [r for _, r in results if r["name"] == "smoke"]
        # One smoke test before each analysis (two steps), each through the real HAProxy frontend.
        assert len(smokes) >= 2 and all(r["ok"] for r in smokes), smokes
        assert all("20/20 ok" in r["detail"] for r in smokes), smokes
        calls = [json.loads(ln) for ln in record.read_text().splitlines()]
        assert len(calls) == 1
        argv = calls[0]["argv"]
        assert argv[:4] == ["--namespace", "web", "run", argv[3]] and "--image=demo:v2" in argv
        assert argv[-4:] == ["--", "./manage.py", "migrate", "--noinput"] and "--rm" in argv
        # The hook's environment is Gantry's minimal one: no CI secrets, no PYTHONPATH, only what it lists.
        assert "KUBECONFIG" in calls[0]["env"] and "PYTHONPATH" not in calls[0]["env"]
        promote = ran[1]
        if promote["code"] is None:
            # gantry promote is not on this branch yet: the job's exact command, as the runner would run it.
            assert promote["dry"].returncode == 0, promote["dry"].stderr
            assert promote["out"].strip() == "gantry promote --from local --to local-prod --service web"
        else:
            assert promote["code"] == 0, promote["out"][-3000:]
            assert live(st) == ({"stable": 100, "canary": 0}, "demo:v2")

        # 2. A faulty release (demo:v3, 20% errors): the canary is rolled back, the rollback verified, and
        #    the pipeline stops before prod.
        before = history(project, env)
        ran = run_pipeline_only(kind, project, {**variables, "IMAGE": "demo:v3"}, env, deploy_only)
        assert [r["stage"] for r in ran] == ["deploy"], "nothing may run after a failed staging deploy"
        assert ran[0]["code"] == 1, ran[0]["out"][-3000:]
        assert "rollback verified" in ran[0]["out"]
        assert live(st) == ({"stable": 100, "canary": 0}, "demo:v2")
        after = history(project, env)
        assert len(after) == len(before) + 1 and after[0]["image"] == "demo:v3" and after[0]["phase"] == "rolled_back"


def run_pipeline_only(kind: str, project: Path, variables: dict[str, str], env: dict[str, str],
                      stages: set[str]) -> list[dict[str, Any]]:
    """The deploying part of the pipeline (build, tests and check are the project's CI, run elsewhere)."""
    ran: list[dict[str, Any]] = []
    for cmd in [c for c in commands(kind) if c.stage in stages]:
        argv = expand(cmd.line, variables)
        if cmd.stage == "promote" and not promote_available(env):
            dry = subprocess.run([*argv[:3], "--dry-run", *argv[3:]], cwd=project, env=env,
                                 capture_output=True, text=True, timeout=60)
            ran.append({"job": cmd.job, "stage": cmd.stage, "code": None, "out": dry.stdout, "dry": dry})
            break
        done = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, timeout=240)
        ran.append({"job": cmd.job, "stage": cmd.stage, "code": done.returncode, "out": done.stdout + done.stderr})
        if done.returncode != 0:
            break
    return ran


def history(project: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    done = subprocess.run(["gantry", "rollout", "history", "--stack", "local", "--json"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [json.loads(ln) for ln in done.stdout.splitlines() if ln.startswith("{")]


def test_a_failed_migration_stops_the_release_before_any_traffic_moves(project: Path, tmp_path: Path) -> None:
    st = lifecycle.up(project)
    configure(project, st)
    record = tmp_path / "kubectl.jsonl"
    env = env_for(fake_kubectl(tmp_path / "fakebin", record, exit_code=1).parent)
    variables = {"STAGING_STACK": "local", "PROD_STACK": "local-prod", "SERVICE": "web", "IMAGE": "demo:v2"}
    with LoadGenerator(st.frontend_url("web"), rate_rps=100, max_seconds=120):
        ran = run_pipeline_only("gitlab", project, variables, env, {"deploy", "promote"})
    assert [r["stage"] for r in ran] == ["deploy"] and ran[0]["code"] == 1, ran[0]["out"][-3000:]
    assert "rollback verified" in ran[0]["out"]
    log = events(project / "reports" / "rollout-local-web.jsonl")
    assert not [e for e in log if e["event"] == "applied" and e["data"].get("action") == "set_weight"]
    assert live(st) == ({"stable": 100, "canary": 0}, "demo:v1")
    assert len(record.read_text().splitlines()) == 1  # tried once; the pipeline went no further
