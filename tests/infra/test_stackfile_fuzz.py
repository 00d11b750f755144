"""A hypothesis fuzzer over stack files through the real CLI (``stacks``, ``rollout plan``, ``render``, ``check``).

1000 cases mix valid configs with hostile ones: console markup and emoji codes, huge and wide numbers, deep
nesting, alias bombs, duplicate keys, dates, tags, non-UTF-8 bytes, huge values and raw garbage. Every case
must exit 0 or 2, print no traceback, keep each error line short (values are cut, never echoed whole), and stay
within a time and memory bound. The bounds are safety limits for a loaded CI machine, not a benchmark.

Set ``GANTRY_FUZZ_REPORT=<path>`` to write the figures (cases, tracebacks, slowest case, load average) as JSON;
``bench/stackfile_fuzz.py`` does that for ``bench/results/stackfile_fuzz.json``.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from infra.cli import app

REPO = Path(__file__).resolve().parents[2]
CASES = 1000
CASE_SECONDS = 60.0
"""Per-case safety bound. A valid render takes ~0.1 s here; an alias bomb without the loader's budget ran
past 120 s, so anything near this bound is a real defect, not a slow machine."""
RSS_GROWTH = 768 * 1024 * 1024
"""Peak-RSS growth allowed over the whole run; an expanded alias bomb needs several GiB."""
LINE_LIMIT = 1000
"""Longest error line accepted: values in errors are cut to a line, never echoed whole."""

runner = CliRunner()

MARKUP = ["[/red]", "[red]", "[bold]x[/bold]", "^[a-z][a-z0-9-]{0,30}$", ":cloud:", ":rocket: go", "a\\",
          "[link=http://x]y[/link]", "[/]", "[@click]", "\\[x]", "[#ff0000]", "{}", "%s", "\x1b[31mred"]
KEYS = ["gantry:environment", "gantry:tier", "gantry:cloud", "gantry:tags", "gantry:services", "gantry:rollout",
        "gantry:sandbox", "gantry:region", "gantry:unknown", "config"]


@dataclass
class Figures:
    cases: int = 0
    tracebacks: int = 0
    exits: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    slowest_seconds: float = 0.0
    slowest_case: str = ""
    total_seconds: float = 0.0


def quoted(text: str) -> str:
    # JSON strings are YAML double-quoted scalars: any text, escapes included, in one scalar.
    return json.dumps(text)


def base(environment: str = "local", tags: dict[str, str] | None = None, extra: str = "") -> str:
    lines = ["config:", "  gantry:cloud: local", f"  gantry:environment: {quoted(environment)}", "  gantry:tier: dev",
             "  gantry:services:", "    web: {namespace: web, image: \"demo:v1\", strategy: canary}"]
    if tags:
        lines.append("  gantry:tags:")
        lines += [f"    {quoted(k)}: {quoted(v)}" for k, v in tags.items()]
    return "\n".join(lines) + "\n" + extra


def with_value(key: str, fragment: str) -> str:
    """The base document with ``key`` set to a raw YAML ``fragment`` (replacing it, or added)."""
    if key == "config":
        return "config: " + fragment + "\n"
    lines = [line for line in base().splitlines() if not line.startswith(f"  {key}:")]
    return "\n".join([*lines, f"  {key}: {fragment}"]) + "\n"


text_values = st.one_of(st.sampled_from(MARKUP), st.text(max_size=40),
                        st.text(alphabet="[]/:\\{}abc-^$", max_size=30))

valid = st.builds(lambda env, tags: ("valid", base(env, tags)),
                  st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True),
                  st.dictionaries(st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True), text_values, max_size=4))
markup = st.builds(lambda key, value: ("markup", with_value(key, quoted(value))), st.sampled_from(KEYS), text_values)
huge_number = st.builds(lambda key, digits, sign, form: ("huge_number", with_value(
    key, sign + {"dec": "9" * digits, "hex": "0x" + "f" * digits, "bin": "0b" + "1" * digits,
                 "under": "1_" * digits + "1", "float": "9" * digits + ".5e9"}[form])),
    st.sampled_from(KEYS), st.integers(1, 6000), st.sampled_from(["", "-", "+"]),
    st.sampled_from(["dec", "hex", "bin", "under", "float"]))
nesting = st.builds(lambda key, depth, opener, closed: ("nesting", with_value(
    key, opener * depth + ("1" + {"[": "]", "{a: ": "}"}[opener] * depth if closed else ""))),
    st.sampled_from(KEYS), st.integers(1, 60_000), st.sampled_from(["[", "{a: "]), st.booleans())


def _bomb(levels: int, width: int, key: str) -> str:
    lines = ["config:", "  gantry:cloud: local", f"  gantry:b0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"  gantry:b{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    lines.append(f"  {key}: *a{levels - 1}")
    return "\n".join(lines) + "\n"


aliases = st.one_of(
    st.builds(lambda lv, w, key: ("alias_bomb", _bomb(lv, w, key)), st.integers(1, 12), st.integers(1, 12),
              st.sampled_from(KEYS[:-1])),
    st.builds(lambda key: ("alias_recursive", with_value(key, "&r [1, *r]")), st.sampled_from(KEYS[:-1])),
    st.just(("alias_undefined", with_value("gantry:tags", "*nowhere"))),
)
duplicate = st.builds(lambda key, value: ("duplicate_key", base() + f"  {key}: {quoted(value)}\n"),
                      st.sampled_from(["gantry:tier", "gantry:cloud", "gantry:environment", "gantry:services"]),
                      text_values)
dates = st.builds(lambda key, date: ("date", with_value(key, date)), st.sampled_from(KEYS),
                  st.sampled_from(["2024-01-01", "2001-12-14t21:59:43.10-05:00", "2024-02-30", "!!timestamp 2024-01-01",
                                   "{at: 2024-01-01}", "[2024-01-01, 1999-12-31]"]))
tags = st.builds(lambda key, tag: ("tag", with_value(key, tag)), st.sampled_from(KEYS),
                 st.sampled_from(["!!binary aGVsbG8=", "!!set {a, b}", "!!omap [a: 1]", "!!python/name:os.system",
                                  "!!python/object/apply:os.system [echo]", "!custom x", "!!str 1", "!!int '12'",
                                  "!!float 1", "!!bool yes"]))
big_value = st.builds(lambda key, size: ("big_value", with_value(key, quoted("v" * size))), st.sampled_from(KEYS),
                      st.sampled_from([10_000, 200_000, 900_000, 1_100_000, 2_100_000]))
garbage_text = st.builds(lambda key, text: ("garbage_text", with_value(key, text)), st.sampled_from(KEYS),
                         st.text(max_size=200))
whole_text = st.builds(lambda text: ("whole_text", text), st.text(max_size=400))


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, bytes]:
    kind, text = draw(st.one_of(valid, markup, huge_number, nesting, aliases, duplicate, dates, tags, big_value,
                                garbage_text, whole_text))
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:  # one case in ten also carries bytes that are not UTF-8
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
        kind += "+bytes"
    if draw(st.integers(0, 39)) == 0:
        kind, data = "binary", draw(st.binary(max_size=600))
    return kind, data


STACKS = ["stacks", "--format", "json"]
PLAN = ["rollout", "plan", "--stack", "f", "--service", "web", "--image", "ghcr.io/acme/web:1.0.0"]
RUNS_PROGRAM = [["render"], ["render", "--format", "json"], ["check"]]
"""These run the program in its own interpreter (a process per case), so they get a bounded share of cases."""
ALLOWED_EXITS = {"stacks": (0, 1), "rollout": (0, 2), "render": (0, 2), "check": (0, 2)}
"""``stacks`` reports an invalid stack in its table and exits 1; the others exit 2 on bad input."""


@st.composite
def commands(draw: st.DrawFn) -> list[str]:
    """Every case loads the stack file through the CLI; one in sixteen also runs the program (render, check)."""
    if draw(st.integers(0, 15)) == 0:
        return [*draw(st.sampled_from(RUNS_PROGRAM)), "--stack", "f"]
    return draw(st.sampled_from([STACKS, PLAN]))


def test_stack_file_fuzz(tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "Pulumi.yaml").write_text(f"name: fuzz\nruntime: python\nmain: {REPO / 'infra'}\n"
                                          "stackConfigDir: stacks\n")
    stack_file = tmp_path / "stacks" / "Pulumi.f.yaml"
    figures = Figures()
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    @settings(max_examples=CASES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(case=documents(), command=commands())
    def run(case: tuple[str, bytes], command: list[str]) -> None:
        kind, data = case
        stack_file.write_bytes(data)
        started = time.perf_counter()
        try:
            result = runner.invoke(app, [*command, "--project", str(tmp_path)])
        finally:
            gc.enable()  # render and check turn the collector off for their (normally one-shot) process
        seconds = time.perf_counter() - started
        figures.cases += 1
        figures.total_seconds += seconds
        figures.kinds[kind] = figures.kinds.get(kind, 0) + 1
        figures.exits[str(result.exit_code)] = figures.exits.get(str(result.exit_code), 0) + 1
        if seconds > figures.slowest_seconds:
            figures.slowest_seconds, figures.slowest_case = seconds, f"{kind} ({len(data)} bytes), {' '.join(command)}"
        output = result.stdout + result.stderr
        crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
        if crashed or "Traceback" in output:
            figures.tracebacks += 1
        assert not crashed, f"{kind}: {result.exception!r}"
        assert "Traceback" not in output
        assert result.exit_code in ALLOWED_EXITS[command[0]], f"{kind}: exit {result.exit_code}: {result.stderr[:300]}"
        if result.exit_code == 2:
            lines = result.stderr.strip().splitlines()
            assert lines and all(line.startswith("error: ") for line in lines), result.stderr[:300]
            assert max(len(line) for line in lines) <= LINE_LIMIT, f"{kind}: an error line echoes too much"
        assert seconds < CASE_SECONDS, f"{kind}: {seconds:.1f}s"
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_start
        assert grown < RSS_GROWTH, f"{kind}: peak RSS grew {grown / 2**20:.0f} MiB"

    run()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_start
    report = os.environ.get("GANTRY_FUZZ_REPORT")
    if report:
        Path(report).write_text(json.dumps({
            "cases": figures.cases, "tracebacks": figures.tracebacks,
            "slowest_case_seconds": round(figures.slowest_seconds, 3), "slowest_case": figures.slowest_case,
            "mean_case_seconds": round(figures.total_seconds / max(1, figures.cases), 4),
            "case_limit_seconds": CASE_SECONDS, "peak_rss_growth_mib": round(rss_growth / 2**20, 1),
            "exit_codes": figures.exits, "kinds": dict(sorted(figures.kinds.items())),
            "loadavg": list(os.getloadavg()),
        }, indent=2) + "\n")
    assert figures.cases >= CASES
    assert figures.tracebacks == 0
    # Every family of hostile input was exercised, not only the easy ones.
    families = {k.split("+")[0] for k in figures.kinds}
    assert {"valid", "markup", "huge_number", "nesting", "alias_bomb", "duplicate_key", "date", "tag",
            "big_value"} <= families, families
    assert any(k.endswith("+bytes") for k in figures.kinds)
