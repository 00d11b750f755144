"""``gantry sandbox demo``: Gantry's main job, end to end on real HAProxy and Prometheus, in under 3 minutes.

Called by ``infra.commands.sandbox``. Five acts: (1) the sandbox starts with v1 stable; (2) canary v2
(healthy) goes 10/25/50/100 and is promoted; (3) canary v3 (20% errors) is caught and rolled back, and
traffic returns to v2; (4) blue/green v4 is switched after its smoke hook passes; (5) everything stops.
Acts 2-4 run the real ``gantry rollout start`` (same CLI, engine, factory, HaproxyTarget and
Prometheus provider as any stack) while the demo only watches: it sends load, samples HAProxy's
weights and the error rate, and judges each act by what HAProxy and the load generator observed.
It ends by printing the delivery KPIs of its own rollouts, computed from the journal (``infra.rollout.kpis``).
"""

from __future__ import annotations

import json
import os
import platform
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from infra.sandbox import lifecycle, procs
from infra.sandbox.haproxy import RuntimeApi
from infra.sandbox.loadgen import LoadGenerator
from infra.sandbox.procs import SandboxError
from infra.sandbox.report import ActRow, TimelinePoint, html_report
from infra.sandbox.settings import FaultSpec
from infra.sandbox.state import SandboxState, load, marker_for, sandbox_dir, version_of

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from infra.rollout.kpis import KpiReport

STACK = "local"
BUDGET_SECONDS = 170.0
IMAGES = {"healthy": "demo:v2", "faulty": "demo:v3", "bluegreen": "demo:v4"}
"""The demo's own version range: the README's walkthrough uses v5 to v7, so the demo never quarantines them."""


@dataclass(slots=True)
class ActResult:
    number: int
    title: str
    expected: str
    outcome: str = "not run"
    ok: bool = False
    seconds: float = 0.0
    detail: str = ""
    rollout: str | None = None
    events: list[str] = field(default_factory=list)

    def row(self) -> ActRow:
        return ActRow(self.number, self.title, self.expected, self.outcome, self.ok, self.seconds, self.detail,
                      tuple(self.events))


@dataclass(frozen=True, slots=True)
class DemoOutcome:
    acts: tuple[ActResult, ...]
    report: Path | None
    chart: Path | None
    seconds: float
    kpis: KpiReport | None = None
    """The delivery KPIs of the demo's own rollouts (None if none was journaled)."""
    kpis_markdown: Path | None = None

    @property
    def ok(self) -> bool:
        return all(a.ok for a in self.acts)


