"""Helpers for the sandbox tests: a throwaway project with the local stack, leftover-process detection."""

from __future__ import annotations

from pathlib import Path

from infra.sandbox import procs
from infra.sandbox.state import marker_for, sandbox_dir

REPO = Path(__file__).resolve().parents[2]


def make_project(root: Path, extra_yaml: str = "") -> Path:
    """A project directory holding ``stacks/Pulumi.local.yaml`` (the shipped one, plus ``extra_yaml``)."""
    (root / "stacks").mkdir(parents=True, exist_ok=True)
    text = (REPO / "stacks" / "Pulumi.local.yaml").read_text()
    (root / "stacks" / "Pulumi.local.yaml").write_text(text + extra_yaml)
    return root


def leftovers(project: Path) -> list[int]:
    """Pids of live processes that still carry this project's sandbox directory in their argv."""
    marker = marker_for(sandbox_dir(project))
    return [int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and procs.alive(int(p.name)) and procs.is_ours(int(p.name), marker)]


