"""`gantry promote --from S --to T --service NAME`: the rollout's exit codes, one-line refusals, no side effects.

Stacks here use the ``file`` target (no stack outputs), so the source's journal alone vouches for its version;
tests/rollout/test_gitops.py covers the stack-outputs side and test_gitops_engine.py the real CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path

import drill_cli
import pytest
from fakes import JsonFileTarget
from typer.testing import CliRunner

from infra.cli import app
from infra.rollout.journal import SqliteJournal, journal_path
from infra.rollout.seams import Phase, StackName

drill_cli.register()  # the test-only file target, in this process

runner = CliRunner()
GATE = f"{sys.executable} -c \\\"import os; print(os.environ.get('GATE_VALUE', '0.0'))\\\""


def stack_file(name: str) -> str:
    return f"""config:
  gantry:cloud: local
  gantry:environment: {name}
  gantry:tier: dev
  gantry:services:
    web: {{namespace: web, image: "app:1.0", strategy: canary}}
  gantry:rollout:
    steps: [50, 100]
    interval: 0s
    threshold: 1
    judge: threshold
    target: file
    metrics: {{provider: command}}
    gates: [{{name: errors, expr: "{GATE}", max: 0.05}}]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "envs").mkdir()
    (tmp_path / "Pulumi.yaml").write_text("name: drill\nruntime: python\nstackConfigDir: envs\n")
    for name in ("staging", "prod"):
        (tmp_path / "envs" / f"Pulumi.{name}.yaml").write_text(stack_file(name))
    return tmp_path


def gantry(project: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--project", str(project)], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def promote(project: Path, *extra: str) -> tuple[int, str, str]:
    return gantry(project, "promote", "--from", "staging", "--to", "prod", "--service", "web", *extra)


def runs(project: Path, stack: str) -> str:
    return JsonFileTarget(drill_cli.file_target_path(project, stack, "web")).current().stable_image


def test_promote_rolls_out_what_staging_verified_with_its_commit(project: Path) -> None:
    code, _, err = gantry(project, "rollout", "start", "--stack", "staging", "--service", "web", "--image", "app:2.0",
                          "--commit", "a" * 40, "--committed-at", "2026-12-01T08:00:00Z")
    assert code == 0, err
    code, stdout, err = promote(project)
    assert code == 0, err
    assert "promoting app:2.0 from staging" in stdout and runs(project, "prod") == "app:2.0"
    journal = SqliteJournal(journal_path(project))
    try:
        (record,) = journal.history(StackName("prod"))
    finally:
        journal.close()
    assert (record.image, record.phase, record.provenance.commit) == ("app:2.0", Phase.PROMOTED, "a" * 40)
    # Nothing left to do: exit 0, no second rollout.
    code, stdout, _ = promote(project)
    assert code == 0 and "prod already runs app:2.0 for web: nothing to promote" in stdout


def test_promote_refuses_a_rolled_back_staging_rollout_in_one_line_and_touches_nothing(project: Path) -> None:
    assert gantry(project, "rollout", "start", "--stack", "staging", "--service", "web", "--image", "app:2.0")[0] == 0
    code, _, _ = gantry(project, "rollout", "start", "--stack", "staging", "--service", "web", "--image", "app:3.0",
                        env={"GATE_VALUE": "0.5"})
    assert code == 1
    code, stdout, err = promote(project)
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and "error: promote refused: staging's last rollout of web (app:3.0" in err
    assert "rolled_back" in err
    assert not drill_cli.file_target_path(project, "prod", "web").exists(), "prod was never touched"


def test_promote_refuses_when_staging_has_no_rollout(project: Path) -> None:
    code, _, err = promote(project)
    assert code == 2 and "no promoted rollout of web is recorded for staging" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "staging", "--to", "staging", "--service", "web"], "--to must name another stack than --from"),
    (["--from", "staging", "--to", "prod", "--service", "nope"], "service must be one of the stack's services"),
    (["--from", "staging", "--to", "qa", "--service", "web"], "stack file not found; known stacks: prod, staging"),
])
def test_bad_input_is_one_line_and_exit_2(project: Path, args: list[str], message: str) -> None:
    code, _, err = gantry(project, "promote", *args)
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_stack_dir_points_at_the_stack_files(project: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    code, _, err = promote(project, "--stack-dir", str(other))
    assert code == 2 and "stack file not found" in err


def test_rollout_start_without_image_on_a_target_without_a_record_needs_image(project: Path) -> None:
    code, _, err = gantry(project, "rollout", "start", "--stack", "staging", "--service", "web")
    assert code == 2 and "--image must be given, but stack staging runs app:1.0 for web and has nothing staged" in err
