"""The demo's evidence: a PNG chart (weights and error rate over time per act) and a self-contained HTML report.

Called by ``infra.sandbox.demo`` after the acts ran; matplotlib uses the Agg backend (no display needed).
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


def chart(points: Sequence[TimelinePoint], acts: Sequence[ActRow], path: Path) -> Path:
    """Weights (left axis) and error rate (right axis) over time, one panel per act that shifted traffic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [a for a in acts if any(p.act == a.number for p in points)]
    fig, axes = plt.subplots(max(1, len(panels)), 1, figsize=(9, 2.6 * max(1, len(panels))), squeeze=False)
    for ax, act in zip(axes[:, 0], panels, strict=False):
        pts = [p for p in points if p.act == act.number]
        t0 = pts[0].t
        ts = [p.t - t0 for p in pts]
        ax.step(ts, [p.new_weight for p in pts], where="post", color="tab:purple", label="new version weight %")
        ax.set_ylim(-5, 105)
        ax.set_ylabel("weight %")
        ax.set_xlabel("seconds")
        ax2 = ax.twinx()
        ax2.plot(ts, [100 * p.error_rate for p in pts], color="tab:red", alpha=0.7, label="error rate %")
        ax2.set_ylim(0, max(5.0, 100 * max(p.error_rate for p in pts) * 1.2))
        ax2.set_ylabel("errors %")
        verdict = "as expected" if act.ok else "NOT as expected"
        ax.set_title(f"Act {act.number}: {act.title} -> {act.outcome} ({verdict})", fontsize=10)
        lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
        labels = ax.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
        ax.legend(lines, labels, loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


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
<h2>Weights and error rate over time</h2>
<p>Purple: the new version's share of traffic as HAProxy reports it (runtime API). Red: the share of failed
requests the load generator saw, over the last second.</p>
<img alt="weights and error rate per act" src="data:image/png;base64,{img}">
<h2>Rollout events</h2>
{events}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
    return path
