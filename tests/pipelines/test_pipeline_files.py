"""The pipeline files' contract: locks per stack, the approval gate, pinned actions, least privilege, and the
runner's verification verdicts (pure; the sandbox test runs the real thing)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pipeline_jobs import GITHUB, GITLAB, REPO, commands, expand, load

from pipelines import deploy, hooks

STACK_VARS = {"STAGING_STACK": "staging", "PROD_STACK": "prod"}


def gh_jobs() -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = load(GITHUB)["jobs"]
    return jobs


def deploying(kind: str) -> dict[str, tuple[dict[str, Any], str]]:
    """Job name -> (job, the stack it changes), for every job that runs `deploy` or `promote`."""
    variables = load(GITHUB)["env"] if kind == "github" else load(GITLAB)["variables"]
    out = {}
    for cmd in commands(kind):
        if cmd.stage in ("deploy", "promote"):
            argv = expand(cmd.line, {**{k: str(v) for k, v in variables.items()}, "IMAGE": "x:1", "SERVICE": "web"})
            stack = argv[argv.index("--stack" if cmd.stage == "deploy" else "--to") + 1]
            out[cmd.job] = (cmd.job_spec, stack)
    return out


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_each_deploying_job_holds_its_stacks_lock_and_is_never_cancelled(kind: str) -> None:
    jobs = deploying(kind)
    assert {stack for _, stack in jobs.values()} == {"staging", "prod"}
    for name, (job, stack) in jobs.items():
        if kind == "github":
            assert job["concurrency"] == {"group": f"gantry-stack-{stack}", "cancel-in-progress": False}, name
        else:
            assert job["resource_group"] == f"gantry-stack-{stack}", name
            assert load(GITLAB)[job["extends"]]["interruptible"] is False


def test_github_prod_waits_for_a_verified_staging_and_an_approval() -> None:
    jobs = gh_jobs()
    prod = jobs["promote-prod"]
    assert prod["needs"] == "deploy-staging" and "if" not in prod  # no always(): a failed staging stops it
    assert prod["environment"] == "production"
    assert set(jobs["deploy-staging"]["needs"]) == {"build", "image", "policy"}
    assert "pull_request" not in jobs["deploy-staging"]["if"]


def test_gitlab_prod_is_a_blocking_manual_job_after_staging() -> None:
    job = load(GITLAB)["promote-prod"]
    assert "deploy-staging" in job["needs"] and job["stage"] == "production"
    assert job["rules"] and all(r["when"] == "manual" and r["allow_failure"] is False for r in job["rules"])
    assert job["environment"]["name"] == "production"


def test_actions_are_pinned_by_commit_and_permissions_are_least_privilege() -> None:
    for path in sorted((REPO / ".github" / "workflows").glob("*.yml")):
        doc = load(path)
        assert doc["permissions"] == {"contents": "read"}, path.name
        for name, job in doc["jobs"].items():
            perms = job.get("permissions", {})
            assert perms != "write-all" and all(v in ("read", "write", "none") for v in perms.values())
            if perms.get("id-token") == "write":
                assert name in ("deploy-staging", "promote-prod"), name
            for step in job.get("steps", []):
                if "uses" in step:
                    assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
    text = GITHUB.read_text()
    # Untrusted event text never reaches a shell through an expression.
    assert not re.search(r"run:.*\$\{\{\s*github\.event\.", text)


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_the_jobs_run_the_stages_the_runner_defines(kind: str) -> None:
    variables = {**STACK_VARS, "SERVICE": "web", "IMAGE": "ghcr.io/acme/web:1.5.0"}
    for cmd in commands(kind):
        argv = expand(cmd.line, variables)
        assert argv[0] in ("python", "python3", ".venv/bin/python") and argv[1:3] == ["-m", "pipelines.deploy"]
        parsed = deploy.parser().parse_args(argv[3:])  # every line parses (argparse exits on a bad one)
        assert parsed.stage == cmd.stage


def test_dry_run_prints_the_gantry_commands() -> None:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]}
    out = subprocess.run([sys.executable, "-m", "pipelines.deploy", "--dry-run", "deploy", "--stack", "staging",
                          "--service", "web", "--image", "ghcr.io/acme/web:1.5.0"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ("gantry rollout start --stack staging --service web "
                                  "--image ghcr.io/acme/web:1.5.0 --json")
    # No --image: the image the stack file names (what the merged pull request set).
    out = subprocess.run([sys.executable, "-m", "pipelines.deploy", "--dry-run", "deploy", "--stack", "staging",
                          "--service", "web", "--image", ""], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "--image ghcr.io/gantry-demo/web:" in out.stdout


@pytest.mark.parametrize(("args", "field"), [
    (["deploy", "--stack", "", "--service", "web"], "--stack"),
    (["promote", "--from", "staging", "--to", " ", "--service", "web"], "--to"),
    (["deploy", "--stack", "staging", "--service", "nope"], "--service"),
])
def test_bad_input_is_one_line_exit_2(args: list[str], field: str) -> None:
    out = subprocess.run([sys.executable, "-m", "pipelines.deploy", "--dry-run", *args], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and field in out.stderr and "Traceback" not in out.stderr


def test_expand_refuses_what_it_cannot_reproduce() -> None:
    assert expand('python -m pipelines.deploy deploy --stack "$S" --image "${I}"', {"S": "a b", "I": "x:1"}) == [
        "python", "-m", "pipelines.deploy", "deploy", "--stack", "a b", "--image", "x:1"]
    for line in ("a $(b)", "a | b", "a && b", "a ${{ github.x }}", "a `b`"):
        with pytest.raises(ValueError):
            expand(line, {})
    with pytest.raises(KeyError):
        expand("a $UNSET", {})


OUT = {"event": "outcome", "rollout": "r-1", "phase": "promoted", "verified": True, "mismatches": []}
BACK = {**OUT, "phase": "rolled_back"}


@pytest.mark.parametrize(("code", "outcome", "journal", "want"), [
    (0, OUT, "promoted", 0),
    (1, BACK, "rolled_back", 1),                       # verified rollback: still stops the pipeline
    (1, {**BACK, "verified": False, "mismatches": ["stable serves v3"]}, "rolled_back", 4),
    (0, {**OUT, "verified": False}, "promoted", 4),    # promoted, but what users see disagrees
    (0, OUT, "rolled_back", 4),                        # the journal contradicts the outcome line
    (0, BACK, "rolled_back", 4),                       # exit 0 must mean promoted
    (0, None, None, 4),                                # killed before its outcome: an operator looks
    (4, BACK, "rolled_back", 4),
    (2, None, None, 2),
    (3, None, None, 3),
    (0, OUT, None, 0),                                 # journal unreadable: the end check still holds
])
def test_rollback_verification_verdicts(code: int, outcome: dict[str, object] | None, journal: str | None,
                                        want: int) -> None:
    assert deploy.verify_rollout(code, outcome, journal).code == want


def test_outcome_is_the_last_outcome_line() -> None:
    text = "\n".join(['{"event": "started"}', "not json", '{"event": "outcome", "phase": "a"}', "{broken",
                      '{"event": "outcome", "phase": "b"}', ""])
    assert deploy.outcome_of(text) == {"event": "outcome", "phase": "b"}
    assert deploy.outcome_of("garbage\n") is None


@pytest.mark.parametrize(("code", "record", "want"), [
    (0, {"service": "web", "phase": "promoted", "rollout": "r"}, 0),
    (1, {"service": "web", "phase": "rolled_back", "rollout": "r"}, 1),
    (0, {"service": "web", "phase": "rolled_back", "rollout": "r"}, 4),
    (0, None, 4),
    (3, None, 3),
    (4, {"service": "web", "phase": "failed", "rollout": "r"}, 4),
])
def test_promotion_verdicts(code: int, record: dict[str, object] | None, want: int) -> None:
    assert deploy.verify_promotion(code, record).code == want


def test_newest_rollout_of_the_service() -> None:
    text = ('{"service": "api", "rollout": "a"}\n{"service": "web", "rollout": "b"}\n'
            '{"service": "web", "rollout": "c"}\n')
    assert deploy.newest_rollout(text, "web") == {"service": "web", "rollout": "b"}
    assert deploy.newest_rollout(text, "db") is None


def test_migration_pod_names_are_dns_labels() -> None:
    name = hooks.pod_name("Web_App", "r-20261202-120246-BCFCFB" + "x" * 80)
    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", name) and len(name) <= 63


@pytest.mark.parametrize(("argv", "env", "message"), [
    (["smoke"], {"SMOKE_URL": "file:///etc/passwd"}, "SMOKE_URL must be an http(s) URL"),
    (["migrate", "--namespace", "web", "--", "migrate"], {}, "GANTRY_IMAGE must be set"),
    (["migrate", "--namespace", "web"], {"GANTRY_IMAGE": "x:1"}, "migration command must follow --"),
])
def test_hooks_refuse_bad_input(argv: list[str], env: dict[str, str], message: str) -> None:
    out = subprocess.run([sys.executable, "-m", "pipelines.hooks", *argv], cwd=REPO, capture_output=True,
                         text=True, timeout=60, env={"PATH": os.environ["PATH"], **env})
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_gitlab_note_posts_the_report_and_never_prints_the_token(tmp_path: Path) -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    seen: list[tuple[str, str | None, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, self.headers.get("PRIVATE-TOKEN"), body))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    report = tmp_path / "gantry.md"
    report.write_text("## gantry check\n[/red] *nothing* mandatory\n")
    token = "glpat-SECRET-token-123"
    env = {"PATH": os.environ["PATH"], "CI_API_V4_URL": f"http://127.0.0.1:{server.server_port}/api/v4",
           "CI_PROJECT_ID": "42", "CI_MERGE_REQUEST_IID": "7", deploy.NOTE_TOKEN: token}
    try:
        out = subprocess.run([sys.executable, "-m", "pipelines.deploy", "gitlab-note", "--body", str(report)],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        skipped = subprocess.run([sys.executable, "-m", "pipelines.deploy", "gitlab-note", "--body", str(report)],
                                 cwd=REPO, env={k: v for k, v in env.items() if k != "CI_MERGE_REQUEST_IID"},
                                 capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert out.returncode == 0, out.stderr
    assert seen == [("/api/v4/projects/42/merge_requests/7/notes", token, {"body": report.read_text()})]
    assert token not in out.stdout + out.stderr
    # Outside a merge request it does nothing and says why.
    assert skipped.returncode == 0 and "CI_MERGE_REQUEST_IID" in skipped.stdout and len(seen) == 1
