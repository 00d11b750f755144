"""Shared checks of issue 17's acceptance tests a-d, for the fake workspace (CI) and the real Pulumi CLI (engine).

``status_agrees`` is (d): what ``gantry rollout status --json`` says (run as its own process, as a user
would) against the stack's ``services.<name>`` output. ``Agreement`` runs it after every applied step and
every phase change of a rollout, as the engine's observer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from components.k8s.outputs import RolloutState, ServiceOutputs
from infra.rollout.entries import Applied, Logged, PhaseSet
from infra.rollout.scheduler import RolloutState as Replayed

STEP_ACTIONS = {"prepare", "set_weight", "switch", "revert"}


def gantry_status(project: Path, rollout_id: str, env: dict[str, str] | None = None) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-m", "infra.cli", "rollout", "status", rollout_id, "--json",
                           "--project", str(project)], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    value = json.loads(done.stdout)
    assert isinstance(value, dict)
    return value


def status_agrees(status: dict[str, object], out: ServiceOutputs, baseline: str) -> list[str]:
    """How ``gantry rollout status`` and ``pulumi stack output`` disagree about one service (empty: they agree)."""
    problems: list[str] = []
    image, phase = str(status["image"]), str(status["phase"])

    def want(what: str, seen: object, expected: object) -> None:
        if seen != expected:
            problems.append(f"{phase}: status says {what} {expected!r}, the stack output {seen!r}")

    mark = out.rollout
    if phase in ("progressing", "paused", "promoting"):
        want("a rollout holding the service", mark and (mark.image, mark.state), (image, RolloutState.PROGRESSING))
        if out.strategy.value == "canary":
            want("canary image", out.canary_image, image)
            want("canary weight", out.canary_weight, status["weight"])
    elif phase == "rolling_back":
        # Until the revert's `up` has run the stack still shows the rollout; then it shows it rolled back.
        if mark is None or mark.image != image or mark.state is RolloutState.PROMOTED:
            problems.append(f"rolling_back: the stack output shows rollout {mark}")
    elif phase == "promoted":
        want("rollout", mark and (mark.image, mark.state), (image, RolloutState.PROMOTED))
        want("stable image", out.progress().serving, image)
        want("canary image", out.canary_image, None)
    elif phase == "rolled_back":
        want("rollout", mark and (mark.image, mark.state), (image, RolloutState.ROLLED_BACK))
        want("stable image", out.progress().serving, baseline)
        want("canary image", out.canary_image, None)
    return problems


@dataclass
class Agreement:
    """An engine observer checking (d) after every applied step and every phase change."""

    project: Path
    outputs: Callable[[], ServiceOutputs]
    baseline: str
    env: dict[str, str] | None = None
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def on_entry(self, state: Replayed, entry: Logged) -> None:
        body = entry.body
        if isinstance(body, Applied) and body.effect.action.value in STEP_ACTIONS:
            what = body.effect.action.value
        elif isinstance(body, PhaseSet):
            what = body.phase.value
        else:
            return
        status = gantry_status(self.project, state.rollout_id, self.env)
        self.checked.append(f"{body.kind.value}:{what}")
        self.problems += status_agrees(status, self.outputs(), self.baseline)

    def on_wait(self, state: Replayed, until: float, now: float) -> None:
        del state, until, now
