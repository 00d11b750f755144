"""Renderers of a ``KpiReport``: rich text, Markdown, JSON, OpenMetrics (via prometheus_client) and HTML.

Called by ``gantry report kpis`` (``infra.commands.report``) and the sandbox demo. Stack and service names
come from the journal, hence from users: every format escapes them for its medium (literal rich Text,
Markdown, HTML, OpenMetrics label values).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from infra.console import plain, visible
from infra.rollout.kpis import BY_KEY, METRICS, KpiReport, MetricDef, MetricValue, Op, Scope, ScopeKind, Unit, Week

JSONDoc = dict[str, object]
_STATUS = {True: "met", False: "missed", None: "no data"}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(seconds: float) -> str:
    s = round(seconds)
    if s < 120:
        return f"{seconds:.1f} s" if seconds < 10 else f"{s} s"
    if s < 7200:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 2 * 86_400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{seconds / 86_400:.1f} d"


def value_text(m: MetricValue) -> str:
    d = m.definition
    if m.value is None:
        return "no deployments" if d.unit is Unit.PER_DAY else "n/a"
    match d.unit:
        case Unit.SECONDS:
            return duration(m.value)
        case Unit.RATIO:
            return f"{100 * m.value:.2f}%" if m.value < 0.99 or m.value == 1 else f"{100 * m.value:.3f}%"
        case Unit.PER_DAY:
            per = m.detail.get("minutes_per_deployment")
            each = f" (one per {duration(60 * per)})" if isinstance(per, float | int) else ""
            rate = f"{m.value:,.0f}" if m.value >= 100 else f"{m.value:.3g}"
            return f"{rate}/day{each}"


def plural(n: int | float | None, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def heading(scope: Scope) -> str:
    """"overall (8 rollouts)", "stack prod (6 rollouts, 1 in progress)", "service prod/web (...)"."""
    extra = f", {scope.in_progress} in progress" if scope.in_progress else ""
    name = "overall" if scope.kind.value == "overall" else f"{scope.kind.value} {scope.label}"
    return f"{name} ({plural(scope.rollouts, 'rollout')}{extra})"


def basis_text(m: MetricValue) -> str:
    """What the value is computed from, in a few words."""
    d = m.detail
    match m.key:
        case "deployment_frequency":
            return f"{d['deployments']} promoted in {duration(float(d['period_days'] or 0) * 86_400)}"
        case "lead_time":
            missing = d["without_commit_time"]
            return f"median of {m.samples}" + (f"; {missing} without commit time" if missing else "")
        case "mttr":
            extra = f"; {d['unrecovered']} unrecovered" if d["unrecovered"] else ""
            return f"mean of {plural(m.samples, 'recovery').replace('ys', 'ies')}{extra}"
        case "change_failure_rate":
            return f"{d['failed']} of {plural(d['rollouts'], 'rollout')}"
        case "deployment_success_rate":
            return f"{d['succeeded']} of {plural(d['rollouts'], 'rollout')}"
        case "rollback_rate":
            return f"{d['rolled_back']} of {plural(d['rollouts'], 'rollout')}"
        case "rollback_success_rate":
            return f"{d['restored']} of {plural(d['rollbacks'], 'rollback')}"
        case "rollback_time" | "deployment_time":
            return f"mean of {m.samples}"
        case "zero_downtime":
            return f"{d['stable_errors']} errors in {d['stable_requests']} stable requests"
    return ""


def target_text(d: MetricDef) -> str:
    return d.target.seed


def distinct_scopes(report: KpiReport) -> list[Scope]:
    """The scopes a reader needs: a stack holding every rollout of the report, or a service holding every
    rollout of its stack, repeats its parent's table and is left out (JSON and OpenMetrics keep them all)."""
    kept: list[Scope] = []
    parent: dict[str | None, int] = {None: report.overall.rollouts}
    for s in report.scopes:
        if s.kind is ScopeKind.STACK:
            parent[s.stack] = s.rollouts
            if s.rollouts == report.overall.rollouts:
                continue
        elif s.kind is ScopeKind.SERVICE and s.rollouts == parent.get(s.stack):
            continue
        kept.append(s)
    return kept