class _Watch:
    """Samples HAProxy weights and the load generator's error rate while an act runs (for the chart and view)."""

    def __init__(self, st: SandboxState, loads: dict[str, LoadGenerator], t0: float) -> None:
        self.st, self.loads, self.t0 = st, loads, t0
        self.api = RuntimeApi(Path(st.haproxy_socket))
        self.points: list[TimelinePoint] = []
        self.act = 0
        self.service = "web"
        self.new_version = ""

    def sample(self) -> TimelinePoint | None:
        if self.act == 0:
            return None
        try:
            weights = self.api.weights(self.st.backend(self.service))
            fresh = load(Path(self.st.directory))
        except (OSError, ValueError):
            return None
        new_weight = 0
        if fresh is not None:
            for name, slot in fresh.services[self.service].slots.items():
                if slot is not None and slot.version == self.new_version:
                    new_weight = weights.get(name, 0)
        gen = self.loads[self.service]
        now = gen.elapsed()
        window = gen.window(max(0.0, now - 1.5), now - 0.5)
        point = TimelinePoint(time.monotonic() - self.t0, self.act, new_weight, window.error_rate,
                              window.requests)
        self.points.append(point)
        return point


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # No PATH change: a hook's `gantry` runs through the rollout's own interpreter (infra.rollout.hooks).
    env["PYTHONPATH"] = str(lifecycle.REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def rollout_argv(service: str, image: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "infra.cli", "rollout", "start", "--stack", STACK, "--service", service,
            "--image", image, "--json", *extra]


def _run_rollout(project: Path, argv: Sequence[str], act: ActResult, tick: Callable[[str], None],
                 timeout: float) -> tuple[int, dict[str, object]]:
    """Run ``gantry rollout start --json``; return its exit code and final outcome line."""
    proc = subprocess.Popen(list(argv), cwd=project, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    outcome: dict[str, object] = {}
    deadline = time.monotonic() + timeout
    done = False
    while not done:
        if time.monotonic() > deadline:
            proc.kill()
            act.detail = f"rollout did not finish within {timeout:.0f}s"
            break
        try:
            line = lines.get(timeout=0.25)
        except queue.Empty:
            tick("")
            continue
        if line is None:
            done = True
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if doc.get("event") == "outcome":
            outcome = doc
        act.rollout = str(doc.get("rollout") or act.rollout or "")
        text = _describe(doc)
        if text:
            act.events.append(text)
            tick(text)
    code = proc.wait(timeout=30)
    stderr = proc.stderr.read() if proc.stderr else ""
    if code not in (0, 1) and not act.detail:
        act.detail = (stderr.strip().splitlines() or [f"exit {code}"])[-1][:300]
    return code, outcome


def _describe(doc: dict[str, object]) -> str:
    event = str(doc.get("event", ""))
    data = doc.get("data") if isinstance(doc.get("data"), dict) else {}
    assert isinstance(data, dict)
    if event == "analysis":
        checks = data.get("checks") or []
        worst = ", ".join(f"{c.get('name')}={c.get('verdict')}" for c in checks if isinstance(c, dict))
        return f"analysis {data.get('label', '')}: {data.get('verdict')} ({worst})"
    if event == "decision":
        return f"decision: {data.get('decision')} - {data.get('reason')}"
    if event == "applied":
        return f"applied {data.get('action')}" + (f" weight {data['weight']}" if "weight" in data else "") + (
            f" color {data['color']}" if "color" in data else "")
    if event == "hook":
        results = data.get("results") or []
        return "hook " + ", ".join(f"{r.get('name')}: {'ok' if r.get('ok') else 'FAILED'}"
                                   for r in results if isinstance(r, dict))
    if event == "outcome":
        return f"outcome: {doc.get('phase')} - {doc.get('reason')}"
    if event in ("started", "phase", "verified", "error"):
        return f"{event} {json.dumps(data, default=str)[:160]}"
    return ""


def _serving(gen: LoadGenerator, seconds: float = 1.0) -> dict[str, int]:
    """Which versions served the load generator's last ``seconds`` (after a short settle)."""
    time.sleep(seconds + 0.3)
    now = gen.elapsed()
    return gen.window(now - seconds - 0.3, now - 0.3).by_version


def ensure_stack(project: Path) -> None:
    """A project without ``stacks/Pulumi.local.yaml`` gets the shipped one, so the demo runs from anywhere."""
    target = project / "stacks" / "Pulumi.local.yaml"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lifecycle.REPO_ROOT / "stacks" / "Pulumi.local.yaml", target)


def run(project: Path, *, as_json: bool = False, report_path: Path | None = None, interval: str | None = None,
        echo: Callable[[str], None] | None = None) -> DemoOutcome:
    """Run the five acts; never leaves a process behind. ``interval`` overrides the stack's analysis interval."""
    project = project.resolve()
    procs.find_binary("haproxy")
    procs.find_binary("prometheus")
    ensure_stack(project)
    if load(sandbox_dir(project)) is not None and lifecycle.status(project).up:
        raise SandboxError("the sandbox is already up; stop it first with: gantry sandbox down")
    out_dir = project / ".gantry" / "demo"
    report_path = report_path or out_dir / "report.html"
    png_path = report_path.with_suffix(".png")
    acts = [
        ActResult(1, "start the sandbox with v1 stable", "up, v1 serving 100%"),
        ActResult(2, "canary v2 (healthy) through 10/25/50/100", "promoted"),
        ActResult(3, "canary v3 (20% errors)", "rolled back, v2 serving 100%"),
        ActResult(4, "blue/green v4 after its smoke hook", "promoted (switched to green)"),
        ActResult(5, "stop everything", "no process left"),
    ]
    view = _View(acts, as_json, echo)
    t0 = time.monotonic()
    wall_start = time.time()
    loads: dict[str, LoadGenerator] = {}
    watch: _Watch | None = None
    extra = ("--interval", interval) if interval else ()
    with view:
        try:
            # Act 1
            a = acts[0]
            started = time.monotonic()
            try:
                st = lifecycle.up(project, STACK)
                status = lifecycle.status(project)
                a.ok = status.up and status.weights.get("web", {}).get("stable") == 100
                a.outcome = "up" if a.ok else "not fully up"
                a.detail = f"prometheus {st.prometheus_url}; web {st.frontend_url('web')}; api {st.frontend_url('api')}"
            except SandboxError as exc:
                a.outcome, a.detail = "failed", str(exc)
                raise
            finally:
                a.seconds = time.monotonic() - started
                view.finish(a)
            cfg_rate = _rate(project)
            for svc in ("web", "api"):
                loads[svc] = LoadGenerator(st.frontend_url(svc), rate_rps=cfg_rate, max_seconds=BUDGET_SECONDS,
                                           max_requests=int(cfg_rate * BUDGET_SECONDS)).start()
            watch = _Watch(st, loads, t0)
            lifecycle.wait_scraped(st, "v1", timeout=15)

            def tick(text: str) -> None:
                point = watch.sample() if watch else None
                view.update(point, text)

            # Act 2: healthy canary, promoted.
            a = acts[1]
            watch.act, watch.service, watch.new_version = 2, "web", "v2"
            started = time.monotonic()
            code, outcome = _run_rollout(project, rollout_argv("web", IMAGES["healthy"], *extra), a, tick, 100)
            serving = _serving(loads["web"])
            a.outcome = str(outcome.get("phase", f"exit {code}"))
            a.ok = code == 0 and a.outcome == "promoted" and set(serving) == {"v2"}
            a.detail = a.detail or f"{outcome.get('reason', '')}; now serving {serving}"
            a.seconds = time.monotonic() - started
            view.finish(a)

            # Act 3: faulty canary, rolled back by the analysis of real traffic.
            a = acts[2]
            lifecycle.set_fault(project, version_of(IMAGES["faulty"]), FaultSpec(error_rate=0.2))
            watch.act, watch.new_version = 3, version_of(IMAGES["faulty"])
            started = time.monotonic()
            argv = rollout_argv("web", IMAGES["faulty"], "--force", *extra)
            code, outcome = _run_rollout(project, argv, a, tick, 100)
            serving = _serving(loads["web"])
            a.outcome = str(outcome.get("phase", f"exit {code}"))
            a.ok = code == 1 and a.outcome == "rolled_back" and set(serving) == {"v2"}
            a.detail = a.detail or f"{outcome.get('reason', '')}; now serving {serving}"
            a.seconds = time.monotonic() - started
            view.finish(a)

            # Act 4: blue/green, switched after the smoke hook passed.
            a = acts[3]
            watch.act, watch.service, watch.new_version = 4, "api", "v4"
            started = time.monotonic()
            code, outcome = _run_rollout(project, rollout_argv("api", IMAGES["bluegreen"], *extra), a, tick, 100)
            serving = _serving(loads["api"])
            smoke_ok = any(e.startswith("hook smoke: ok") for e in a.events)
            a.outcome = str(outcome.get("phase", f"exit {code}"))
            a.ok = code == 0 and a.outcome == "promoted" and smoke_ok and set(serving) == {"v4"}
            a.detail = a.detail or (f"{outcome.get('reason', '')}; smoke hook {'passed' if smoke_ok else 'missing'}; "
                                    f"now serving {serving}")
            a.seconds = time.monotonic() - started
            view.finish(a)
        finally:
            for gen in loads.values():
                gen.stop()
            # Act 5, always.
            a = acts[4]
            started = time.monotonic()
            stopped = lifecycle.down(project)
            left = procs.sweep(marker_for(sandbox_dir(project)))
            a.ok, a.outcome = not left, "stopped" if not left else "processes left"
            a.detail = f"stopped {len(stopped)} process(es)"
            a.seconds = time.monotonic() - started
            view.finish(a)
    report: Path | None = None
    png: Path | None = None
    if watch is not None and watch.points:
        png = rollout_chart(project, acts, png_path)
        report = html_report([x.row() for x in acts], png, report_path, "gantry sandbox demo",
                             f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs), "
                             f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    kpi_report = kpi_summary(project, [a.rollout for a in acts if a.rollout], wall_start)
    kpi_md: Path | None = None
    if kpi_report is not None:
        from infra.rollout.kpi_formats import markdown

        kpi_md = out_dir / "kpis.md"
        kpi_md.parent.mkdir(parents=True, exist_ok=True)
        kpi_md.write_text(markdown(kpi_report), encoding="utf-8")
    outcome_all = DemoOutcome(tuple(acts), report, png, time.monotonic() - t0, kpi_report, kpi_md)
    view.summary(outcome_all)
    return outcome_all


def rollout_chart(project: Path, acts: Sequence[ActResult], path: Path) -> Path:
    """The same chart as ``gantry rollout report``, one pair of panels per act that ran a rollout, from the
    journal: the canary's and the stable's error rates, threshold, analyses, decision, rollback; the weight."""
    from infra.rollout.chart import Chartable, draw
    from infra.rollout.journal import SqliteJournal, journal_path
    from infra.rollout.seams import RolloutId
    from infra.rollout.steps import story

    journal = SqliteJournal(journal_path(project))
    try:
        items = [Chartable(f"Act {a.number}: {a.title}", story(journal.entries(RolloutId(a.rollout))))
                 for a in acts if a.rollout]
    finally:
        journal.close()
    return draw(items, path)


def kpi_summary(project: Path, rollout_ids: Sequence[str], since: float) -> KpiReport | None:
    """The KPIs of the given rollouts (the demo's own), over the period since the first of them started."""
    from infra.rollout import kpis
    from infra.rollout.journal import SqliteJournal, journal_path
    from infra.rollout.seams import RolloutId

    path = journal_path(project)
    if not rollout_ids or not path.is_file():
        return None
    journal = SqliteJournal(path)
    try:
        facts = kpis.load(journal)
    finally:
        journal.close()
    return kpis.compute(facts, since=since, until=time.time(), only=frozenset(RolloutId(i) for i in rollout_ids))


def _rate(project: Path) -> float:
    from infra.config import load_stack

    return float(load_stack(STACK, project / "stacks").sandbox.rate_rps)


class _View:
    """The live rich view (or ``--json``: one line per act, then a summary line)."""

    def __init__(self, acts: Sequence[ActResult], as_json: bool, echo: Callable[[str], None] | None) -> None:
        self.acts, self.as_json, self.echo = acts, as_json, echo
        self.last_event = ""
        self.point: TimelinePoint | None = None
        self.live: object | None = None
        self.piped: Console | None = None

    def __enter__(self) -> _View:
        if not self.as_json and self.echo is None:
            from rich.live import Live

            from infra.console import make_console

            console = make_console()
            if not console.is_terminal:
                # A pipe gets the final frame once, whole, on its own lines (see __exit__), not Live's redraws.
                self.piped = console
                return self
            live = Live(self._render(), console=console, auto_refresh=False, transient=False)
            live.start()
            self.live = live
        return self

    def __exit__(self, *exc: object) -> None:
        if self.piped is not None:
            from infra.console import fit

            fit(self.piped, self._render(final=True))
            self.piped = None
        if self.live is not None:
            from rich.live import Live

            assert isinstance(self.live, Live)
            self.live.update(self._render(final=True), refresh=True)
            self.live.stop()
            self.live = None

    def _render(self, final: bool = False) -> RenderableType:
        """The acts table, and while it runs (not in the ``final`` frame) the traffic bar and the last event."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(title="gantry sandbox demo", expand=False)
        for col in ("act", "what", "expected", "outcome", "ok", "s"):
            table.add_column(col)
        for a in self.acts:
            ok = Text("") if a.outcome == "not run" else Text("yes", "green") if a.ok else Text("NO", "red")
            table.add_row(str(a.number), a.title, a.expected, a.outcome, ok, f"{a.seconds:.0f}" if a.seconds else "")
        parts: list[RenderableType] = [table]
        if final:
            return table
        if self.point is not None:
            w = self.point.new_weight
            bar = "[green]" + "█" * ((100 - w) // 4) + "[/green][magenta]" + "█" * (w // 4) + "[/magenta]"
            parts.append(Text.from_markup(
                f"new version {w:3d}%  {bar}  errors {100 * self.point.error_rate:4.1f}%  "
                f"{self.point.rps:.0f} req/s"))
        if self.last_event:
            parts.append(Text(self.last_event[:160], style="dim"))
        return Group(*parts)

    def update(self, point: TimelinePoint | None, text: str) -> None:
        if point is not None:
            self.point = point
        if text:
            self.last_event = text
            if self.echo is not None:
                self.echo(text)
        if self.live is not None:
            from rich.live import Live

            assert isinstance(self.live, Live)
            self.live.update(self._render(), refresh=True)

    def finish(self, act: ActResult) -> None:
        if self.as_json:
            doc = asdict(act)
            doc.pop("events")
            sys.stdout.write(json.dumps(doc, sort_keys=True) + "\n")
            sys.stdout.flush()
        elif self.echo is not None:
            self.echo(f"act {act.number}: {act.outcome} ({'as expected' if act.ok else 'NOT as expected'})")
        self.update(None, "")

    def summary(self, outcome: DemoOutcome) -> None:
        if self.as_json:
            kpis = None
            if outcome.kpis is not None:
                kpis = {m.key: {"value": m.value, "met": m.met} for m in outcome.kpis.overall.metrics}
            sys.stdout.write(json.dumps({"ok": outcome.ok, "seconds": round(outcome.seconds, 1),
                                         "report": str(outcome.report) if outcome.report else None,
                                         "chart": str(outcome.chart) if outcome.chart else None,
                                         "kpis": kpis}, sort_keys=True) + "\n")
            return
        from infra.console import fit, make_console, styled

        console = make_console()
        verdict = "[green]every act ended as expected[/green]" if outcome.ok else "[red]some acts did not[/red]"
        console.print(styled(f"{verdict} in {{}}s", f"{outcome.seconds:.0f}"))
        if outcome.report:
            console.print(f"report: {outcome.report}\nchart:  {outcome.chart}")
        if outcome.kpis is not None:
            from infra.rollout.kpi_formats import text

            console.print(styled("\n[bold]Delivery KPIs of the demo's rollouts[/bold]"))
            fit(console, text(outcome.kpis))
            if outcome.kpis_markdown is not None:
                console.print(f"markdown: {outcome.kpis_markdown}")


__all__ = ["DemoOutcome", "run", "version_of"]
