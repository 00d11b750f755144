"""The Markdown report, sized for a pull-request comment: a per-stack table and the top findings."""

from __future__ import annotations

from collections.abc import Sequence

from policies.engine import Finding, FindingStatus, StackReport
from policies.model import Level

TOP = 25


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rank(f: Finding) -> tuple[int, str, str]:
    if f.status is FindingStatus.WAIVED:
        return 3, f.policy, f.urn
    if f.blocking:
        return 0, f.policy, f.urn
    return (1 if f.status is FindingStatus.ERROR else 2), f.policy, f.urn


def render_markdown(reports: Sequence[StackReport]) -> str:
    blocking = sum(r.blocking for r in reports)
    icon = ":white_check_mark:" if blocking == 0 else ":x:"
    out = [f"## {icon} gantry check: {blocking} blocking finding(s) in {len(reports)} stack(s)", "",
           "| Stack | Tier | Resources | Mandatory | Advisory | Waived | Errors | Result |",
           "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in reports:
        out.append(f"| `{r.stack}` | {r.tier.value} | {r.resources} "
                   f"| {r.count(FindingStatus.VIOLATION, Level.MANDATORY)} "
                   f"| {r.count(FindingStatus.VIOLATION, Level.ADVISORY)} | {r.count(FindingStatus.WAIVED)} "
                   f"| {r.count(FindingStatus.ERROR)} "
                   f"| {'pass' if r.passed else '**partial**' if r.partial else '**fail**'} |")
    for r in reports:
        if r.partial:
            out.append(f"\n> **Partial graph** for `{r.stack}`: {_cell(r.error or '')}")
    findings = sorted(((r.stack, f) for r in reports for f in r.findings), key=lambda p: _rank(p[1]))
    if findings:
        out += ["", f"### Top findings ({min(TOP, len(findings))} of {len(findings)})", "",
                "| Level | Status | Policy | Stack | Resource | Message |", "|---|---|---|---|---|---|"]
        for stack, f in findings[:TOP]:
            where = f" at `{_cell(str(f.location))}`" if f.location else ""
            out.append(f"| {f.level.value} | {f.status.value} | `{_cell(f.label)}` | `{stack}` | `{_cell(f.name)}` "
                       f"({_cell(f.type)}){where} | {_cell(f.message)} |")
        if len(findings) > TOP:
            out.append(f"\n_{len(findings) - TOP} more; see the SARIF or JSON report._")
    return "\n".join(out) + "\n"
