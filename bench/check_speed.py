"""Benchmark: `gantry check --stack prod` cold, start to finish (fresh process each run, imports included).

Run from the repository root: ``.venv/bin/python bench/check_speed.py [--stack prod] [--runs 5]``.
Measures the check without the Checkov bridge (``--checkov off``) and with it (``--checkov on``), runs
interleaved so both see the same load. Prints medians, the ratio and the time per resource, and writes
bench/results/check_speed.json. Targets: under 3 s without the bridge on a 2-core machine; with the bridge
under 2x the time without.
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
BRIDGE_RATIO_TARGET = 2.0


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(stack: str, bridge: str = "off") -> tuple[float, float, dict[str, object]]:
    gantry = Path(sys.executable).with_name("gantry")
    tail = ["check", "--stack", stack, "--format", "json", "--checkov", bridge]
    argv = [str(gantry), *tail] if gantry.exists() else [sys.executable, "-m", "infra.cli", *tail]
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
    bridge_times: list[float] = []
    bridge_cpus: list[float] = []
    loads: list[float] = []
    doc: dict[str, object] = {}
    bridge_doc: dict[str, object] = {}
    load = os.getloadavg()[0]
    for i in range(args.runs):
        loads.append(os.getloadavg()[0])
        elapsed, cpu, doc = one_run(args.stack, "off")
        times.append(elapsed)
        cpus.append(cpu)
        b_elapsed, b_cpu, bridge_doc = one_run(args.stack, "on")
        bridge_times.append(b_elapsed)
        bridge_cpus.append(b_cpu)
        print(f"run {i + 1}: without bridge {elapsed:.3f} s wall, {cpu:.3f} s cpu; with bridge {b_elapsed:.3f} s "
              f"wall, {b_cpu:.3f} s cpu (load {loads[-1]:.2f})")
    eval_s, eval_n = evaluate_only(args.stack)
    summary = doc["summary"]
    assert isinstance(summary, dict)
    resources = int(summary["resources"])
    median = statistics.median(times)
    bridge_median = statistics.median(bridge_times)
    ratio = bridge_median / median if median else float("inf")
    stacks = bridge_doc.get("stacks")
    bridge_info = stacks[0].get("checkov") if isinstance(stacks, list) and stacks else None
    result = {
        "command": f"gantry check --stack {args.stack} --format json --checkov off|on",
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
        "withBridge": {
            "seconds": [round(t, 3) for t in bridge_times],
            "medianSeconds": round(bridge_median, 3),
            "medianCpuSeconds": round(statistics.median(bridge_cpus), 3),
            "ratioToWithout": round(ratio, 2),
            "cpuRatioToWithout": round(statistics.median(bridge_cpus) / statistics.median(cpus), 2),
            "ratioTarget": BRIDGE_RATIO_TARGET,
            "withinRatioTarget": ratio < BRIDGE_RATIO_TARGET,
            "checkov": bridge_info,
        },
        "loadAverages": [round(x, 2) for x in loads],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    per = f"{result['msPerResource']} ms/resource" if resources else "no resources"
    print(f"median cpu {statistics.median(cpus):.3f} s; load average at start {load:.2f}; policy evaluation "
          f"alone {1000 * eval_s:.1f} ms ({result['evaluateOnlyMsPerResource']} ms/resource)")
    print(f"median {median:.3f} s over {args.runs} cold runs, {resources} resources, {per} "
          f"(target < {TARGET_S} s: {'met' if median < TARGET_S else 'MISSED'})")
    print(f"with the Checkov bridge: median {bridge_median:.3f} s, {ratio:.2f}x without (target < "
          f"{BRIDGE_RATIO_TARGET}x: {'met' if ratio < BRIDGE_RATIO_TARGET else 'MISSED'}); wrote "
          f"{RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
