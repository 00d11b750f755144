"""`gantry rollout start|status|pause|resume|abort|promote|history` and `gantry rollback`: the rollout CLI.

Thin: validates input before anything is touched, builds the parts through ``infra.rollout.factory``,
runs ``infra.rollout.engine.Engine`` and renders the outcome. Exit codes: 0 promoted, 1 rolled back,
2 usage or input error, 3 stack locked, 4 the rollback itself failed (an operator must act).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from components.spec import Strategy
from infra.commands.common import err, fail, out
from infra.console import fit, plain, styled
from infra.errors import ExitCode, InputError

if TYPE_CHECKING:
    from infra.config import GantryConfig
    from infra.rollout.engine import Engine, Observer, Outcome
    from infra.rollout.factory import Parts
    from infra.rollout.journal import AppendHook, StateJournal
    from infra.settings.rollout import RolloutSettings

ProjectOpt = Annotated[
    Path, typer.Option("--project", "-p", help="Project directory (Pulumi.yaml, stacks/, .gantry/).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON event per line instead of the live view.")]
IdArg = Annotated[str, typer.Argument(help="Rollout id (see `gantry rollout history`).")]


def usage(message: str) -> NoReturn:
    """An input problem found before anything was touched: one line, exit code 2."""
    fail(InputError(message))


# --------------------------------------------------------------------------- input


def parse_steps(text: str) -> list[int]:
    try:
        steps = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        usage(f"--steps must be comma-separated integers such as 10,25,50,100, but {text!r} was given")
    return steps  # the settings model checks the weights themselves (Spec.with_overrides)


_FLAGS = {"gantry:stepWeight": "--step-weight", "gantry:maxWeight": "--max-weight", "gantry:steps": "--steps",
          "gantry:interval": "--interval", "gantry:threshold": "--threshold"}
"""The rollout settings a flag overrides, by the name a validation error gives them."""


def config_dir(project: Path) -> Path:
    """Where the stack files are: Pulumi.yaml's stackConfigDir (read by ``Project.load``, the one reader of
    Pulumi.yaml), else the project directory itself; ``stacks/`` when there is no Pulumi.yaml."""
    from infra.render import MANIFESTS, Project, ProjectError

    if not any((project / name).is_file() for name in MANIFESTS):
        return project / "stacks"
    try:
        return Project.load(project).config_dir
    except ProjectError as exc:
        fail(exc)


def load_config(project: Path, stack: str) -> GantryConfig:
    from infra.config import load_stack

    return load_stack(stack, config_dir(project))


ON_APPEND: AppendHook | None = None
"""Called around each journal append of this process. None in production; only the crash drills' test-side
launcher (tests/rollout/drill_cli.py) sets it, to SIGKILL the CLI at an exact journal boundary."""


def open_journal(project: Path, *, state: str | None = None, stack: str | None = None,
                 rollout: str | None = None) -> StateJournal:
    """The journal of the backend ``state`` names, or the stack's (``gantry:rollout.state``), or the one holding
    ``rollout``; with none of them, every backend the project's stacks name (reads merge)."""
    from infra.errors import GantryError
    from infra.rollout import state as backends
    from infra.rollout.seams import RolloutId

    hook = ON_APPEND
    try:
        if state is not None:
            return backends.open_state(state, project, on_append=hook)
        if stack is not None:
            return backends.open_state(backends.stack_state(project, stack), project, on_append=hook)
        if rollout is not None:
            return backends.open_for_rollout(project, RolloutId(rollout), on_append=hook)
        return backends.open_project(project, on_append=hook)
    except GantryError as exc:  # e.g. a journal written by a newer gantry: one line, exit 2
        fail(exc)