# --------------------------------------------------------------------------- text (rich)


def scope_table(scope: Scope) -> Table:
    # Stack and service names are user input: every cell is literal Text (``plain``: no markup, no control
    # characters, secrets masked), so "[red]" in a name is printed, not obeyed, whatever the console.
    table = Table(title=plain(heading(scope)), title_justify="left")
    for col in ("metric", "value", "target (seed)", "status", "basis"):
        table.add_column(col, no_wrap=col in ("value", "status"))
    for m in scope.metrics:
        style = {True: "green", False: "red", None: "dim"}[m.met]
        table.add_row(plain(m.definition.title), plain(value_text(m)), plain(target_text(m.definition)),
                      Text(_STATUS[m.met], style=style), plain(basis_text(m)))
    return table


def text(report: KpiReport, *, overall_only: bool = False) -> RenderableType:
    head = (f"delivery KPIs from {iso(report.period_start)} to {iso(report.until)}"
            + "".join(f", {k} {v}" for k, v in report.filters.items() if v))
    scopes = report.scopes[:1] if overall_only else distinct_scopes(report)
    return Group(plain(head), *(scope_table(s) for s in scopes))


# --------------------------------------------------------------------------- markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")


def md_escape(value: str) -> str:
    """Text safe in a Markdown table cell: HTML entities, backslash-escaped syntax, one line."""
    flat = " ".join(visible(value).split())
    flat = flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", flat)


def markdown(report: KpiReport) -> str:
    lines = [f"# Delivery KPIs, {iso(report.period_start)} to {iso(report.until)}", ""]
    filters = [f"{k} {md_escape(v)}" for k, v in report.filters.items() if v]
    if filters:
        lines += ["Filtered by " + ", ".join(filters) + ".", ""]
    for scope in distinct_scopes(report):
        lines += [f"## {md_escape(heading(scope))}", "",
                  "| metric | value | target (seed) | status | basis |", "|---|---|---|---|---|"]
        for m in scope.metrics:
            status = _STATUS[m.met]
            lines.append(f"| {m.definition.title} | {value_text(m)} | {target_text(m.definition)}"
                         f" | {'**missed**' if m.met is False else status} | {basis_text(m)} |")
        lines.append("")
    lines += ["## Definitions", ""]
    lines += [f"- **{d.title}** (target {d.target.seed}): {d.definition} {d.how}" for d in METRICS]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- json


def _metric_json(m: MetricValue) -> JSONDoc:
    return {"value": m.value, "met": m.met, "samples": m.samples, "target": m.definition.target.threshold,
            "detail": dict(m.detail)}


def as_json(report: KpiReport, *, generated_at: float) -> JSONDoc:
    return {
        "metadata": {
            "generated_at": iso(generated_at),
            "window": {"since": iso(report.since), "until": iso(report.until),
                       "period_start": iso(report.period_start)},
            "filters": dict(report.filters),
            "definitions": {d.key: {"title": d.title, "definition": d.definition, "how": d.how, "unit": d.unit.value,
                                    "target": {"op": d.target.op.value, "value": d.target.threshold,
                                               "seed": d.target.seed}}
                            for d in METRICS},
        },
        "scopes": [{"scope": s.kind.value, "stack": s.stack, "service": s.service, "rollouts": s.rollouts,
                    "in_progress": s.in_progress, "metrics": {m.key: _metric_json(m) for m in s.metrics}}
                   for s in report.scopes],
        "weeks": [{"week": w.label, "start": iso(w.start), "metrics": {m.key: _metric_json(m) for m in w.metrics}}
                  for w in report.weeks],
    }


# --------------------------------------------------------------------------- OpenMetrics

_PROM_NAME = {"deployment_frequency": ("gantry_deployment_frequency_per_day", ""),
              "lead_time": ("gantry_lead_time", "seconds"), "mttr": ("gantry_mttr", "seconds"),
              "change_failure_rate": ("gantry_change_failure", "ratio"),
              "deployment_success_rate": ("gantry_deployment_success", "ratio"),
              "rollback_rate": ("gantry_rollback", "ratio"),
              "rollback_success_rate": ("gantry_rollback_success", "ratio"),
              "rollback_time": ("gantry_rollback_time", "seconds"),
              "deployment_time": ("gantry_deployment_time", "seconds"),
              "zero_downtime": ("gantry_zero_downtime", "ratio")}


