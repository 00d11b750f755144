"""The human report for terminals (rich tables): a per-stack summary, then findings, blocking ones first."""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from infra.console import make_console, plain, styled
from policies.engine import Finding, FindingStatus, StackReport
from policies.model import Level

WIDTH = 140


def _order(f: Finding) -> tuple[int, str, str]:
    if f.status is FindingStatus.WAIVED:
        return 3, f.policy, f.urn
    if f.blocking:
        return 0, f.policy, f.urn
    return (1 if f.status is FindingStatus.ERROR else 2), f.policy, f.urn


def _tag(f: Finding) -> Text:
    if f.status is FindingStatus.WAIVED:
        return styled("[cyan]WAIVED[/cyan]")
    if f.status is FindingStatus.ERROR:
        return styled("[magenta]ERROR[/magenta]")
    return styled("[red]MANDATORY[/red]") if f.level is Level.MANDATORY else styled("[yellow]advisory[/yellow]")


def render_text(reports: Sequence[StackReport], *, color: bool = False) -> str:
    buffer = io.StringIO()
    # Messages quote resource properties and stack values: the console reads none of it as markup.
    console = make_console(file=buffer, width=WIDTH, force_terminal=color, no_color=not color, soft_wrap=False)
    summary = Table(title="gantry check", title_justify="left")
    for col in ("stack", "tier", "resources", "mandatory", "advisory", "waived", "errors", "result", "time"):
        summary.add_column(col, justify="right" if col in ("resources", "mandatory", "advisory", "waived",
                                                              "errors", "time") else "left")
    for r in reports:
        summary.add_row(f"{r.project}/{r.stack}", r.tier.value, str(r.resources),
                        str(r.count(FindingStatus.VIOLATION, Level.MANDATORY)),
                        str(r.count(FindingStatus.VIOLATION, Level.ADVISORY)), str(r.count(FindingStatus.WAIVED)),
                        str(r.count(FindingStatus.ERROR)),
                        styled("[green]PASS[/green]") if r.passed
                        else styled("[red]PARTIAL[/red]") if r.partial else styled("[red]FAIL[/red]"),
                        f"{r.seconds:.2f}s")
    console.print(summary)
    findings = sorted(((r.stack, f) for r in reports for f in r.findings), key=lambda p: _order(p[1]))
    if findings:
        table = Table(show_lines=False)
        for col in ("level", "policy", "stack", "resource", "message"):
            table.add_column(col, overflow="fold")
        for stack, f in findings:
            message = styled("{}\n[dim]waived: {}[/dim]", f.message, f.waiver) if f.waiver else plain(f.message)
            resource = styled("{}::{}\n[dim]{}[/dim]", f.type, f.name, f.location) if f.location \
                else plain(f"{f.type}::{f.name}")
            table.add_row(_tag(f), plain(f.label), plain(stack), resource, message)
        console.print(table)
    for r in reports:
        if r.partial:
            console.print(styled("[red]PARTIAL[/red] {}/{}: {}", r.project, r.stack, r.error or ""))
        if r.bridge is not None:
            b = r.bridge
            ran = f"{b.failed} failed, {b.passed} passed, {b.aliased} reported under Gantry's ids" \
                if b.status == "ran" else ""
            console.print(plain(f"{r.stack}: tier {r.tier.value} ({r.tier_source or 'given'}); Checkov "
                                f"{b.version or ''} bridge {b.status}{': ' + ran if ran else ''}"))
    blocking = sum(r.blocking for r in reports)
    console.print(f"{len(reports)} stack(s) checked; {blocking} blocking finding(s)")
    return buffer.getvalue()