def _engine_for(project: Path, stack: str, service: str, image: str, strategy: Strategy, config: GantryConfig,
                settings: RolloutSettings, journal: StateJournal, observer: Observer, json_mode: bool
                ) -> tuple[Engine, Parts]:
    """Build the engine for one service of one stack from its (already validated) config."""
    from infra.console import register_secrets
    from infra.errors import GantryError
    from infra.rollout import factory
    from infra.rollout.clock import SystemClock
    from infra.rollout.engine import Engine
    from infra.rollout.masking import Masker, mask_logs
    from infra.rollout.seams import StackName

    def echo(line: str) -> None:
        (err if json_mode else out).print(styled("[dim]{}[/dim]", line))

    try:
        # Every secret the config makes Gantry hold is masked from here on, in every sink: the console and
        # errors (registered), logs (filtered), and the journal, hence `status`, `--json` (the engine).
        secrets = factory.known_secrets(settings)
        register_secrets(secrets)
        mask_logs(Masker(secrets))
        parts = factory.build(project=project, stack=StackName(stack), service=service, config=config,
                              settings=settings, strategy=strategy, image=image, on_output=echo)
    except GantryError as exc:
        if exc.exit_code is ExitCode.FAILED:
            # Nothing was touched yet, so this is not a rollback (1): the environment or input must change.
            raise InputError(f"{exc} (nothing was changed)") from exc
        raise
    clock = SystemClock()
    lock = journal.lease_lock(clock, ttl=float(settings.lock_ttl))  # the lease beside the journal
    engine = Engine(target=parts.target, analysis=parts.analysis, journal=journal, lock=lock, clock=clock,
                    hooks=parts.hooks, notifier=parts.notifier, observer=observer, poll=1.0,
                    masker=Masker(parts.secrets),
                    look_every=float(settings.poll_interval))
    return engine, parts


def _observer(json_mode: bool) -> Observer:
    from infra.rollout.view import JsonView, LiveView

    return JsonView(sys.stdout) if json_mode else LiveView(out)


def report(outcome: Outcome, json_mode: bool) -> NoReturn:
    """Print how the rollout ended and exit with its code (0 promoted, 1 rolled back, 4 failed)."""
    if json_mode:
        from infra.console import mask

        sys.stdout.write(json.dumps({"event": "outcome", "rollout": outcome.rollout_id, "phase": outcome.phase.value,
                                     "reason": mask(outcome.reason), "verified": outcome.verified,
                                     "mismatches": [mask(m) for m in outcome.mismatches],
                                     "exit_code": int(outcome.exit_code)}, sort_keys=True) + "\n")
    else:
        style = {0: "green", 1: "yellow"}.get(int(outcome.exit_code), "red")
        # Reasons carry remote text (gate details, `up` errors): never let it be read as rich markup.
        out.print(styled(f"[{style}]{{}}[/{style}] {{}}: {{}}", outcome.phase.value, outcome.rollout_id,
                         outcome.reason))
        if not outcome.verified:
            err.print(styled("[red]warning:[/red] the target does not match the journal: {}",
                             "; ".join(outcome.mismatches)))
    raise typer.Exit(int(outcome.exit_code))


def _drive(observer: Observer, run: Callable[[], Outcome]) -> Outcome:
    from infra.rollout.view import LiveView

    if isinstance(observer, LiveView):
        with observer:
            return run()
    return run()


FOLLOW_POLL = 1.0
"""Seconds between looks at the journal while another process runs the rollout."""


def _run_or_follow(engine: Engine, rollout_id: str, *, wait: bool, json_mode: bool) -> Outcome:
    """Resume the rollout here until it ends. When a live process holds it: with ``wait``, watch the journal
    until that process ends it (or dies, and its lease can be taken over); without, raise ``StackLocked``."""
    import time

    from infra.rollout.errors import StackLocked
    from infra.rollout.seams import RolloutId

    told = False
    while True:
        try:
            return engine.resume(RolloutId(rollout_id))
        except StackLocked as exc:
            if exc.rollout_id != rollout_id:
                raise  # another rollout holds the stack
            if not wait:
                raise  # exit 3 naming the live holder: never 0, which means promoted
            if not told:
                told = True
                (err if json_mode else out).print(plain(
                    f"the running process ({exc.holder}, pid {exc.pid} on {exc.host}) is acting on it; "
                    "waiting for the rollout to end"), highlight=False)
        time.sleep(FOLLOW_POLL)