class _KpiCollector:
    """Exposes one report as gauges; metrics without data have no sample (never NaN)."""

    def __init__(self, report: KpiReport) -> None:
        self.report = report

    def collect(self) -> Iterator[object]:
        from prometheus_client.core import GaugeMetricFamily

        labels = ["scope", "stack", "service"]

        def scope_labels(s: Scope) -> list[str]:
            # Control characters written out as \xNN: the exposition is often read on a terminal.
            return [s.kind.value, visible(s.stack or ""), visible(s.service or "")]

        for d in METRICS:
            name, unit = _PROM_NAME[d.key]
            family = GaugeMetricFamily(name, f"{d.title}: {d.definition}", labels=labels, unit=unit)
            for s in self.report.scopes:
                m = s.metric(d.key)
                if m.value is not None:
                    family.add_metric(scope_labels(s), m.value)
            yield family
        target = GaugeMetricFamily("gantry_kpi_target", "The seed's target of each KPI, in the KPI's own unit.",
                                   labels=["kpi", "op"])
        for d in METRICS:
            target.add_metric([d.key, d.target.op.value], d.target.threshold)
        yield target
        met = GaugeMetricFamily("gantry_kpi_target_met", "1 if the KPI meets the seed's target, 0 if it misses it.",
                                labels=["kpi", *labels])
        for s in self.report.scopes:
            for m in s.metrics:
                if m.met is not None:
                    met.add_metric([m.key, *scope_labels(s)], 1.0 if m.met else 0.0)
        yield met
        rollouts = GaugeMetricFamily("gantry_kpi_rollouts", "Rollouts the KPIs were computed from.", labels=labels)
        for s in self.report.scopes:
            rollouts.add_metric(scope_labels(s), s.rollouts)
        yield rollouts
        until = GaugeMetricFamily("gantry_kpi_window_end", "End of the report window (epoch seconds).",
                                  unit="seconds")
        until.add_metric([], self.report.until)
        yield until


