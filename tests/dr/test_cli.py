"""`gantry dr` at the edge: bad input is one line and exit 2, never a traceback; help lists the exit codes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "stacks").mkdir()
    for name in ("dev", "prod", "prod-dr", "local"):
        shutil.copy(REPO / "stacks" / f"Pulumi.{name}.yaml", tmp_path / "stacks")
    return tmp_path


@pytest.mark.parametrize(("args", "fragment"), [
    (["dr", "failover", "--stack", "dev"], "gantry:dr must be set in stack dev"),
    (["dr", "status", "--stack", "nope"], "stack file not found; known stacks: dev, local, prod, prod-dr"),
    (["dr", "failback", "--stack", "[red]x"], "stack file not found"),
    (["dr", "failover", "--stack", "local"], "the sandbox is not up; start it with: gantry sandbox up"),
    (["dr", "drill", "--stack", "prod"], "--stack must be a cloud local stack for a drill"),
])
def test_bad_input_is_one_line_and_exit_2(project: Path, args: list[str], fragment: str) -> None:
    result = runner.invoke(app, [*args, "--project", str(project)])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_a_stack_outside_the_pair_is_refused(project: Path) -> None:
    text = (project / "stacks" / "Pulumi.prod.yaml").read_text()
    (project / "stacks" / "Pulumi.prod-copy.yaml").write_text(text)
    result = runner.invoke(app, ["dr", "status", "--stack", "prod-copy", "--project", str(project)])
    assert result.exit_code == 2
    assert "--stack must be prod or prod-dr (gantry:dr), but 'prod-copy' was given" in " ".join(result.output.split())


def test_help_documents_the_exit_codes() -> None:
    result = runner.invoke(app, ["dr", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for part in ("0 done", "1 refused", "3 locked", "4 operator needed"):
        assert part in text