def _locked_json(exc: BaseException, json_mode: bool) -> None:
    """With --json, a locked stack is also one JSON line on stdout (pipelines read stdout, not stderr)."""
    from infra.rollout.errors import StackLocked

    if json_mode and isinstance(exc, StackLocked):
        sys.stdout.write(json.dumps({"event": "locked", "stack": exc.stack, "holder": exc.holder, "host": exc.host,
                                     "pid": exc.pid, "expires_at": exc.expires_at, "rollout": exc.rollout_id,
                                     "message": str(exc), "exit_code": int(exc.exit_code)}, sort_keys=True) + "\n")


def start_cmd(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack name.")],
    service: Annotated[str, typer.Option("--service", help="Service in the stack's gantry:services.")],
    image: Annotated[str | None, typer.Option(
        "--image", help="New image, pinned by tag or digest (default: the one the stack file asks for, "
                        "staged by a plain `pulumi up`).")] = None,
    strategy: Annotated[Strategy | None, typer.Option(help="canary or bluegreen (default: the service's).")] = None,
    steps: Annotated[str | None, typer.Option(help="Canary weights, e.g. 10,25,50,100.")] = None,
    step_weight: Annotated[int | None, typer.Option("--step-weight", help="Linear canary step.")] = None,
    max_weight: Annotated[int | None, typer.Option("--max-weight", help="Linear canary last weight.")] = None,
    interval: Annotated[str | None, typer.Option(help="Wait before each analysis, e.g. 30s.")] = None,
    threshold: Annotated[int | None, typer.Option(help="Failed analyses before rollback.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Start a quarantined (rolled-back) version.")] = False,
    commit: Annotated[str | None, typer.Option(
        "--commit", help="Commit SHA deployed (default: GITHUB_SHA, CI_COMMIT_SHA, else git HEAD).")] = None,
    committed_at: Annotated[str | None, typer.Option(
        "--committed-at", help="Its commit time, ISO 8601 or epoch seconds (default: CI_COMMIT_TIMESTAMP, "
                               "else git).")] = None,
    json_mode: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Start a rollout and follow it to promotion or rollback."""
    from pydantic import ValidationError

    from components.image import ImageRef, ImageRefError
    from infra.config import ConfigError, problems
    from infra.errors import GantryError
    from infra.rollout.provenance import resolve as resolve_provenance
    from infra.rollout.seams import StackName

    # Everything is validated before the journal, the lock or the target is touched.
    if image is not None:
        try:
            image = str(ImageRef.parse(image, "--image"))  # the one image grammar, parsed once at the edge
        except ImageRefError as exc:
            usage(str(exc))
    weights = parse_steps(steps) if steps is not None else None
    if weights is not None and step_weight is not None:
        usage("--steps must be omitted when --step-weight is given, but both were given")
    try:
        config = load_config(project, stack)
        svc = config.service(service, strategy)
    except ConfigError as exc:
        fail(exc)
    except KeyError as exc:
        usage(str(exc.args[0]))
    try:
        # Lead time needs the commit: resolved now, so a malformed one stops us before anything changes.
        provenance = resolve_provenance(commit=commit, committed_at=committed_at, env=os.environ,
                                        project=project, now=time.time())
    except InputError as exc:
        fail(exc)
    chosen = strategy or svc.strategy
    settings = config.rollout_for(service)
    update: dict[str, object] = {}
    if weights is not None:
        update.update(steps=weights, step_weight=None, max_weight=None)
    if step_weight is not None:
        update.update(step_weight=step_weight, max_weight=max_weight)
    if interval is not None:
        update["interval"] = interval
    if threshold is not None:
        update["threshold"] = threshold
    try:
        # Validated by the settings model itself, as the same values in the stack file would be.
        settings = settings.with_overrides(**update)
    except ValidationError as exc:
        line = problems(exc)[0]
        for field, flag in _FLAGS.items():
            if line.startswith(field):
                line = flag + line[len(field):]
                break
        usage(line)
    if image is None:
        from infra.rollout.gitops import staged_or_desired

        try:
            image = staged_or_desired(project, stack, service, config, settings, chosen)
        except GantryError as exc:
            fail(exc)
    journal = open_journal(project, state=config.rollout.state)
    observer = _observer(json_mode)
    try:
        engine, parts = _engine_for(project, stack, service, image, chosen, config, settings, journal,
                                    observer, json_mode)
        outcome = _drive(observer, lambda: engine.start(stack=StackName(stack), service=service, image=image,
                                                        plan=parts.plan, force=force, provenance=provenance))
    except GantryError as exc:
        _locked_json(exc, json_mode)
        fail(exc)
    finally:
        journal.close()
    report(outcome, json_mode)

def status_cmd(
    rollout_id: IdArg,
    steps: Annotated[bool | None, typer.Option(
        "--steps/--no-steps", help="Show every step: weight, each analysis with each gate against its limit, holds, "
                                   "decision, timings (default: on for a finished rollout).")] = None,
    json_mode: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Where a rollout stands, replayed from the journal; every step of it once it has finished."""
    from infra.errors import GantryError
    from infra.rollout import steps as steps_view
    from infra.rollout.entries import Analysed, of, parse_all
    from infra.rollout.scheduler import replay
    from infra.rollout.seams import RolloutId
    from infra.rollout.view import checks_json, render

    journal = open_journal(project, rollout=rollout_id)
    try:
        record = journal.get(RolloutId(rollout_id))
        raw = journal.entries(record.id)
        entries = parse_all(raw)
    except GantryError as exc:
        fail(exc)
    finally:
        journal.close()
    state = replay(entries)
    show_steps = state.phase.terminal if steps is None else steps
    story = steps_view.story(raw) if show_steps else None
    analyses = of(entries, Analysed)
    checks = checks_json(analyses[-1] if analyses else None)
    if json_mode:
        doc: dict[str, object] = {
            "rollout": record.id, "stack": record.stack, "service": record.service, "image": record.image,
            "strategy": record.strategy.value, "phase": state.phase.value, "step": state.step,
            "weight": state.weight, "failures": state.failures, "threshold": state.plan.threshold,
            "reason": state.reason, "entries": len(entries), "checks": checks}
        if story is not None:
            doc.update(steps_view.as_json(story))
        sys.stdout.write(json.dumps(doc, sort_keys=True) + "\n")
        return
    fit(out, render(state, checks, None, entries[-1].at, wide=not out.is_terminal))
    if story is not None:
        for line in steps_view.lines(story):
            out.print(plain(line), highlight=False)


def _operator(rollout_id: str, action: str, project: Path, json_mode: bool, then_run: bool) -> None:
    from infra.errors import GantryError
    from infra.rollout.clock import SystemClock
    from infra.rollout.engine import OperatorAction, request
    from infra.rollout.entries import read
    from infra.rollout.scheduler import replay
    from infra.rollout.seams import RolloutId

    journal = open_journal(project, rollout=rollout_id)
    try:
        record = journal.get(RolloutId(rollout_id))
        state = replay(read(journal, record.id))
        # A resume needs no journal entry unless the rollout is paused: the engine replays and continues.
        if action != "resume" or state.paused:
            # Printed only once request() returns: the entry is committed (synchronous=FULL) by then.
            state = request(journal, SystemClock(), record.id, OperatorAction(action))
            if not json_mode:
                out.print(plain(f"{action} recorded for {record.id} (phase {state.phase.value})"))
        if not then_run:
            raise typer.Exit(0)
        observer = _observer(json_mode)
        config = load_config(project, record.stack)
        settings = config.rollout_for(record.service)
        engine, _ = _engine_for(project, record.stack, record.service, record.image, record.strategy, config,
                                settings, journal, observer, json_mode)
        # resume: run it to the end here, or exit 3 naming the live process that runs it. abort/promote:
        # the action is journaled; follow the rollout until it ends, taking it over if its holder dies.
        outcome = _drive(observer, lambda: _run_or_follow(engine, record.id, wait=action != "resume",
                                                         json_mode=json_mode))
    except GantryError as exc:
        _locked_json(exc, json_mode)
        fail(exc)
    finally:
        journal.close()
    report(outcome, json_mode)

def pause_cmd(rollout_id: IdArg, project: ProjectOpt = Path(".")) -> None:
    """Hold the rollout at its current step until `resume`."""
    _operator(rollout_id, "pause", project, False, then_run=False)

def resume_cmd(rollout_id: IdArg, json_mode: JsonOpt = False, project: ProjectOpt = Path(".")) -> None:
    """Continue a paused or crashed rollout: re-runs a missing analysis, rolls back if ambiguous."""
    _operator(rollout_id, "resume", project, json_mode, then_run=True)

def abort_cmd(rollout_id: IdArg, json_mode: JsonOpt = False, project: ProjectOpt = Path(".")) -> None:
    """Roll the rollout back now."""
    _operator(rollout_id, "abort", project, json_mode, then_run=True)

def promote_cmd(
    rollout_id: IdArg,
    skip_analysis: Annotated[bool, typer.Option("--skip-analysis",
                                                help="Promote now without analysis (recorded as an override).")
                             ] = False,
    json_mode: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Promote now, skipping the remaining analysis: an explicit override, journaled as such."""
    if not skip_analysis:
        usage("--skip-analysis must be given to promote before the analysis completes, but it was not given")
    _operator(rollout_id, "promote", project, json_mode, then_run=True)

def history_cmd(
    stack: Annotated[str | None, typer.Option("--stack", "-s", help="Only this stack.")] = None,
    json_mode: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Past and current rollouts, newest first."""
    from rich.table import Table

    from infra.rollout.lock import iso
    from infra.rollout.seams import StackName

    journal = open_journal(project, stack=stack)
    try:
        records = journal.history(StackName(stack) if stack else None)
    finally:
        journal.close()
    if json_mode:
        for r in records:
            sys.stdout.write(json.dumps({"rollout": r.id, "stack": r.stack, "service": r.service,
                                         "image": r.image, "strategy": r.strategy.value, "phase": r.phase.value,
                                         "created_at": iso(r.created_at), "commit": r.provenance.commit,
                                         "committed_at": None if r.provenance.committed_at is None
                                         else iso(r.provenance.committed_at)}, sort_keys=True) + "\n")
        return
    table = Table(title="rollouts")
    for col in ("id", "stack", "service", "image", "strategy", "phase", "started"):
        table.add_column(col, no_wrap=col in ("id", "phase", "started"))
    for r in records:
        table.add_row(r.id, r.stack, r.service, r.image, r.strategy.value, r.phase.value, iso(r.created_at))
    fit(out, table)

def rollback_cmd(
    stack: Annotated[str, typer.Option("--stack", "-s", help="Stack name.")],
    to: Annotated[str | None, typer.Option("--to", help="Checkpoint: the rollout id whose pre-rollout "
                                                         "state to restore (default: the last promoted).")] = None,
    json_mode: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Fast-track revert: abort the stack's running rollout, or restore the state before its last one."""
    from infra.errors import GantryError
    from infra.rollout.seams import Phase, RolloutId, StackName

    journal = open_journal(project, stack=stack)
    try:
        active = journal.active(StackName(stack))
        if active and to is None:
            journal.close()
            _operator(active[0].id, "abort", project, json_mode, then_run=True)
            return
        if to is not None:
            source = journal.get(RolloutId(to))
            if source.stack != stack:
                usage(f"--to must be a checkpoint of stack {stack}, but {to!r} belongs to {source.stack}")
        else:
            promoted = [r for r in journal.history(StackName(stack)) if r.phase is Phase.PROMOTED]
            if not promoted:
                usage(f"--to must name a checkpoint: stack {stack} has no promoted rollout to revert, "
                      "but none was given")
            source = promoted[0]
        observer = _observer(json_mode)
        config = load_config(project, stack)
        settings = config.rollout_for(source.service)
        engine, _ = _engine_for(project, stack, source.service, source.image, source.strategy, config, settings,
                                journal, observer, json_mode)
        outcome = _drive(observer, lambda: engine.revert_to(source.id))
    except GantryError as exc:
        fail(exc)
    finally:
        journal.close()
    # The revert was the goal here: restoring the checkpoint is success (0); a failed restore is 4.
    report_exit = ExitCode.OK if outcome.phase is Phase.ROLLED_BACK else outcome.exit_code
    if json_mode:
        sys.stdout.write(json.dumps({"event": "outcome", "rollout": outcome.rollout_id,
                                     "phase": outcome.phase.value, "reason": outcome.reason,
                                     "verified": outcome.verified, "exit_code": int(report_exit)}) + "\n")
    else:
        out.print(plain(f"{outcome.phase.value} {outcome.rollout_id}: {outcome.reason}"))
    raise typer.Exit(int(report_exit))


def report_cmd(
    rollout_id: IdArg,
    png: Annotated[Path | None, typer.Option("--png", help="Write the chart here (PNG).")] = None,
    html_path: Annotated[Path | None, typer.Option("--html", help="Write a page with the chart and every step.")
                         ] = None,
    json_mode: Annotated[bool, typer.Option("--json", help="Print the paths written as JSON.")] = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Chart any rollout of the journal from its analyses (default: PNG and HTML under .gantry/reports/)."""
    from infra.errors import GantryError
    from infra.rollout.chart import Chartable, draw, html_page
    from infra.rollout.seams import RolloutId
    from infra.rollout.steps import story

    journal = open_journal(project, rollout=rollout_id)
    try:
        record = journal.get(RolloutId(rollout_id))
        entries = journal.entries(record.id)
    except GantryError as exc:
        fail(exc)
    finally:
        journal.close()
    if png is None and html_path is None:
        png = project / ".gantry" / "reports" / f"{record.id}.png"
        html_path = png.with_suffix(".html")
    item = Chartable(f"{record.stack}/{record.service} {record.image} ({record.strategy.value})", story(entries))
    chart_png = png or (html_path.with_suffix(".png") if html_path else None)
    assert chart_png is not None
    try:
        draw([item], chart_png)
        page = html_page([item], chart_png, html_path, f"gantry rollout {record.id}") if html_path else None
    except OSError as exc:
        usage(f"--png/--html must be writable paths, but writing failed: {exc.strerror}")
    if json_mode:
        sys.stdout.write(json.dumps({"rollout": record.id, "png": str(chart_png),
                                     "html": str(page) if page else None}) + "\n")
        return
    out.print(plain(f"chart: {chart_png}"), highlight=False)
    if page is not None:
        out.print(plain(f"html:  {page}"), highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``gantry rollout ...`` and ``gantry rollback``."""
    rollout = typer.Typer(
        name="rollout", no_args_is_help=True,
        help="Staged canary and blue/green rollouts with automatic rollback. Exit codes: 0 promoted, "
             "1 rolled back, 2 usage or input error, 3 stack locked, 4 rollback failed (operator needed).")
    app.add_typer(rollout, name="rollout")
    rollout.command("start")(start_cmd)
    rollout.command("status")(status_cmd)
    rollout.command("pause")(pause_cmd)
    rollout.command("resume")(resume_cmd)
    rollout.command("abort")(abort_cmd)
    rollout.command("promote")(promote_cmd)
    rollout.command("history")(history_cmd)
    rollout.command("report")(report_cmd)
    app.command("rollback")(rollback_cmd)
