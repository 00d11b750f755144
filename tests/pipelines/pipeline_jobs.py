"""Reads the deploy commands out of the two pipeline files, in job order, and expands them like a CI shell would.

Used by tests/pipelines: what the tests run is what the YAML says, not a copy of it.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    # pipelines/ is checkout tooling (CI runs it as `python -m` from the checkout), not part of the wheel.
    sys.path.insert(0, str(REPO))
GITHUB = REPO / ".github" / "workflows" / "delivery.yml"
GITLAB = REPO / ".gitlab-ci.yml"
RUNNER = "pipelines.deploy"
_VAR = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class DeployCommand:
    """One invocation of the runner by one job: the job, its line as written, and the runner's stage."""

    job: str
    line: str
    stage: str
    job_spec: dict[str, Any]


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    return doc


def _runner_lines(lines: list[str]) -> list[str]:
    return [ln.strip() for ln in lines if f"-m {RUNNER} " in ln]


def _stage(line: str) -> str:
    words = shlex.split(line)
    rest = words[words.index(RUNNER) + 1:]
    return next(w for w in rest if not w.startswith("-"))


def github_commands(path: Path = GITHUB) -> list[DeployCommand]:
    """The runner invocations of every job, jobs in `needs` order (ties by file order)."""
    jobs: dict[str, dict[str, Any]] = load(path)["jobs"]
    needs = {name: ([job["needs"]] if isinstance(job.get("needs"), str) else job.get("needs", []))
             for name, job in jobs.items()}
    order = list(TopologicalSorter(needs).static_order())
    out = []
    for name in order:
        lines: list[str] = []
        for step in jobs[name].get("steps", []):
            if "run" in step:
                lines.extend(step["run"].splitlines())
        out.extend(DeployCommand(name, ln, _stage(ln), jobs[name]) for ln in _runner_lines(lines))
    return out


def gitlab_commands(path: Path = GITLAB) -> list[DeployCommand]:
    """The runner invocations of every job, jobs in stage order (ties by file order)."""
    doc = load(path)
    stages: list[str] = doc["stages"]
    jobs = {k: v for k, v in doc.items() if isinstance(v, dict) and "stage" in v}
    out = []
    for name in sorted(jobs, key=lambda n: stages.index(jobs[n]["stage"])):
        lines = [ln for item in jobs[name].get("script", []) for ln in str(item).splitlines()]
        out.extend(DeployCommand(name, ln, _stage(ln), jobs[name]) for ln in _runner_lines(lines))
    return out


def commands(kind: str) -> list[DeployCommand]:
    return github_commands() if kind == "github" else gitlab_commands()


def expand(line: str, env: dict[str, str]) -> list[str]:
    """Split ``line`` into argv and expand ``$VAR``/``${VAR}`` from ``env``, as both CI shells do for these
    lines. Anything else a shell would interpret (command substitution, globs, operators) is refused, so a
    job line the test cannot reproduce exactly fails the test instead of being approximated."""
    if any(tok in line for tok in ("$(", "`", "|", "&&", ";", ">", "<", "*", "${{")):
        raise ValueError(f"not a plain command line: {line}")
    words = shlex.split(line)

    def sub(match: re.Match[str]) -> str:
        name = match["braced"] or match["plain"]
        if name not in env:
            raise KeyError(f"{name} is not set for: {line}")
        return env[name]

    return [_VAR.sub(sub, w) for w in words]
