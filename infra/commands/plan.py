"""`gantry rollout plan`: what a rollout would do (steps, rendered gate queries, thresholds, hooks, target), offline.

Registered on the ``rollout`` command group; touches no journal, lock, stack or network.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from components.spec import Strategy
from infra.commands.common import emit_json, fail, out
from infra.errors import InputError

if TYPE_CHECKING:
    from infra.rollout.preview import RolloutPreview


class PlanFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def _rollout_group(app: typer.Typer) -> typer.Typer:
    for group in app.registered_groups:
        if group.name == "rollout" and group.typer_instance is not None:
            return group.typer_instance
    raise RuntimeError("the rollout command group must be registered before `rollout plan`")


def register(app: typer.Typer) -> None:
    rollout = _rollout_group(app)

    @rollout.command("plan")
    def plan(
        stack: Annotated[str, typer.Option("--stack", "-s", help="Stack name.")],
        service: Annotated[str, typer.Option("--service", help="Service in the stack's gantry:services.")],
        image: Annotated[str, typer.Option("--image", help="New image, pinned by tag or digest.")],
        strategy: Annotated[Strategy | None, typer.Option(help="canary or bluegreen (default: the service's).")] = None,
        fmt: Annotated[PlanFormat, typer.Option("--format", "-f", help="text for people, json for pipelines.")]
        = PlanFormat.TEXT,
        project: Annotated[Path, typer.Option("--project", "-p", help="Project directory.")] = Path("."),
    ) -> None:
        """Show what `rollout start` would do, without touching anything: steps, gates and their exact queries."""
        from components.image import ImageRef, ImageRefError
        from infra.commands.rollout import load_config
        from infra.config import ConfigError
        from infra.rollout.preview import preview

        try:
            ref = ImageRef.parse(image, "--image")  # parsed once here; the preview gets the typed reference's text
        except ImageRefError as exc:
            fail(exc)
        try:
            config = load_config(project, stack)
            svc = config.service(service, strategy)
        except ConfigError as exc:
            fail(exc)
        except KeyError as exc:
            fail(InputError(str(exc.args[0])))
        chosen = strategy or svc.strategy
        result = preview(config, stack=stack, service=service, image=str(ref), strategy=chosen,
                         settings=config.rollout_for(service))
        if fmt is PlanFormat.JSON:
            emit_json(result.as_json())
            return
        _print_text(result)


def _print_text(plan: RolloutPreview) -> None:
    from infra.console import plain

    def line(text: str) -> None:
        out.print(plain(text), soft_wrap=True)

    m = plan.metrics
    line(f"rollout plan: {plan.service} on {plan.stack} -> {plan.image} ({plan.strategy.value})")
    line(f"target: {plan.target}")
    line(f"metrics: {m['provider']} at {m['url'] or '(from the stack)'}; source: {m['source']}; auth: {m['auth']}")
    line(f"judge: {plan.judge}; analysis every {plan.interval}; rollback after {plan.threshold} failed analyses")
    line("steps:")
    for i, step in enumerate(plan.steps, 1):
        line(f"  {i}. {step}")
    line("gates:")
    for gate in plan.gates:
        limit = f"<= {gate.max:g}" if gate.max is not None else f">= {gate.min:g}"
        unit = f" {gate.unit}" if gate.unit else ""
        line(f"  - {gate.name} ({gate.kind}, {limit}{unit})")
        line(f"      query: {gate.query}")
        if gate.baseline_query is not None:
            line(f"      baseline: {gate.baseline_query}")
        if gate.note:
            line(f"      {gate.note}")
    line("hooks:" if plan.hooks else "hooks: none")
    for hook in plan.hooks:
        argv = hook.get("argv")
        what = " ".join(str(a) for a in argv) if isinstance(argv, list) else f"POST {hook['url']}"
        line(f"  - {hook['name']} at {hook['phase']} (timeout {hook['timeout']}): {what}")
    for note in plan.notes:
        line(f"note: {note}")