def openmetrics(report: KpiReport) -> str:
    """The OpenMetrics text format, for a node_exporter textfile collector or a Pushgateway."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.openmetrics.exposition import generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_KpiCollector(report))  # type: ignore[arg-type]
    body: bytes = generate_latest(registry)  # type: ignore[no-untyped-call]
    return body.decode("utf-8")


# --------------------------------------------------------------------------- HTML


def _svg_trend(d: MetricDef, weeks: Sequence[Week]) -> str:
    """A weekly line chart of one metric with its target as a dashed line; inline SVG, no script."""
    w, h, left, right, top, bottom = 420, 170, 56, 12, 24, 34
    points = [(i, wk.metric(d.key).value) for i, wk in enumerate(weeks)]
    values = [v for _, v in points if v is not None]
    lo = min([*values, d.target.threshold])
    hi = max([*values, d.target.threshold])
    pad = (hi - lo) * 0.1 or max(abs(hi) * 0.1, 1e-3)
    lo, hi = max(lo - pad, 0.0), hi + pad  # every metric is non-negative
    if d.unit is Unit.RATIO:
        hi = min(hi, 1.0)
    span = hi - lo or 1.0
    n = max(len(weeks) - 1, 1)

    def x(i: int) -> float:
        return left + (w - left - right) * (i / n if len(weeks) > 1 else 0.5)

    def y(v: float) -> float:
        return top + (h - top - bottom) * (1 - (v - lo) / span)

    def fmt(v: float) -> str:
        m = MetricValue(d.key, v, 1, None, {})
        return value_text(m).split(" (")[0]

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
             f'role="img" aria-label="{html.escape(d.title)} per week">',
             f'<text x="4" y="14" font-size="12" font-weight="bold">{html.escape(d.title)}</text>',
             f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="#999"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="#999"/>',
             f'<text x="{left - 4}" y="{y(hi) + 4:.1f}" font-size="9" text-anchor="end">{html.escape(fmt(hi))}</text>',
             f'<text x="{left - 4}" y="{y(lo):.1f}" font-size="9" text-anchor="end">{html.escape(fmt(lo))}</text>',
             f'<line x1="{left}" y1="{y(d.target.threshold):.1f}" x2="{w - right}" y2="{y(d.target.threshold):.1f}" '
             f'stroke="#c60" stroke-dasharray="4 3"><title>target {html.escape(d.target.seed)}</title></line>']
    run: list[str] = []
    for i, v in points:
        if v is None:
            if len(run) > 1:
                parts.append(f'<polyline fill="none" stroke="#36c" stroke-width="2" points="{" ".join(run)}"/>')
            run = []
            continue
        run.append(f"{x(i):.1f},{y(v):.1f}")
        met = d.target.met(v)
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" fill="{"#2a2" if met else "#c22"}">'
                     f'<title>{html.escape(weeks[i].label)}: {html.escape(fmt(v))}</title></circle>')
    if len(run) > 1:
        parts.append(f'<polyline fill="none" stroke="#36c" stroke-width="2" points="{" ".join(run)}"/>')
    step = max(1, len(weeks) // 6)
    for i in range(0, len(weeks), step):
        parts.append(f'<text x="{x(i):.1f}" y="{h - bottom + 14}" font-size="9" text-anchor="middle">'
                     f'{html.escape(weeks[i].label)}</text>')
    if not values:
        parts.append(f'<text x="{w / 2}" y="{h / 2}" font-size="11" text-anchor="middle" fill="#888">no data</text>')
    parts.append("</svg>")
    return "".join(parts)


def _html_table(scope: Scope) -> str:
    css = {True: "met", False: "missed", None: "none"}
    rows = "".join(
        f"<tr class='{css[m.met]}'><td>{html.escape(m.definition.title)}</td>"
        f"<td>{html.escape(value_text(m))}</td><td>{html.escape(target_text(m.definition))}</td>"
        f"<td>{_STATUS[m.met]}</td><td>{html.escape(basis_text(m))}</td></tr>"
        for m in scope.metrics)
    return (f"<h2>{html.escape(visible(heading(scope)))}</h2>"
            "<table><tr><th>metric</th><th>value</th><th>target (seed)</th><th>status</th><th>basis</th></tr>"
            f"{rows}</table>")


def html_page(report: KpiReport, *, generated_at: float) -> str:
    """One self-contained page: per-scope tables and a weekly trend chart per metric (inline SVG)."""
    title = f"Delivery KPIs, {iso(report.period_start)} to {iso(report.until)}"
    filters = visible(", ".join(f"{k} {v}" for k, v in report.filters.items() if v))
    charts = "".join(f"<figure>{_svg_trend(d, report.weeks)}</figure>" for d in METRICS) if report.weeks else (
        "<p>No rollouts in the window.</p>")
    defs = "".join(f"<dt>{html.escape(d.title)} (target {html.escape(d.target.seed)})</dt>"
                   f"<dd>{html.escape(d.definition)} {html.escape(d.how)}</dd>" for d in METRICS)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 80em; }}
table {{ border-collapse: collapse; margin-bottom: 1em; }}
td, th {{ border: 1px solid #ccc; padding: .3em .6em; text-align: left; }}
tr.met td:nth-child(4) {{ color: #070; font-weight: bold; }}
tr.missed td:nth-child(4) {{ color: #b00; font-weight: bold; }}
tr.none td:nth-child(4) {{ color: #888; }}
figure {{ display: inline-block; margin: .5em; border: 1px solid #eee; }}
dt {{ font-weight: bold; margin-top: .5em; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Generated {iso(generated_at)}{html.escape(f"; filtered by {filters}" if filters else "")}.
Dashed line: the seed's target; green points meet it, red points miss it.</p>
{_html_table(report.overall)}
<h2>Weekly trends (overall)</h2>
{charts}
{"".join(_html_table(s) for s in distinct_scopes(report)[1:])}
<h2>Definitions</h2><dl>{defs}</dl>
</body></html>
"""


__all__ = ["BY_KEY", "Op", "as_json", "html_page", "markdown", "openmetrics", "text"]
