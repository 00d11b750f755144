"""Benchmark: `gantry check --stack prod` cold, start to finish (fresh process each run, imports included).

Run from the repository root: ``.venv/bin/python bench/check_speed.py [--stack prod] [--runs 5]``.
Prints the median of the runs and the time per resource, and writes bench/results/check_speed.json.
The issue's target is under 3 s for the prod stack on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "check_speed.json"
TARGET_S = 3.0


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(stack: str) -> tuple[float, float, dict[str, object]]:
    gantry = Path(sys.executable).with_name("gantry")
    argv = [str(gantry), "check", "--stack", stack, "--format", "json"] if gantry.exists() else \
        [sys.executable, "-m", "infra.cli", "check", "--stack", stack, "--format", "json"]
    cpu0, started = _child_cpu(), time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed, cpu = time.perf_counter() - started, _child_cpu() - cpu0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"gantry check failed with exit {proc.returncode}: {proc.stderr.strip()}")
    return elapsed, cpu, json.loads(proc.stdout)


def evaluate_only(stack: str, repeats: int = 20) -> tuple[float, int]:
    """In-process time of the policy evaluation alone (render excluded), median over ``repeats``."""
    sys.path.insert(0, str(ROOT))
    from infra.render import render_project
    from policies.config import build_settings, load_policy_config
    from policies.engine import evaluate, resources_from_render
    from policies.model import TierName

    result = render_project(ROOT, stack)
    views = [v for v in resources_from_render(result) if v.type != "pulumi:pulumi:Stack"]
    config = load_policy_config()
    settings = build_settings(config, TierName.PROD)
    levels = config.levels(TierName.PROD)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        evaluate(views, settings, levels)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), len(views)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    times: list[float] = []
    cpus: list[float] = []
    doc: dict[str, object] = {}
    load = os.getloadavg()[0]
    for i in range(args.runs):
        elapsed, cpu, doc = one_run(args.stack)
        times.append(elapsed)
        cpus.append(cpu)
        print(f"run {i + 1}: {elapsed:.3f} s wall, {cpu:.3f} s cpu")
    eval_s, eval_n = evaluate_only(args.stack)
    summary = doc["summary"]
    assert isinstance(summary, dict)
    resources = int(summary["resources"])
    median = statistics.median(times)
    result = {
        "command": f"gantry check --stack {args.stack} --format json",
        "runs": args.runs,
        "seconds": [round(t, 3) for t in times],
        "medianSeconds": round(median, 3),
        "minSeconds": round(min(times), 3),
        "maxSeconds": round(max(times), 3),
        "medianCpuSeconds": round(statistics.median(cpus), 3),
        "loadAverageAtStart": round(load, 2),
        "evaluateOnlySeconds": round(eval_s, 4),
        "evaluateOnlyMsPerResource": round(1000 * eval_s / eval_n, 3) if eval_n else None,
        "resources": resources,
        "msPerResource": round(1000 * median / resources, 2) if resources else None,
        "targetSeconds": TARGET_S,
        "withinTarget": median < TARGET_S,
        "blocking": summary.get("blocking"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    per = f"{result['msPerResource']} ms/resource" if resources else "no resources"
    print(f"median cpu {statistics.median(cpus):.3f} s; load average at start {load:.2f}; policy evaluation "
          f"alone {1000 * eval_s:.1f} ms ({result['evaluateOnlyMsPerResource']} ms/resource)")
    print(f"median {median:.3f} s over {args.runs} cold runs, {resources} resources, {per} "
          f"(target < {TARGET_S} s: {'met' if median < TARGET_S else 'MISSED'}); wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
