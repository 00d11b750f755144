"""`gantry dr status|failover|failback|drill`: disaster recovery between a stack and its standby.

Thin: builds the parts through ``infra.dr.parts``, runs ``infra.dr.engine.DrEngine`` (or the sandbox drill)
and renders the outcome. Exit codes follow `gantry rollout`: 0 done, 1 refused (nothing changed: the primary
is healthy without --force, or not healthy yet for a failback) or a drill that missed its goals, 2 usage or
input error, 3 stack locked (a rollout or another DR run holds a stack, or another operation is unfinished),
4 stopped midway (an operator must act; `gantry dr status` shows the journal). Running the same command
again resumes an operation whose process died.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from infra.commands.common import err, fail, out
from infra.console import styled
from infra.errors import ExitCode, GantryError

if TYPE_CHECKING:
    from infra.dr.engine import Outcome
    from infra.rollout.seams import JSONObject

dr_app = typer.Typer(help="Disaster recovery: fail a stack over to its standby region and back, with a measured "
                          "RTO. Exit codes: 0 done, 1 refused, 2 input, 3 locked, 4 operator needed.",
                     no_args_is_help=True)

StackOpt = Annotated[str, typer.Option("--stack", "-s", help="The primary or the standby stack (gantry:dr).")]
ProjectOpt = Annotated[Path, typer.Option("--project", "-p", help="Project directory (stacks/, .gantry/).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON event per line, then the outcome.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Fail over although the primary answers its checks "
                                                        "(failback: although it does not).")]


def _observer(json_mode: bool) -> object:
    def observe(event: str, data: JSONObject) -> None:
        if json_mode:
            sys.stdout.write(json.dumps({"event": event, **data}, sort_keys=True, default=str) + "\n")
            return
        if event == "intent":
            out.print(styled("[bold]{}[/bold]", str(data.get("step"))))
        elif event == "probe":
            checks = data.get("checks")
            shown = ", ".join(f"{c.get('name')} {'ok' if c.get('ok') else 'FAIL'}"
                              for c in (checks if isinstance(checks, list) else []) if isinstance(c, dict))
            out.print(styled("  probe {}: {}", str(data.get("role")), shown))
        elif event in ("decision", "error"):
            out.print(styled("  [yellow]{}[/yellow]", str(data.get("reason") or data.get("error"))))
        elif event == "resumed":
            done = data.get("done")
            out.print(styled("resuming {} (done: {})", str(data.get("id")),
                             ", ".join(map(str, done if isinstance(done, list) else []))))

    return observe


def _run(op: str, stack: str, project: Path, force: bool, json_mode: bool) -> None:
    from infra.dr import parts as dr_parts

    try:
        parts = dr_parts.build(project, stack, observer=_observer(json_mode),  # type: ignore[arg-type]
                               on_output=None if json_mode else lambda line: out.print(styled("[dim]{}[/dim]", line)))
    except GantryError as exc:
        fail(exc)
    try:
        outcome = parts.engine.failover(force=force) if op == "failover" else parts.engine.failback(force=force)
    except GantryError as exc:
        fail(exc)
    finally:
        parts.close()
    _finish(outcome, json_mode)


def _finish(outcome: Outcome, json_mode: bool) -> None:
    if json_mode:
        sys.stdout.write(json.dumps({"event": "outcome", **outcome.as_json()}, sort_keys=True, default=str) + "\n")
    else:
        style = {0: "green", 1: "yellow"}.get(int(outcome.exit_code), "red")
        out.print(styled(f"[{style}]{{}}[/{style}]", f"{outcome.id}: {outcome.message}"))
        if outcome.replication is not None:
            rep = outcome.replication
            out.print(styled("replication lag: {} (lag {}, max {})", str(rep.get("status")), str(rep.get("lag", "-")),
                             str(rep.get("max", "-"))))
        if outcome.rto_seconds is not None and outcome.operation.value == "failback":
            out.print(styled("took {}s", f"{outcome.rto_seconds:.1f}"))
        elif outcome.rto_seconds is not None:
            met = outcome.rto_seconds <= outcome.rto_goal_seconds
            out.print(styled("RTO {}s (goal {}s){}", f"{outcome.rto_seconds:.1f}", f"{outcome.rto_goal_seconds:g}",
                             "" if met else " MISSED"))
    raise typer.Exit(int(outcome.exit_code))


@dr_app.command("failover")
def failover_cmd(stack: StackOpt, force: ForceOpt = False, json_mode: JsonOpt = False,
                 project: ProjectOpt = Path(".")) -> None:
    """Confirm the primary is down, scale the standby up, wait until healthy, switch traffic, verify, check
    replication lag, record the RTO."""
    _run("failover", stack, project, force, json_mode)


@dr_app.command("failback")
def failback_cmd(stack: StackOpt, force: ForceOpt = False, json_mode: JsonOpt = False,
                 project: ProjectOpt = Path(".")) -> None:
    """Once the primary is healthy: switch traffic back, verify it, scale the standby down to its warm size."""
    _run("failback", stack, project, force, json_mode)


@dr_app.command("status")
def status_cmd(stack: StackOpt, json_mode: JsonOpt = False, project: ProjectOpt = Path(".")) -> None:
    """Each region's health, where traffic goes, the leases, and the last DR operations. Exit 1 if the active
    region is unhealthy or an operation is unfinished."""
    from infra.dr import parts as dr_parts
    from infra.dr.engine import describe_lease
    from infra.rollout.seams import StackName

    try:
        parts = dr_parts.build(project, stack)
    except GantryError as exc:
        fail(exc)
    try:
        s = parts.settings
        health = {role: parts.target.probe(role) for role in ("primary", "standby")}
        active = parts.target.active()
        unfinished = parts.engine.unfinished()
        history = parts.engine.history(5)
        leases = {name: describe_lease(parts.lock.holder(StackName(name))) for name in (s.primary, s.standby)}
    except GantryError as exc:
        parts.close()
        fail(exc)
    parts.close()
    doc = {
        "primary": s.primary, "standby": s.standby, "active": active, "rtoGoalSeconds": s.rto_seconds,
        "health": {role: h.as_json() for role, h in health.items()},
        "unfinished": unfinished.id if unfinished else None, "leases": leases,
        "history": [{"id": r.id, "operation": r.image, "phase": r.phase.value, "updatedAt": r.updated_at}
                    for r in history],
    }
    bad = not health[active].healthy or unfinished is not None
    if json_mode:
        sys.stdout.write(json.dumps(doc, sort_keys=True, default=str) + "\n")
    else:
        out.print(styled("traffic: {} ({} is primary, {} is standby)", active, s.primary, s.standby))
        for role, h in health.items():
            checks = ", ".join(f"{c.name} {'ok' if c.ok else 'FAIL'} ({c.detail})" for c in h.checks)
            out.print(styled("{}: {} - {}", role, "healthy" if h.healthy else "UNHEALTHY", checks))
        for name, lease in leases.items():
            out.print(styled("lease {}: {}", name, lease))
        if unfinished is not None:
            out.print(styled("[yellow]unfinished {} {}: run `gantry dr {}` to resume it[/yellow]", unfinished.image,
                             unfinished.id, unfinished.image))
        for r in history:
            out.print(styled("  {} {} {}", r.id, r.image, r.phase.value))
    raise typer.Exit(int(ExitCode.FAILED) if bad else 0)


@dr_app.command("drill")
def drill_cmd(
    stack: StackOpt = "local",
    rate: Annotated[float, typer.Option("--rate", min=1, max=2000, help="Load, requests per second.")] = 200.0,
    hold: Annotated[float, typer.Option("--hold", min=0, max=600, help="Seconds of load on the standby "
                                                                         "before failback.")] = 5.0,
    chart: Annotated[Path | None, typer.Option("--chart", help="PNG chart path. Default: "
                                               ".gantry/dr-drill.png")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON to this path "
                                                   "('-' for stdout).")] = None,
    project: ProjectOpt = Path("."),
) -> None:
    """In the sandbox, under load: freeze the primary region, detect, fail over, verify, fail back, report.
    Exit 0 iff the RTO met the 30 s goal and no request was lost after the switch."""
    from infra.dr import drill

    chart_path = chart or project / ".gantry" / "dr-drill.png"
    to_stdout = json_path is not None and str(json_path) == "-"
    log = (lambda line: err.print(styled("{}", line))) if to_stdout else (lambda line: out.print(styled("{}", line)))
    try:
        report = drill.run(project, stack, rate=rate, hold=hold, chart_path=chart_path, log=log)
    except GantryError as exc:
        fail(exc)
    if json_path is not None:
        if to_stdout:
            sys.stdout.write(json.dumps(report.as_json(), indent=2, default=str) + "\n")
        else:
            drill.write_json(report, json_path)
    target = err if to_stdout else out

    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f}s"

    rep = report.replication or {}
    target.print(styled("detect {}  switch {}  RTO {} (goal {}s)  requests {}  lost during switch {}  lost after "
                        "switch {}  lost during failback {}  replication lag {} ({})", fmt(report.detect_s),
                        fmt(report.switch_s), fmt(report.rto_s), f"{report.rto_goal_s:g}", str(report.requests),
                        str(report.lost_during_switch), str(report.lost_after_switch),
                        str(report.lost_during_failback), str(rep.get("status", "n/a")), str(rep.get("lag", "-"))))
    target.print(styled("chart: {}", str(report.chart)))
    raise typer.Exit(0 if report.ok else int(ExitCode.FAILED))


def register(app: typer.Typer) -> None:
    """Add ``gantry dr`` to the app."""
    app.add_typer(dr_app, name="dr")
