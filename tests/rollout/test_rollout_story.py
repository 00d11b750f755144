"""A finished rollout's story: starved holds get their own reason, hooks find gantry without PATH, every step is
shown (text, JSON, the chart), and piped output is printed whole."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from rich.table import Table
from rollout_rig import make_rig
from typer.testing import CliRunner

from infra.cli import app
from infra.console import fit, make_console
from infra.rollout.chart import Chartable, draw, title
from infra.rollout.hooks import CommandHook, resolve_argv
from infra.rollout.journal import EntryKind
from infra.rollout.seams import (
    AnalysisContext,
    AnalysisResult,
    CheckResult,
    HookPhase,
    Phase,
    Track,
    TrafficCounts,
    Verdict,
)
from infra.rollout.steps import direction, lines, story
from infra.rollout.view import render

runner = CliRunner()


class CountingAnalysis:
    """A judge seen from the outside: scripted canary/stable counts per analysis, verdicts as the gates say."""

    def __init__(self, script: list[tuple[Verdict, int, int]], needed: int = 50) -> None:
        self.script, self.needed, self.calls = script, needed, 0

    def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        verdict, requests, errors = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        rate = errors / requests if requests else 0.0
        check = CheckResult("error-rate", verdict, rate, 0.005, f"{errors}/{requests} requests failed")
        traffic = {Track.CANARY: TrafficCounts(requests=requests, errors=errors),
                   Track.BASELINE: TrafficCounts(requests=10 * requests + 1, errors=0)}
        return AnalysisResult(verdict, (check,), traffic, needed=self.needed)


def test_holds_running_out_is_inconclusive_with_the_numbers_not_a_failed_threshold(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, analysis=CountingAnalysis([(Verdict.INCONCLUSIVE, 6, 0), (Verdict.INCONCLUSIVE, 11, 0),
                                                         (Verdict.INCONCLUSIVE, 17, 0)], needed=50))
    outcome = rig.start()
    assert outcome.phase is Phase.ROLLED_BACK
    assert outcome.reason == "inconclusive after 3 holds: too little traffic (17 canary requests, 50 needed)"
    assert "reached the threshold" not in outcome.reason


def test_rollback_reasons_read_as_counts_and_in_each_gates_direction() -> None:
    from infra.rollout.scheduler import failed_checks

    sprt = {"name": "error-rate-sprt", "verdict": "fail", "value": 9.107, "limit": 4.554,
            "detail": "5/27 canary errors; H0 p=0.003 vs H1 p=0.020; LLR 9.11 in (-2.99, 4.55)"}
    mann = {"name": "latency-mann-whitney", "verdict": "fail", "value": 0.001, "limit": 0.02, "detail": "slower"}
    assert failed_checks([sprt, mann]) == (
        "error-rate-sprt 5/27 canary requests failed (18.5%), LLR 9.11 > 4.55", "latency-mann-whitney 0.001 < 0.02")


def test_starved_with_enough_canary_traffic_names_the_stable_count(tmp_path: Path) -> None:
    class StableStarved(CountingAnalysis):
        def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
            result = super().analyse(ctx)
            traffic = {**result.traffic, Track.BASELINE: TrafficCounts(requests=3, errors=0)}
            return AnalysisResult(result.verdict, result.checks, traffic, needed=result.needed)

    rig = make_rig(tmp_path, analysis=StableStarved([(Verdict.INCONCLUSIVE, 80, 0)], needed=50))
    outcome = rig.start()
    assert outcome.reason == ("inconclusive after 3 holds: too little traffic (80 canary requests, 50 needed; "
                              "3 stable requests)")


def test_a_real_failure_after_holds_keeps_the_failed_gate_reason(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, analysis=CountingAnalysis([(Verdict.INCONCLUSIVE, 6, 0), (Verdict.FAIL, 200, 40)]))
    outcome = rig.start()
    assert outcome.phase is Phase.ROLLED_BACK
    assert "inconclusive" not in outcome.reason and "error-rate 0.2 > 0.005" in outcome.reason


def test_gantry_hooks_run_through_this_interpreter_without_path(tmp_path: Path) -> None:
    assert resolve_argv(["gantry", "sandbox", "smoke"])[:3] == [sys.executable, "-m", "infra.cli"]
    assert resolve_argv(["/usr/bin/env", "gantry"]) == ["/usr/bin/env", "gantry"]  # only argv[0] is resolved
    hook = CommandHook("v", HookPhase.STEP, ["gantry", "--version"], timeout=60)
    import os

    saved = os.environ.get("PATH", "")
    os.environ["PATH"] = str(tmp_path)  # no gantry (nor anything else) on PATH
    try:
        result = hook.run({"rollout": "r-1"})
    finally:
        os.environ["PATH"] = saved
    assert result.ok, result.detail


def test_a_failed_step_hook_shows_its_reason_in_the_gates_and_status(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-tool")
    hook = CommandHook("smoke", HookPhase.STEP, [missing], timeout=5)
    rig = make_rig(tmp_path, hooks=[hook], analysis=CountingAnalysis([(Verdict.PASS, 500, 0)]))
    outcome = rig.start()
    assert outcome.phase is Phase.ROLLED_BACK
    analysis = next(e for e in rig.entries(outcome.rollout_id) if e.kind is EntryKind.ANALYSIS)
    checks = analysis.data["checks"]
    assert isinstance(checks, list)
    hook_check = next(c for c in checks if isinstance(c, dict) and c["name"] == "hook:smoke")
    assert isinstance(hook_check, dict) and f"cannot run {missing}" in str(hook_check["detail"])
    res = runner.invoke(app, ["rollout", "status", outcome.rollout_id, "--project", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert f"cannot run {missing}" in res.output


def test_steps_show_every_step_with_gates_directions_holds_decisions(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, analysis=CountingAnalysis([(Verdict.INCONCLUSIVE, 20, 0), (Verdict.PASS, 120, 0),
                                                         (Verdict.PASS, 300, 0), (Verdict.PASS, 600, 0),
                                                         (Verdict.FAIL, 900, 90)]))
    outcome = rig.start()
    s = story(rig.entries(outcome.rollout_id))
    assert [st.weight for st in s.steps] == [10, 25, 50, 100]
    assert s.steps[0].holds == 1 and [a.verdict for a in s.steps[0].analyses] == ["inconclusive", "pass"]
    assert s.steps[3].decision == "rollback" and s.reverted_at is not None
    assert s.failed_canary_requests == 90
    text = "\n".join(lines(s))
    assert "step 4/4  canary 100%  weight 100%" in text and "holds 1" in text
    assert "error-rate: 0.1 ≤ 0.005  fail" in text and "decision at +" in text and "rolled back at +" in text
    assert direction("latency-mann-whitney") == "≥" and direction("p95-latency") == "≤"
    # The CLI: a finished rollout shows its steps by default, and --json carries them.
    res = runner.invoke(app, ["rollout", "status", outcome.rollout_id, "--project", str(tmp_path)])
    assert "step 1/4" in res.output and "decision at" in res.output
    res = runner.invoke(app, ["rollout", "status", outcome.rollout_id, "--no-steps", "--project", str(tmp_path)])
    assert "step 1/4 " not in res.output
    res = runner.invoke(app, ["rollout", "status", outcome.rollout_id, "--json", "--project", str(tmp_path)])
    doc = json.loads(res.stdout)
    assert [st["holds"] for st in doc["steps"]] == [1, 0, 0, 0]
    assert doc["steps"][3]["analyses"][0]["gates"][0]["direction"] == "≤"
    assert doc["failed_canary_requests"] == 90


def test_promoted_frame_shows_the_new_version_as_stable_and_no_empty_gates(tmp_path: Path) -> None:
    from infra.rollout.entries import parse_all
    from infra.rollout.scheduler import replay

    rig = make_rig(tmp_path, analysis=CountingAnalysis([(Verdict.PASS, 500, 0)]))
    outcome = rig.start()
    state = replay(parse_all(rig.entries(outcome.rollout_id)))
    buf = io.StringIO()
    console = make_console(file=buf, width=200)
    console.print(render(state, [], None, 0.0))
    text = buf.getvalue()
    assert f"stable 100% / canary 0% (stable: {state.image})" in text and state.image != state.baseline_image
    assert "gates" not in text, "no gates table when there is no analysis to show"


def test_report_draws_any_rollout_of_the_journal(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, analysis=CountingAnalysis([(Verdict.PASS, 100, 0), (Verdict.FAIL, 200, 30)]))
    outcome = rig.start()
    png, page = tmp_path / "c.png", tmp_path / "c.html"
    res = runner.invoke(app, ["rollout", "report", outcome.rollout_id, "--png", str(png), "--html", str(page),
                              "--project", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "data:image/png;base64," in page.read_text() and "step 2/4" in page.read_text()
    s = story(rig.entries(outcome.rollout_id))
    heading = title(Chartable("web", s))
    assert "rolled back" in heading and "detected" in heading and "30 failed canary requests" in heading
    assert draw([Chartable("web", s)], tmp_path / "d.png").stat().st_size > 1000
    res = runner.invoke(app, ["rollout", "report", "r-nope", "--project", str(tmp_path)])
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_piped_tables_are_printed_whole() -> None:
    buf = io.StringIO()
    console = make_console(file=buf, width=40)
    assert not console.is_terminal
    table = Table("type", "name")
    long_type = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"
    table.add_row(long_type, "gantry-dev-prometheus-scraper-access")
    fit(console, table)
    assert long_type in buf.getvalue() and "…" not in buf.getvalue()
    assert console.width == 40, "the console keeps its width for what follows"
