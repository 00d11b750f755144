"""`gantry report kpis` and `gantry rollout start --commit`: every format, the definitions, escaping, bad input."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from kpi_scenario import T0, build
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from rollout_rig import make_rig
from typer.testing import CliRunner

from infra.cli import app
from infra.rollout import kpis
from infra.rollout.journal import SCHEMA_VERSION, SqliteJournal, journal_path
from infra.rollout.seams import StackName

runner = CliRunner()
ISSUE_DEFINITIONS = {
    "lead_time": "Lead time runs from commit time to promotion.",
    "mttr": "MTTR runs from the first failing analysis to stable serving 100%.",
    "change_failure_rate": "Change failure rate counts rollbacks plus failed promotions over all rollouts.",
    "zero_downtime": "Zero-downtime comes from the error counts the analyses saw on the stable version during "
                     "rollouts.",
}
HOSTILE_STACK = "[bold red]prod[/bold red]|<script>alert(1)</script>"
HOSTILE_SERVICE = "w*e_b`[x](y)#|&amp;"
TERMINAL_STACK = "evil\x1b[2J\x1b]0;owned\x07"
"""Clears the screen and retitles the terminal if printed raw."""


def gantry(project: Path, *args: str) -> tuple[int, str, str]:
    # A wide terminal, so table cells are not wrapped across lines. The consoles may have been built (and their
    # width fixed) by an earlier test in this process, so the width is set on them, not only in the environment.
    from infra.commands import common

    saved = common.out._width
    common.out.width = 200
    try:
        result = runner.invoke(app, [*args, "--project", str(project)], env={"COLUMNS": "200"})
    finally:
        common.out._width = saved
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def scenario_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("kpi-cli")
    build(project).journal.close()
    return project


@pytest.fixture(scope="module")
def hostile_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("kpi-hostile")
    rig = make_rig(project)
    rig.engine.start(stack=StackName(HOSTILE_STACK), service=HOSTILE_SERVICE, image="app:2.0", plan=rig.plan)
    # A second service and a second stack, so the per-stack and per-service tables (which carry the names)
    # are shown.
    rig.engine.start(stack=StackName(HOSTILE_STACK), service="web", image="app:3.0", plan=rig.plan)
    rig.engine.start(stack=StackName("plain"), service="web", image="app:2.0", plan=rig.plan)
    rig.engine.start(stack=StackName(TERMINAL_STACK), service="web", image="app:2.0", plan=rig.plan)
    rig.journal.close()
    return project


def since_scenario() -> str:
    # The scenario lives in 2023: look back from now far enough to include it.
    import time

    return f"{int((time.time() - T0) / 86_400) + 2}d"


def test_json_has_the_issues_definitions_targets_and_the_computed_values(scenario_project: Path) -> None:
    code, out, _ = gantry(scenario_project, "report", "kpis", "--format", "json", "--since", since_scenario())
    assert code == 0
    doc = json.loads(out)
    defs = doc["metadata"]["definitions"]
    assert set(defs) == {"deployment_frequency", "lead_time", "mttr", "change_failure_rate",
                         "deployment_success_rate", "rollback_rate", "rollback_success_rate", "rollback_time",
                         "deployment_time", "zero_downtime"}
    for key, sentence in ISSUE_DEFINITIONS.items():
        assert defs[key]["definition"] == sentence
    assert defs["lead_time"]["target"] == {"op": "<", "value": 7200, "seed": "< 2 hours from commit to production"}
    assert defs["zero_downtime"]["target"]["seed"] == "> 99.9%"
    assert defs["rollback_success_rate"]["target"] == {"op": "=", "value": 1, "seed": "100%"}
    overall = doc["scopes"][0]
    assert (overall["scope"], overall["rollouts"]) == ("overall", 8)
    assert overall["metrics"]["change_failure_rate"]["value"] == pytest.approx(3 / 7, abs=0)
    assert overall["metrics"]["change_failure_rate"]["met"] is False
    assert overall["metrics"]["mttr"] == {"value": 70, "met": True, "samples": 1, "target": 300,
                                          "detail": {"mean": 70, "median": 70, "max": 70, "incidents": 2,
                                                     "unrecovered": 1}}
    assert [s["service"] for s in doc["scopes"]] == [None, None, "api", "web", None, "api", "web"]
    assert [w["week"] for w in doc["weeks"]][:2] == ["2023-W46", "2023-W47"]


def test_filters_by_stack_and_service(scenario_project: Path) -> None:
    code, out, _ = gantry(scenario_project, "report", "kpis", "--format", "json", "--since", since_scenario(),
                          "--stack", "prod", "--service", "api")
    assert code == 0
    doc = json.loads(out)
    assert doc["metadata"]["filters"] == {"stack": "prod", "service": "api"}
    assert [(s["scope"], s["rollouts"]) for s in doc["scopes"]] == [("overall", 1), ("stack", 1), ("service", 1)]
    assert doc["scopes"][0]["metrics"]["deployment_time"]["value"] == 755


def test_prometheus_is_openmetrics_that_parses_back_to_the_values(scenario_project: Path) -> None:
    code, out, _ = gantry(scenario_project, "report", "kpis", "--format", "prometheus", "--since", since_scenario())
    assert code == 0
    assert out.endswith("# EOF\n")
    families = {f.name: f for f in text_string_to_metric_families(out)}  # type: ignore[no-untyped-call]  # the library ships no type information
    assert {"gantry_lead_time_seconds", "gantry_mttr_seconds", "gantry_change_failure_ratio",
            "gantry_deployment_frequency_per_day", "gantry_zero_downtime_ratio", "gantry_kpi_target",
            "gantry_kpi_target_met"} <= set(families)

    def sample(family: str, **labels: str) -> float:
        return next(s.value for s in families[family].samples  # type: ignore[no-any-return]
                    if all(s.labels.get(k) == v for k, v in labels.items()))

    assert sample("gantry_change_failure_ratio", scope="overall") == 3 / 7
    assert sample("gantry_mttr_seconds", scope="overall") == 70
    assert sample("gantry_rollback_success_ratio", scope="service", stack="staging", service="web") == 0
    assert sample("gantry_kpi_target", kpi="lead_time") == 7200
    assert sample("gantry_kpi_target_met", kpi="mttr", scope="overall") == 1
    # No data is no sample (never NaN): prod/api had no rollback.
    assert not [s for s in families["gantry_mttr_seconds"].samples if s.labels.get("service") == "api"]
    assert "NaN" not in out


def test_html_is_self_contained_with_a_weekly_chart_per_metric(scenario_project: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "kpis.html"
    code, out, _ = gantry(scenario_project, "report", "kpis", "--format", "html", "--since", since_scenario(),
                          "--output", str(target))
    assert (code, out) == (0, "")
    page = target.read_text(encoding="utf-8")
    assert page.count("<svg") == 10
    assert "<script" not in page and not re.search(r"(src|href)=\"?(https?:)?//", page)
    assert "2023-W46" in page and "2023-W47" in page
    assert "Lead time runs from commit time to promotion." in page
    assert not list(target.parent.glob(".kpis.html.*")), "no temporary file left behind"


def test_markdown_and_text_carry_value_target_and_status(scenario_project: Path) -> None:
    code, md, _ = gantry(scenario_project, "report", "kpis", "--format", "markdown", "--since", since_scenario())
    assert code == 0
    assert "| Change failure rate | 42.86% | < 5% | **missed** | 3 of 7 rollouts |" in md
    assert "| Mean time to recovery | 70 s | < 5 minutes for rollback | met | mean of 1 recovery; 1 unrecovered |" in md
    # Every table once (a stack with one service would not repeat it: see the hostile test).
    assert [ln for ln in md.splitlines() if ln.startswith("## ")] == [
        "## overall (8 rollouts)", "## stack prod (6 rollouts)", "## service prod/api (1 rollout)",
        "## service prod/web (5 rollouts)", "## stack staging (2 rollouts)", "## service staging/api (1 rollout)",
        "## service staging/web (1 rollout)", "## Definitions"]
    code, text, _ = gantry(scenario_project, "report", "kpis", "--since", since_scenario())
    assert code == 0
    assert re.search(r"Zero-downtime achievement\s.*99\.952%\s.*> 99\.9%\s.*met", text)


def test_user_supplied_names_are_escaped_in_every_format(hostile_project: Path) -> None:
    code, text, _ = gantry(hostile_project, "report", "kpis", "--since", since_scenario())
    assert code == 0
    assert "[bold red]prod[/bold red]|<script>" in text, "rich markup in a stack name is printed, not obeyed"
    code, md, _ = gantry(hostile_project, "report", "kpis", "--format", "markdown", "--since", since_scenario())
    # overall, the hostile stack and its two services, two one-service stacks (not repeated), definitions
    assert md.count("## ") == 7
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert r"\[bold red\]prod\[/bold red\]\|" in md, "brackets and pipes cannot break the table"
    assert r"w\*e\_b\`\[x\](y)\#\|&amp;amp;" in md
    code, page, _ = gantry(hostile_project, "report", "kpis", "--format", "html", "--since", since_scenario())
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    code, prom, _ = gantry(hostile_project, "report", "kpis", "--format", "prometheus", "--since", since_scenario())
    stacks = {s.labels.get("stack") for f in text_string_to_metric_families(prom) for s in f.samples}  # type: ignore[no-untyped-call]  # the library ships no type information
    assert HOSTILE_STACK in stacks, "label values survive the exposition's escaping intact"
    # Terminal control characters never reach the output raw, in any format.
    for fmt in ("text", "markdown", "html", "prometheus", "json"):
        code, out, _ = gantry(hostile_project, "report", "kpis", "--format", fmt, "--since", since_scenario())
        assert code == 0 and "\x1b" not in out and "\x07" not in out, fmt
        shown = {"json": "evil\\u001b[2J", "markdown": r"evil\\x1b\[2J", "prometheus": r'stack="evil\\x1b[2J'
                 }.get(fmt, "evil\\x1b[2J")
        assert shown in out, fmt  # written out, not dropped


def test_no_journal_is_an_empty_report_and_creates_nothing(tmp_path: Path) -> None:
    code, out, err = gantry(tmp_path, "report", "kpis", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["scopes"][0]["rollouts"] == 0
    assert not journal_path(tmp_path).exists() and not (tmp_path / ".gantry").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "yesterday"], "error: --since must be a look-back such as 30d"),
    (["--since", "[red]3y"], "error: --since must be a look-back such as 30d"),
    (["--format", "pdf"], "'pdf' is not one of"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    code, out, err = gantry(tmp_path, "report", "kpis", *args)
    assert code == 2
    assert message in " ".join(err.split())
    assert "Traceback" not in err + out
    if "[red]" in args[-1]:
        assert "'[red]3y'" in err, "the bad value is echoed literally"


# --------------------------------------------------------------------------- rollout start provenance


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("GITHUB_SHA", "CI_COMMIT_SHA", "CI_COMMIT_TIMESTAMP"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "stacks").mkdir()
    (tmp_path / "Pulumi.yaml").write_text("name: drill\nruntime: python\nstackConfigDir: stacks\n")
    gate = f"{sys.executable} -c \\\"print(0.0)\\\""
    (tmp_path / "stacks" / "Pulumi.drill.yaml").write_text(f"""config:
  gantry:cloud: local
  gantry:environment: drill
  gantry:tier: dev
  gantry:services:
    web: {{namespace: web, image: "app:1.0", strategy: canary}}
  gantry:rollout:
    steps: [50, 100]
    interval: 0s
    threshold: 1
    judge: threshold
    target: file
    metrics: {{provider: command}}
    gates: [{{name: errors, expr: "{gate}", max: 0.05}}]
