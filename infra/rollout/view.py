"""What a running rollout shows: a live rich view (stage, weights, each gate's value against its limit, time
left) or, with ``--json``, one JSON event per line.

Both are engine ``Observer``s, created by ``gantry rollout``; they only read state and journal entries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import IO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from components.spec import Strategy
from infra.console import make_console, plain
from infra.rollout.entries import Analysed, Checkpointed, Logged, Started
from infra.rollout.scheduler import RolloutState
from infra.rollout.seams import JSONObject, JSONValue, Phase
from infra.rollout.steps import direction

_PHASE_STYLE = {Phase.PROMOTED: "bold green", Phase.ROLLED_BACK: "bold yellow", Phase.FAILED: "bold red",
                Phase.ROLLING_BACK: "yellow", Phase.PAUSED: "cyan"}
_VERDICT_STYLE = {"pass": "green", "fail": "red", "inconclusive": "yellow"}


def _num(v: JSONValue) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def remaining_seconds(state: RolloutState, until: float | None, now: float) -> float:
    """Lower bound on the time to promotion: this wait plus one interval per step not yet applied."""
    ahead = max(0, len(state.plan.steps) - 1 - state.step) if state.phase is Phase.PROGRESSING else 0
    wait = max(0.0, (until or now) - now)
    return wait + ahead * state.plan.interval + (state.plan.scale_down_delay if ahead or wait else 0.0)


def limit_text(gate: str, limit: JSONValue) -> str:
    """The limit with its direction (``≤ 0.005``), so every row of the column reads the same way."""
    return "-" if limit is None else f"{direction(gate)} {_num(limit)}"


def render(state: RolloutState, checks: Sequence[Mapping[str, JSONValue]], until: float | None,
           now: float, *, wide: bool = False) -> RenderableType:
    """One frame of the live view (pure, so it can be tested without a terminal). ``wide``: for a pipe, where
    nothing is cut (details in full, the panel as wide as its content)."""
    # Every value from the stack, the journal or a gate is wrapped in Text: literal on any console.
    head = Table.grid(padding=(0, 2))
    head.add_row("rollout", plain(state.rollout_id), "stack", plain(f"{state.stack}/{state.service}"))
    head.add_row("image", plain(state.image), "baseline", plain(state.baseline_image))
    phase = Text(state.phase.value, style=_PHASE_STYLE.get(state.phase, "bold"))
    stage = state.current_step.label if state.phase is Phase.PROGRESSING else state.reason or state.phase.value
    head.add_row("phase", phase, "stage", plain(f"{stage} (step {min(state.step + 1, len(state.plan.steps))}/"
                                                f"{len(state.plan.steps)})"))
    if state.plan.strategy is Strategy.CANARY:
        # Once promoted the new version IS the stable one: it serves 100% as stable, whatever the last weight.
        w = 0 if state.phase in (Phase.PROMOTED, Phase.ROLLED_BACK) else state.weight
        bar = "[green]" + "█" * ((100 - w) // 5) + "[/green][magenta]" + "█" * (w // 5) + "[/magenta]"
        stable = state.image if state.phase is Phase.PROMOTED else state.baseline_image
        head.add_row("weights", plain(f"stable {100 - w}% / canary {w}% (stable: {stable})"), "",
                     Text.from_markup(bar))
    else:
        active = state.active_color.value if state.active_color else "-"
        head.add_row("active", active, "new color", state.new_color.value if state.new_color else "-")
    head.add_row("failures", f"{state.failures}/{state.plan.threshold}", "holds",
                 f"{state.holds}/{state.plan.max_holds}")
    if until is not None and until > now:
        head.add_row("time left", f"{until - now:.0f}s until the next analysis", "at least",
                     f"{remaining_seconds(state, until, now):.0f}s to promotion")
    parts: list[RenderableType] = [head]
    if checks:  # a rollout that ended before any analysis (a hook, an abort) has no gates to show
        gates = Table(title="gates (last analysis)", expand=False)
        for col in ("gate", "value", "pass if", "verdict", "detail"):
            gates.add_column(col, no_wrap=wide)
        for c in checks:
            verdict = str(c.get("verdict", ""))
            detail = str(c.get("detail", ""))
            gates.add_row(plain(c.get("name", "")), plain(_num(c.get("value"))),
                          plain(limit_text(str(c.get("name", "")), c.get("limit"))),
                          Text(verdict, style=_VERDICT_STYLE.get(verdict, "")),
                          plain(detail if wide else detail[:90]))
        parts.append(gates)
    return Panel(Group(*parts), title="gantry rollout", expand=not wide)


class LiveView:
    """A rich Live panel refreshed on every journal entry and every wait tick. When the console is not a
    terminal (a pipe, a CI log) nothing is redrawn: the final frame is printed once, whole, at the end."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or make_console()
        self.checks: list[Mapping[str, JSONValue]] = []
        self.until: float | None = None
        self.live = Live(console=self.console, auto_refresh=False, transient=False)
        self.started = False
        self.interactive = self.console.is_terminal
        self.last: tuple[RolloutState, float] | None = None

    def __enter__(self) -> LiveView:
        if self.interactive:
            self.live.start()
        self.started = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.interactive:
            self.live.stop()
            self.console.print()
        elif self.last is not None:
            from infra.console import fit

            fit(self.console, render(self.last[0], self.checks, None, self.last[1], wide=True))

    def on_entry(self, state: RolloutState, entry: Logged) -> None:
        if isinstance(entry.body, Analysed):
            self.checks = checks_json(entry.body)
        self.until = None
        self._draw(state, entry.at)

    def on_wait(self, state: RolloutState, until: float, now: float) -> None:
        self.until = until
        self._draw(state, now)

    def _draw(self, state: RolloutState, now: float) -> None:
        self.last = (state, now)
        if self.started and self.interactive:
            self.live.update(render(state, self.checks, self.until, now), refresh=True)


def _summary(snapshot: JSONValue) -> JSONValue:
    """A checkpoint can hold a whole exported deployment: a pipeline needs where it is, not every byte."""
    if isinstance(snapshot, Mapping):
        return {"file": snapshot.get("file"), "keys": sorted(str(k) for k in snapshot)}
    return None


def checks_json(analysis: Analysed | None) -> list[Mapping[str, JSONValue]]:
    """The gates of an analysis as the live view and ``status --json`` show them."""
    return [] if analysis is None else [c.to_json() for c in analysis.checks]


def event_json(state: RolloutState, entry: Logged) -> JSONObject:
    """One ``--json`` line: the journal entry plus where the rollout stands after it."""
    data = dict(entry.body.to_json())
    if isinstance(entry.body, Checkpointed):
        data["state"] = _summary(data.get("state"))
    if isinstance(entry.body, Started) and "before" in data:
        data["before"] = _summary(data["before"])
    return {"event": entry.kind.value, "rollout": state.rollout_id, "seq": entry.seq, "at": entry.at,
            "phase": state.phase.value, "step": state.step, "weight": state.weight,
            "active_color": state.active_color.value if state.active_color else None, "data": data}


class JsonView:
    """``--json``: one JSON object per line per journal entry (waits print nothing)."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def on_entry(self, state: RolloutState, entry: Logged) -> None:
        self.out.write(json.dumps(event_json(state, entry), sort_keys=True) + "\n")
        self.out.flush()

    def on_wait(self, state: RolloutState, until: float, now: float) -> None:
        return
