"""The demo's evidence: a self-contained HTML report around the rollout chart (``infra.rollout.chart``).

Called by ``infra.sandbox.demo`` after the acts ran. ``TimelinePoint`` is what the demo's live view samples.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    """One sample: seconds since the demo started, which act, the new version's weight and the error rate."""

    t: float
    act: int
    new_weight: int
    error_rate: float
    rps: float


@dataclass(frozen=True, slots=True)
class ActRow:
    number: int
    title: str
    expected: str
    outcome: str
    ok: bool
    seconds: float
    detail: str
    events: tuple[str, ...] = ()


def html_report(acts: Sequence[ActRow], png: Path, path: Path, title: str, machine: str) -> Path:
    """One HTML file with the chart inlined (base64), so it can be mailed or archived as is."""
    img = base64.b64encode(png.read_bytes()).decode()
    rows = "\n".join(
        f"<tr class='{'ok' if a.ok else 'bad'}'><td>{a.number}</td><td>{html.escape(a.title)}</td>"
        f"<td>{html.escape(a.expected)}</td><td>{html.escape(a.outcome)}</td>"
        f"<td>{'yes' if a.ok else 'NO'}</td><td>{a.seconds:.1f}</td><td>{html.escape(a.detail)}</td></tr>"
        for a in acts
    )
    events = "\n".join(
        f"<h3>Act {a.number}: {html.escape(a.title)}</h3><pre>{html.escape(chr(10).join(a.events))}</pre>"
        for a in acts if a.events
    )
    all_ok = all(a.ok for a in acts)
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .3em .6em; text-align: left; }}
tr.ok td:nth-child(5) {{ color: #070; font-weight: bold; }} tr.bad td:nth-child(5) {{ color: #b00; font-weight: bold; }}
pre {{ background: #f6f6f6; padding: .6em; font-size: 85%; overflow-x: auto; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Result: <strong>{'every act ended as expected' if all_ok else 'some acts did NOT end as expected'}</strong>.
Machine: {html.escape(machine)}.</p>
<table><tr><th>#</th><th>act</th><th>expected</th><th>outcome</th><th>as expected</th><th>seconds</th>
<th>detail</th></tr>
{rows}
</table>
<h2>Error rates and weight over time, per rollout</h2>
<p>For each act's rollout, from its journaled analyses: the canary's error rate (purple, each analysis a point
coloured by its verdict) and the stable's (blue), the threshold (dashed), the decision (dotted) and the rollback
(red); below, the new version's share of traffic.</p>
<img alt="error rates and weight per rollout" src="data:image/png;base64,{img}">
<h2>Rollout events</h2>
{events}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
    return path