""")
    return tmp_path


SHA = "0123456789abcdef0123456789abcdef01234567"


def start(project: Path, *extra: str) -> tuple[int, str, str]:
    return gantry(project, "rollout", "start", "--stack", "drill", "--service", "web", "--image", "app:2.0", *extra)


def test_start_records_the_commit_from_flags_and_lead_time_follows(project: Path) -> None:
    code, _, err = start(project, "--commit", SHA, "--committed-at", "2026-01-01T00:00:00Z", "--json")
    assert code == 0, err
    journal = SqliteJournal(journal_path(project))
    record = journal.history()[0]
    assert (record.provenance.commit, record.provenance.committed_at) == (SHA, 1_767_225_600.0)
    report = kpis.compute(kpis.load(journal), since=0, until=record.updated_at + 1)
    promoted_at = kpis.load(journal)[0].promoted_at
    assert promoted_at is not None
    assert report.overall.metric("lead_time").value == promoted_at - 1_767_225_600.0
    journal.close()
    code, out, _ = gantry(project, "rollout", "history", "--json")
    assert json.loads(out.splitlines()[0])["commit"] == SHA


def test_start_takes_the_commit_from_the_ci_environment(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_COMMIT_SHA", SHA)
    monkeypatch.setenv("CI_COMMIT_TIMESTAMP", "2026-01-01T01:00:00+01:00")
    code, _, err = start(project, "--json")
    assert code == 0, err
    journal = SqliteJournal(journal_path(project))
    prov = journal.history()[0].provenance
    journal.close()
    assert (prov.commit, prov.committed_at, prov.source) == (SHA, 1_767_225_600.0, "CI_COMMIT_SHA")


@pytest.mark.parametrize(("extra", "message"), [
    (["--commit", "[red]zz"], "error: --commit must be a hex commit SHA of 7 to 64 digits, but '[red]zz' was given"),
    (["--committed-at", "2026-01-01T00:00:00Z"], "error: --commit must be given with --committed-at"),
    (["--commit", SHA, "--committed-at", "noon"], "error: --committed-at must be an ISO 8601 time"),
])
def test_bad_provenance_stops_before_anything_is_touched(project: Path, extra: list[str], message: str) -> None:
    code, out, err = start(project, *extra)
    assert code == 2
    assert message in " ".join(err.split())
    assert "Traceback" not in out + err
    assert not journal_path(project).exists(), "nothing was journaled"


def test_a_journal_from_a_newer_gantry_is_one_line_exit_2(tmp_path: Path) -> None:
    import sqlite3

    SqliteJournal(journal_path(tmp_path)).close()
    conn = sqlite3.connect(journal_path(tmp_path))
    conn.execute("PRAGMA user_version=9")
    conn.close()
    for args in (["report", "kpis"], ["rollout", "history"]):
        code, out, err = gantry(tmp_path, *args)
        assert code == 2, args
        assert err.strip() == (f"error: journal schema version must be at most {SCHEMA_VERSION}, but 9 was found; "
                               "upgrade gantry to read it")
        assert "Traceback" not in out + err
