"""`gantry sandbox up|down|status|load|fault|demo`: the local sandbox (real HAProxy, Prometheus, demo app on 127.0.0.1).

Thin: parses, calls ``infra.sandbox.lifecycle`` / ``infra.sandbox.demo`` and renders with rich or JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from infra.errors import ExitCode, GantryError

sandbox_app = typer.Typer(help="Local sandbox: real HAProxy and Prometheus with a demo service, on 127.0.0.1.",
                          no_args_is_help=True)

ProjectOpt = Annotated[Path, typer.Option("--project", help="Project directory holding stacks/ and .gantry/.")]
StackOpt = Annotated[str, typer.Option("--stack", help="A stack with gantry:cloud local.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    code = exc.exit_code if isinstance(exc, GantryError) else ExitCode.USAGE
    return typer.Exit(int(code))


RegionsOpt = Annotated[int, typer.Option(
    "--regions", help="2 adds a standby region (warmSize processes per service) that `gantry dr` fails over to.")]


@sandbox_app.command("up")
def up_cmd(stack: StackOpt = "local", project: ProjectOpt = Path("."), as_json: JsonOpt = False,
           regions: RegionsOpt = 1,
           no_load: Annotated[bool, typer.Option("--no-load", help="Do not start the load generator.")] = False,
           ) -> None:
    """Start the demo service's stable versions, Prometheus and HAProxy on free loopback ports, and send
    steady traffic to every service at the stack's gantry:sandbox.rateRps (unless --no-load)."""
    from infra.config import ConfigError
    from infra.sandbox import lifecycle, traffic

    try:
        st = lifecycle.up(project, stack, regions=regions)
        rate = None
        if not no_load:
            rate = _stack_rate(project, stack)
            try:
                traffic.start(project, rate)
            except BaseException:
                lifecycle.down(project)  # all or nothing: a sandbox without its load is not what was asked
                raise
    except (GantryError, ConfigError) as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps({"up": True, "prometheus": st.prometheus_url,
                               "frontends": {n: st.frontend_url(n) for n in st.services}, "load_rps": rate}))
        return
    typer.echo(f"sandbox up in {st.directory}")
    typer.echo(f"  prometheus  {st.prometheus_url}")
    for name in st.services:
        typer.echo(f"  {name:<10}  {st.frontend_url(name)}")
    typer.echo(f"  load        {rate:g} req/s per service (gantry sandbox load --rps N | --stop)" if rate
               else "  load        none (start it with: gantry sandbox load --rps N)")


def _stack_rate(project: Path, stack: str) -> float:
    from infra.config import load_stack

    return float(load_stack(stack, project / "stacks").sandbox.rate_rps)


@sandbox_app.command("load")
def load_cmd(
    rps: Annotated[float | None, typer.Option("--rps", help="Requests per second to each service.")] = None,
    stop: Annotated[bool, typer.Option("--stop", help="Stop the load generator.")] = False,
    project: ProjectOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Set the sandbox's steady traffic: --rps N (re)starts it at N requests per second, --stop ends it."""
    from infra.sandbox import traffic

    if (rps is None) == (not stop):
        typer.echo("error: exactly one of --rps N or --stop must be given, but "
                   f"{'both were' if stop else 'neither was'} given", err=True)
        raise typer.Exit(int(ExitCode.USAGE))
    try:
        if stop:
            stopped = traffic.stop(project)
            services: list[str] = []
        else:
            assert rps is not None
            services = traffic.start(project, rps)
            stopped = []
    except GantryError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps({"rps": rps if not stop else 0, "services": services, "stopped": stopped}))
    elif stop:
        typer.echo(f"load stopped ({len(stopped)} generator(s))")
    else:
        typer.echo(f"load: {rps:g} req/s to each of {', '.join(services)}")


