"""`gantry check`: render stacks offline and evaluate the policy pack; thin front over ``policies.engine``.

Exit codes: 0 no mandatory violation; 1 mandatory violations (or a mandatory rule that raised);
2 usage, config, waiver or program error. A program that raised after registering resources is still
checked (the report says the graph is partial) and the exit code is 2.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from infra.commands.common import err, out
from infra.console import plain, styled
from policies.engine_modes import BridgeMode
from policies.model import TierName
from policies.report import Format

if TYPE_CHECKING:
    from policies.config import PolicyConfig
    from policies.engine import StackReport
    from policies.waivers import Waiver

DEFAULT_TIER_HELP = (
    "Tier whose enforcement levels apply. Default: the stack's gantry:tier, else from the stack's name "
    "(prod*/production* -> prod, stag* -> staging, anything else -> dev). The tier used is printed."
)
CHECKOV_HELP = (
    "Run Checkov's catalogue through the bridge: auto (when installed; says so when not), on (required: exit 2 "
    "when unavailable) or off."
)


def register(app: typer.Typer) -> None:
    """Add ``gantry check`` to the app."""

    @app.command()
    def check(
        stack: Annotated[
            list[str] | None, typer.Option("--stack", "-s", help="Stack to check; repeat for several.")
        ] = None,
        all_stacks: Annotated[bool, typer.Option("--all-stacks", help="Check every stack of the project.")] = False,
        project: Annotated[
            Path, typer.Option("--project", "-p", help="Pulumi project directory (read through its Pulumi.yaml).")
        ] = Path("."),
        fmt: Annotated[
            Format, typer.Option("--format", "-f", help="Report format; sarif for code scanning, junit for CI.")
        ] = Format.TEXT,
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="Write the report here instead of stdout.")
        ] = None,
        tier: Annotated[TierName | None, typer.Option("--tier", help=DEFAULT_TIER_HELP)] = None,
        policy_config: Annotated[
            Path | None,
            typer.Option("--policy-config", help="Policy config JSON. Default: <project>/policies/policy-config.json "
                                                 "if present, else Gantry's."),
        ] = None,
        waivers: Annotated[
            Path | None,
            typer.Option("--waivers", help="Waiver file. Default: <project>/policies/waivers.yaml if present."),
        ] = None,
        list_rules: Annotated[bool, typer.Option("--list-rules", help="Print the pack's rules (levels for --tier, "
                                                                      "default prod) and exit.")] = False,
        debug: Annotated[bool, typer.Option("--debug", help="On a program error, print its traceback.")] = False,
        checkov: Annotated[BridgeMode, typer.Option("--checkov", help=CHECKOV_HELP)] = BridgeMode.AUTO,
    ) -> None:
        """Check stacks against the policy pack offline: no Pulumi CLI, credentials or network."""
        from infra.commands.common import short_lived

        short_lived()
        from infra.config import ConfigError
        from infra.errors import ExitCode, GantryError
        from policies.config import PolicyConfigError, load_policy_config
        from policies.report import render
        from policies.waivers import WaiverError, load_waivers

        if list_rules:
            try:
                _print_rules(tier or TierName.PROD, load_policy_config(policy_config))
            except PolicyConfigError as exc:
                _usage(str(exc).splitlines()[0])
            return
        if all_stacks and stack:
            _usage("--stack and --all-stacks cannot be combined; pass one of them")
        if not all_stacks and not stack:
            _usage("pass --stack NAME (repeatable) or --all-stacks")

        from infra.commands.common import fail
        from infra.render import Project
        from policies.bridge.runner import BridgeUnavailable

        try:
            proj = Project.load(project)
            names = proj.stacks() if all_stacks else list(dict.fromkeys(stack or []))
            if not names:
                _usage(f"{proj.config_dir}: no Pulumi.<stack>.yaml files found")
            config_path = policy_config or _first(proj.root / "policies" / "policy-config.json")
            config = load_policy_config(config_path)
            waiver_path = waivers or _first(proj.root / "policies" / "waivers.yaml")
            waiver_list = load_waivers(waiver_path)
            # Stacks render in parallel, one program process per core; a spinner on a terminal only.
            workers = max(1, min(len(names), os.cpu_count() or 1))
            with err.status(f"checking {len(names)} stack(s)", spinner="dots") if err.is_terminal \
                    else contextlib.nullcontext(), ThreadPoolExecutor(max_workers=workers) as pool:
                reports = list(pool.map(lambda name: check_stack(proj.root, name, config, waiver_list, tier=tier,
                                                                 bridge=checkov), names))
            for report in reports:
                bridge = report.bridge.status if report.bridge else "off"
                err.print(plain(f"{report.stack}: tier {report.tier.value} (from {report.tier_source}); "
                                f"checkov bridge: {bridge}"))
        except BridgeUnavailable as exc:
            _usage(str(exc))
        except (PolicyConfigError, WaiverError) as exc:
            for line in str(exc).splitlines():
                err.print(styled("[red]error:[/red] {}", line))
            raise typer.Exit(ExitCode.USAGE) from None
        except (GantryError, ConfigError) as exc:
            fail(exc)
        if fmt is Format.TEXT and output is None:
            from policies.report.text import render_text

            text = render_text(reports, color=out.is_terminal)
        else:
            text = render(fmt, reports)
        blocking = sum(r.blocking for r in reports)
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text, encoding="utf-8")
            err.print(f"wrote {fmt.value} report for {len(reports)} stack(s) to {output}: "
                      f"{blocking} blocking finding(s)")
        else:
            out.file.write(text)
            out.file.flush()
        _report_partial(reports, debug)
        raise typer.Exit(ExitCode.FAILED if blocking else ExitCode.OK)


def check_stack(
    project_dir: Path,
    stack: str,
    config: PolicyConfig,
    waivers: Sequence[Waiver],
    *,
    tier: TierName | None = None,
    today: dt.date | None = None,
    bridge: BridgeMode = BridgeMode.AUTO,
) -> StackReport:
    """Render one stack offline and evaluate the pack over it (and Checkov's catalogue through the bridge).

    The render lives here, in the commands layer, so ``policies`` never imports ``infra.render``. Raises the
    renderer's errors unchanged, and ``BridgeUnavailable`` when ``bridge`` is ``on`` and Checkov is absent.
    """
    from infra.render import Project, render_project
    from policies.engine import check_rendered, resolve_tier, stack_inputs, start_bridge

    started = time.perf_counter()
    project = Project.load(project_dir)
    inputs = stack_inputs(project.config_dir, stack)
    effective, tier_source = resolve_tier(stack, tier, inputs.tier)
    session, summary = start_bridge(config, effective, bridge)
    try:
        result = render_project(project.root, stack)
        return check_rendered(result, stack, config, waivers, tier=effective, tier_source=tier_source,
                              policy=inputs.policy, session=session, summary=summary, today=today,
                              project_root=project.root, program_file=project.entry, started=started)
    finally:
        if session is not None:
            session.close()


def _report_partial(reports: list[StackReport], debug: bool) -> None:
    """A stack whose program raised was checked only in part: say so on stderr and exit 2."""
    from infra.console import styled
    from infra.errors import ExitCode

    partial = [r for r in reports if r.partial]
    for r in partial:
        err.print(styled("[red]error:[/red] {}; its findings cover only those resources", r.error or ""))
        if debug and r.error_traceback:
            err.print(r.error_traceback)
    if partial:
        raise typer.Exit(ExitCode.USAGE)


def _first(path: Path) -> Path | None:
    return path if path.is_file() else None


def _usage(message: str) -> None:
    from infra.errors import ExitCode

    err.print(styled("[red]error:[/red] {}", message))
    raise typer.Exit(ExitCode.USAGE)


def _print_rules(tier: TierName, config: PolicyConfig) -> None:
    """One line per rule at ``tier``'s level, then the Checkov bridge's curated set, under a header row."""
    from policies.bridge.catalog import ALIASES, BRIDGE_ID, MANDATORY_IN_PROD
    from policies.bridge.runner import available
    from policies.pack import RULES

    rows: list[tuple[str, str, str, str]] = [(str(r.id), config.level_for(r.id, tier).value, r.kind, r.description)
                                          for r in RULES]
    checks = sorted(MANDATORY_IN_PROD, key=lambda c: (c.split("_")[0], c.split("_")[1], int(c.rsplit("_", 1)[1])))
    rows += [(c, config.check_level(c, tier).value, BRIDGE_ID, "curated Checkov check (mandatory in prod)")
             for c in checks]
    default = config.check_level("CKV_NONE_0", tier).value if config.bridge_enabled(tier) else "disabled"
    rows.append(("CKV_*", default, BRIDGE_ID, f"every other Checkov check ({len(ALIASES)} are reported under the "
                                             "Gantry rule they duplicate)"))
    width = max(len(r[0]) for r in rows)
    out.print(f"{'ID':<{width}}  {'LEVEL':<9}  {'KIND':<8}  DESCRIPTION (tier {tier.value})", markup=False)
    for rid, level, kind, desc in rows:
        out.print(f"{rid:<{width}}  {level:<9}  {kind:<8}  {desc}", markup=False)
    reason = available()
    if reason:
        err.print(f"note: {reason}", markup=False, highlight=False)
