"""The human report for terminals: one block per stack, blocking findings first."""

from __future__ import annotations

from collections.abc import Sequence

from policies.engine import Finding, FindingStatus, StackReport
from policies.model import Level


def _order(f: Finding) -> tuple[int, str, str]:
    rank = 0 if f.blocking and f.status is not FindingStatus.WAIVED else 1 if f.status is FindingStatus.VIOLATION \
        else 2
    return rank, f.policy, f.urn


def _tag(f: Finding) -> str:
    if f.status is FindingStatus.WAIVED:
        return "WAIVED"
    if f.status is FindingStatus.ERROR:
        return "ERROR"
    return "MANDATORY" if f.level is Level.MANDATORY else "advisory"


def render_text(reports: Sequence[StackReport]) -> str:
    lines: list[str] = []
    for r in reports:
        verdict = "PASS" if r.passed else "FAIL"
        lines.append(f"{verdict}  {r.project}/{r.stack} (tier {r.tier.value}): {r.resources} resources, "
                     f"{r.rules} rules, {r.blocking} blocking, "
                     f"{r.count(FindingStatus.VIOLATION, Level.ADVISORY)} advisory, "
                     f"{r.count(FindingStatus.WAIVED)} waived, {r.count(FindingStatus.ERROR)} errors "
                     f"[{r.seconds:.2f}s]")
        for f in sorted(r.findings, key=_order):
            lines.append(f"  {_tag(f):<9} {f.policy:<36} {f.type}::{f.name}")
            lines.append(f"            {f.message}")
            if f.waiver:
                lines.append(f"            waived: {f.waiver}")
    total = sum(r.blocking for r in reports)
    lines.append(f"{len(reports)} stack(s) checked; {total} blocking finding(s)")
    return "\n".join(lines) + "\n"
