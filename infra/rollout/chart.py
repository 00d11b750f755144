"""The rollout chart: what one rollout did, drawn from its journaled analyses (PNG, and an HTML page around it).

Called by ``gantry rollout report <id> --png/--html`` for any rollout in the journal, and by the sandbox demo
for its own rollouts. Per rollout, two panels on one time axis (seconds since the rollout started):

- error rates: the canary's and the stable's, each analysis a point (the judge's counts over its window),
  on an axis scaled to the data and the threshold, starting a little below zero so a 0% line is visible;
  each analysis marked by its verdict, the threshold (the rate the judge fails a canary at) dashed, the
  decision and the rollback as vertical lines; the canary's line ends when it stops serving;
- the new version's share of traffic (weight), on its own panel.

The title gives the outcome, the detection time (first traffic to the first failed analysis) and the failed
canary requests the judge counted. matplotlib runs on the Agg backend (no display needed).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.rollout.steps import Story, lines

_VERDICT_COLOR = {"pass": "tab:green", "fail": "tab:red", "inconclusive": "tab:orange"}


@dataclass(frozen=True, slots=True)
class Chartable:
    """One rollout to draw: a heading (``web demo:v6``) and its story."""

    heading: str
    story: Story


def title(item: Chartable) -> str:
    s = item.story
    outcome = s.phase.replace("_", " ") or "running"
    parts = [f"{item.heading}: {outcome}"]
    detected = s.detection_seconds
    if detected is not None:
        parts.append(f"detected {detected:.1f}s after first canary traffic")
    elif s.promoted_at is not None:
        parts.append(f"promoted at {s.promoted_at:.0f}s")
    parts.append(f"{s.failed_canary_requests} failed canary requests")
    return " - ".join(parts)


def draw(items: Sequence[Chartable], path: Path) -> Path:
    """Write the chart of ``items`` (two panels each) to ``path`` as PNG; returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(1, len(items))
    fig, axes = plt.subplots(2 * n, 1, figsize=(10, 4.6 * n), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1.3] * n})
    for i, item in enumerate(items):
        _panels(axes[2 * i, 0], axes[2 * i + 1, 0], item)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _panels(ax: object, wx: object, item: Chartable) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes) and isinstance(wx, Axes)
    s = item.story
    end = max(s.ended_at or 0.0, max((a.at for a in s.analyses), default=0.0), 1.0)
    canary = [(a.at, 100 * a.canary.rate, a.verdict) for a in s.analyses if a.canary]
    stable = [(a.at, 100 * a.stable.rate) for a in s.analyses if a.stable]
    limits = [a.error_limit for a in s.analyses if a.error_limit is not None]
    threshold = 100 * limits[-1] if limits else None
    top = max([r for _, r, _ in canary] + [r for _, r in stable] + ([threshold] if threshold else []) + [1.0])
    top *= 1.25
    if stable:
        ax.plot([t for t, _ in stable], [r for _, r in stable], "--s", color="tab:blue", ms=8, mfc="none",
                label="stable error rate")
    if canary:
        ax.plot([t for t, _, _ in canary], [r for _, r, _ in canary], "-", color="tab:purple",
                label="canary error rate")
        for verdict, color in _VERDICT_COLOR.items():
            pts = [(t, r) for t, r, v in canary if v == verdict]
            if pts:
                ax.scatter([t for t, _ in pts], [r for _, r in pts], color=color, zorder=3, s=36,
                           label=f"analysis: {verdict}")
    for a in s.analyses:
        ax.axvline(a.at, color=_VERDICT_COLOR.get(a.verdict, "grey"), alpha=0.25, lw=1)
        if a.canary and a.canary.errors:
            # The counts behind the point: 5/27 is not the same evidence as 50/270.
            ax.annotate(f"{a.canary.errors}/{a.canary.requests}", (a.at, 100 * a.canary.rate),
                        textcoords="offset points", xytext=(6, 4), fontsize=7, color="tab:purple")
    if threshold is not None:
        ax.axhline(threshold, color="tab:red", ls="--", lw=1, label=f"fails at {threshold:.2g}% (threshold)")
    decision = next(((st.decided_at, st.decision) for st in reversed(s.steps)
                     if st.decision in ("promote", "rollback") and st.decided_at is not None), None)
    if decision is not None:
        ax.axvline(decision[0], color="black", ls=":", lw=1.5, label=f"decision: {decision[1]}")
    if s.reverted_at is not None:
        ax.axvline(s.reverted_at, color="tab:red", lw=2, label="rollback done: stable 100%")
        ax.axvspan(s.reverted_at, end, color="tab:red", alpha=0.06)
    # A little room under zero: a 0% line is drawn above the axis, not on it.
    ax.set_ylim(-0.06 * top, top)
    ax.set_xlim(0, end * 1.02)
    ax.set_ylabel("errors %")
    ax.set_title(title(item), fontsize=10)
    ax.legend(loc="upper left", fontsize=7, ncol=2)
    ax.grid(alpha=0.2)
    ts = [t for t, _ in s.weights] + [end]
    ws = [w for _, w in s.weights] + [s.weights[-1][1] if s.weights else 0]
    wx.step(ts, ws, where="post", color="tab:purple")
    wx.fill_between(ts, ws, step="post", color="tab:purple", alpha=0.15)
    wx.set_ylim(-5, 105)
    wx.set_xlim(0, end * 1.02)
    wx.set_ylabel("new version %")
    wx.set_xlabel("seconds since the rollout started")
    wx.grid(alpha=0.2)


def html_page(items: Sequence[Chartable], png: Path, path: Path, heading: str) -> Path:
    """One self-contained HTML file: the chart inlined (base64) and every step in text."""
    img = base64.b64encode(png.read_bytes()).decode()
    sections = "\n".join(
        f"<h2>{html.escape(title(item))}</h2><pre>{html.escape(chr(10).join(lines(item.story)))}</pre>"
        for item in items)
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(heading)}</title>
<style>body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 75em; }}
pre {{ background: #f6f6f6; padding: .6em; font-size: 85%; white-space: pre-wrap; }}</style></head><body>
<h1>{html.escape(heading)}</h1>
<p>Top panel: the canary's error rate (purple, each analysis a point coloured by its verdict) and the stable's (blue)
over each analysis window, the threshold (dashed), the decision (dotted) and the rollback (red). Bottom panel: the
new version's share of traffic.</p>
<img alt="error rates and weight over time" src="data:image/png;base64,{img}">
{sections}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc, encoding="utf-8")
    return path
