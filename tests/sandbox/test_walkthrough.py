"""The README's walkthrough, run line by line exactly as written, from a fresh project, on real HAProxy and Prometheus.

The commands come from the README itself (the fenced block after the ``walkthrough`` marker), so the two
cannot drift. Each line's expected exit code is the ``(exit N)`` of its comment (0 when it gives none).
Outcomes are then checked in the project's journal and in HAProxy, never in what the test scripted.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sandbox_helpers import REPO, leftovers

from infra.rollout.journal import EntryKind, SqliteJournal, journal_path
from infra.rollout.seams import Phase, StackName
from infra.sandbox import demo, lifecycle

MARK = "<!-- walkthrough:"


@dataclass(frozen=True, slots=True)
class Line:
    command: str
    comment: str

    @property
    def exit_code(self) -> int:
        found = re.search(r"\(exit (\d+)\)", self.comment)
        return int(found.group(1)) if found else 0

    @property
    def image(self) -> str | None:
        argv = shlex.split(self.command)
        return argv[argv.index("--image") + 1] if "--image" in argv else None


def walkthrough(readme: str) -> list[Line]:
    """The commands of the README's walkthrough block, with their comments."""
    start = readme.index(MARK)
    fence = readme.index("```bash\n", start) + len("```bash\n")
    block = readme[fence:readme.index("```", fence)]
    lines = []
    for raw in block.splitlines():
        if not raw.strip():
            continue
        command, _, comment = raw.partition("#")
        lines.append(Line(command.strip(), comment.strip()))
    return lines


def readme_lines() -> list[Line]:
    return walkthrough((REPO / "README.md").read_text(encoding="utf-8"))


def test_the_walkthrough_is_literal_and_uses_its_own_versions() -> None:
    lines = readme_lines()
    assert lines, "the README has no walkthrough block"
    assert all(line.command.startswith(".venv/bin/gantry ") for line in lines)
    commands = [" ".join(shlex.split(line.command)[1:3]) for line in lines]
    assert commands[0] == "sandbox up" and commands[-1] == "sandbox down"
    assert "rollout history" in commands
    images = [line.image for line in lines if line.image]
    assert len(images) == len(set(images)) == 3, "each step must use its own version"
    # The demo's versions never overlap: its rollbacks must not quarantine the walkthrough's.
    assert not set(images) & set(demo.IMAGES.values())
    assert sorted(line.exit_code for line in lines if line.image) == [0, 0, 1]


def _env_without_venv_on_path() -> dict[str, str]:
    """The user's shell: the venv is NOT activated, so hooks must find gantry without PATH."""
    venv_bin = str(Path(sys.prefix) / "bin")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and Path(p).resolve() != Path(venv_bin).resolve())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    for ci in ("GITHUB_SHA", "CI_COMMIT_SHA", "CI_COMMIT_TIMESTAMP"):
        env.pop(ci, None)
    env["PATH"] = path or "/usr/bin:/bin"
    return env


def fresh_project(root: Path) -> Path:
    """A copy of the repository's project files, with the set-up's ``.venv`` where a clone has it."""
    root.mkdir(parents=True)
    shutil.copy(REPO / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copytree(REPO / "stacks", root / "stacks")
    (root / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return root


@pytest.mark.sandbox
def test_the_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    project = fresh_project(tmp_path / "clone")
    env = _env_without_venv_on_path()
    assert shutil.which("gantry", path=env["PATH"]) is None or "gantry" not in str(sys.prefix)
    lines = readme_lines()
    ran: list[tuple[Line, subprocess.CompletedProcess[str], float]] = []
    started = time.monotonic()
    try:
        for line in lines:
            t0 = time.monotonic()
            res = subprocess.run(shlex.split(line.command), cwd=project, env=env, capture_output=True, text=True,
                                 timeout=300)
            ran.append((line, res, time.monotonic() - t0))
            assert res.returncode == line.exit_code, (
                f"{line.command!r} exited {res.returncode}, the README says {line.exit_code}:\n"
                f"{res.stdout[-3000:]}\n{res.stderr[-2000:]}")
        total = time.monotonic() - started
        print(f"\nwalkthrough: {len(lines)} commands in {total:.1f}s (load {os.getloadavg()[0]:.2f}): "
              + "; ".join(f"{shlex.split(ln.command)[1]} {shlex.split(ln.command)[2]} {s:.1f}s"
                          for ln, _, s in ran))
        assert leftovers(project) == [], "`sandbox down` left a process behind"
    finally:
        lifecycle.down(project)

    journal = SqliteJournal(journal_path(project))
    try:
        records = {r.image: r for r in journal.history(StackName("local"))}
        images = [line.image for line in lines if line.image]
        assert set(records) == set(images)
        healthy, faulty, bluegreen = (records[i] for i in images)  # README order
        assert healthy.phase is Phase.PROMOTED and bluegreen.phase is Phase.PROMOTED
        assert faulty.phase is Phase.ROLLED_BACK
        reason = next(e.data.get("reason", "") for e in journal.entries(faulty.id)
                      if e.kind is EntryKind.DECISION and e.data.get("decision") == "rollback")
        # Rolled back for what the canary did (its error rate), not for missing or too little data.
        assert "error-rate" in str(reason) and "inconclusive" not in str(reason), reason
        analyses = [e for e in journal.entries(faulty.id) if e.kind is EntryKind.ANALYSIS]
        failed = [c for a in analyses if a.data["verdict"] == "fail" for c in a.data["checks"]
                  if c["verdict"] == "fail"]
        # The canary's own errors, served to the load that `sandbox up` started, crossed the boundary.
        counts = [re.match(r"(\d+)/(\d+) canary errors", str(c["detail"])) for c in failed]
        assert any(m and 0 < int(m.group(1)) <= int(m.group(2)) for m in counts), failed
        hooks = [r for e in journal.entries(bluegreen.id) if e.kind is EntryKind.HOOK for r in e.data["results"]]
        assert hooks and all(h["ok"] for h in hooks), hooks
    finally:
        journal.close()
    # Piped, `rollout history` prints every value whole.
    history = next(res.stdout for line, res, _ in ran if "rollout history" in line.command)
    assert "…" not in history
    for image in images:
        assert image in history