@sandbox_app.command("down")
def down_cmd(project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Stop every sandbox process (pid files checked first; strays swept). Safe after a crash."""
    from infra.sandbox import lifecycle

    stopped = lifecycle.down(project)
    if as_json:
        typer.echo(json.dumps({"stopped": stopped}))
    else:
        typer.echo(f"sandbox down; stopped {len(stopped)} process(es)" + (f": {', '.join(stopped)}" if stopped else ""))


@sandbox_app.command("status")
def status_cmd(project: ProjectOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Show each part, its pid and whether it runs, the live HAProxy weights and the load generator's rate.
    Exit 1 if not fully up."""
    from rich.table import Table

    from infra.console import make_console
    from infra.sandbox import lifecycle, traffic

    s = lifecycle.status(project)
    load = traffic.status(project) if s.parts else {}
    if as_json:
        typer.echo(json.dumps({
            "up": s.up, "prometheus": s.prometheus_url, "frontends": s.frontends, "weights": s.weights,
            "parts": [{"name": p.name, "pid": p.pid, "running": p.running, "detail": p.detail} for p in s.parts],
            "load": {n: {"pid": g.pid, "running": g.running, "rps": g.rps if g.running else 0,
                         "requests": g.requests, "failed": g.failed} for n, g in load.items()},
        }))
    elif not s.parts:
        typer.echo("sandbox is down")
    else:
        table = Table("part", "pid", "running", "detail", title="gantry sandbox")
        for p in s.parts:
            table.add_row(p.name, str(p.pid), "yes" if p.running else "NO", p.detail)
        for g in load.values():
            table.add_row(f"load/{g.service}", str(g.pid), "yes" if g.running else "NO",
                          f"{g.rps:g} req/s; {g.requests} sent, {g.failed} failed")
        console = make_console()
        from infra.console import fit

        fit(console, table)
        for svc, weights in s.weights.items():
            console.print(f"{svc}: " + ", ".join(f"{k}={v}" for k, v in weights.items()) + f"  ({s.frontends[svc]})")
        rates = {g.rps for g in load.values() if g.running}
        console.print("load: " + (f"{', '.join(f'{r:g}' for r in sorted(rates))} req/s per service" if rates
                                  else "none (gantry sandbox load --rps N)"))
    if not s.up:
        raise typer.Exit(int(ExitCode.FAILED))


@sandbox_app.command("fault")
def fault_cmd(
    version: Annotated[str | None, typer.Argument(help="Version label, e.g. v3 (the tag of demo:v3).")] = None,
    error_rate: Annotated[float, typer.Option("--error-rate", help="Share of requests answered 500, 0..1.")] = 0.0,
    latency_ms: Annotated[float, typer.Option("--latency-ms", help="Extra latency per request in ms.")] = 0.0,
    crash_after: Annotated[int, typer.Option("--crash-after", help="Exit after N requests; 0 never.")] = 0,
    project: ProjectOpt = Path("."),
    region: Annotated[str | None, typer.Option(
        "--region", help="primary or standby: a region-level fault (needs `sandbox up --regions 2`).")] = None,
    down: Annotated[bool | None, typer.Option(
        "--down/--up", help="With --region: freeze every process of the region (SIGSTOP), or continue them.")] = None,
    replication_lag: Annotated[float | None, typer.Option(
        "--replication-lag", help="With --region standby: the stand-in replication lag (s) it exports.")] = None,
) -> None:
    """Set a version's fault profile (applied live if it runs, and whenever it starts later), or a region's."""
    from pydantic import ValidationError

    if region is not None or down is not None or replication_lag is not None:
        _region_fault(project, version, region, down, replication_lag)
        return
    if version is None:
        typer.echo("error: VERSION must be given (e.g. v3), or --region with --down/--up", err=True)
        raise typer.Exit(int(ExitCode.USAGE))

    from infra.sandbox import lifecycle
    from infra.sandbox.settings import FaultSpec

    try:
        fault = FaultSpec(error_rate=error_rate, latency_ms=latency_ms, crash_after=crash_after)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = {"error_rate": "--error-rate", "latency_ms": "--latency-ms", "crash_after": "--crash-after"}.get(
            str(err["loc"][0]), str(err["loc"][0]))
        typer.echo(f"error: {field} must be {err['msg'].lower().removeprefix('input should be ')}, "
                   f"but {err['input']} was given", err=True)
        raise typer.Exit(int(ExitCode.USAGE)) from None
    try:
        live = lifecycle.set_fault(project, version, fault)
    except GantryError as exc:
        raise _fail(exc) from None
    where = "applied to the running process" if live else "applies when it starts"
    typer.echo(f"{version}: error rate {error_rate:g}, +{latency_ms:g} ms, crash after {crash_after or 'never'} "
               f"({where})")


def _region_fault(project: Path, version: str | None, region: str | None, down: bool | None,
                  replication_lag: float | None) -> None:
    from infra.sandbox import regions

    if version is not None or region not in regions.REGIONS:
        shown = f"{region!r}" if version is None else f"version {version!r} with --region"
        typer.echo(f"error: --region must be one of {', '.join(regions.REGIONS)} (and no VERSION), but {shown} "
                   "was given", err=True)
        raise typer.Exit(int(ExitCode.USAGE))
    if down is None and replication_lag is None:
        typer.echo("error: --region needs --down, --up or --replication-lag", err=True)
        raise typer.Exit(int(ExitCode.USAGE))
    if replication_lag is not None and (region != "standby" or not 0 <= replication_lag <= 86_400):
        typer.echo(f"error: --replication-lag must be within 0..86400 with --region standby, but "
                   f"{replication_lag:g} with --region {region} was given", err=True)
        raise typer.Exit(int(ExitCode.USAGE))
    try:
        if replication_lag is not None:
            regions.set_replication_lag(project, replication_lag)
            typer.echo(f"standby: replication lag {replication_lag:g}s")
        if down is not None:
            pids = regions.set_region_fault(project, region, down)
            typer.echo(f"{region}: {'down (processes frozen)' if down else 'up'}; {len(pids)} process(es) signalled")
    except GantryError as exc:
        raise _fail(exc) from None


@sandbox_app.command("smoke")
def smoke_cmd(
    service: Annotated[str, typer.Option("--service", help="A blue/green service of the sandbox.")],
    requests: Annotated[int, typer.Option("--requests", min=1, max=10_000, help="Requests to send.")] = 150,
    project: ProjectOpt = Path("."),
) -> None:
    """Smoke-test a blue/green service's preview color (a rollout step hook). Exit 0 iff all answered 2xx."""
    from infra.sandbox.smoke import smoke

    try:
        result = smoke(project, service, requests=requests)
    except GantryError as exc:
        raise _fail(exc) from None
    if result.target is None:
        typer.echo(f"smoke {service}: no preview color prepared; nothing to test")
        return
    typer.echo(f"smoke {service} at {result.target}: {result.requests - result.failed}/{result.requests} ok")
    if not result.ok:
        raise typer.Exit(int(ExitCode.FAILED))


@sandbox_app.command("demo")
def demo_cmd(
    as_json: JsonOpt = False,
    project: ProjectOpt = Path("."),
    report: Annotated[Path | None, typer.Option("--report", help="HTML report path.")] = None,
    interval: Annotated[str | None, typer.Option("--interval", help="Analysis interval (default: the stack's).")]
    = None,
) -> None:
    """The main job, end to end in under 3 minutes: healthy canary promoted, faulty canary rolled back,
    blue/green switched after its smoke hook. Exit 0 iff every act ends as expected."""
    from infra.sandbox import demo

    try:
        outcome = demo.run(project, as_json=as_json, report_path=report, interval=interval)
    except GantryError as exc:
        raise _fail(exc) from None
    raise typer.Exit(0 if outcome.ok else int(ExitCode.FAILED))


def register(app: typer.Typer) -> None:
    """Add ``gantry sandbox`` to the app."""
    app.add_typer(sandbox_app, name="sandbox")
