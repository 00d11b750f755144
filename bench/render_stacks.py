"""Benchmark: cold render time of the shipped stacks and of prod with 1x, 4x, 16x and 64x its services.

Cold means a fresh process for every run (`python -m infra.cli render --stack S --format json`), so
imports are included, as a user running `gantry render` would see them. The scaled stacks copy prod's
stack file into a temporary project and repeat each service N times (own namespace and hostname).
The marginal cost is the least-squares slope of median seconds over resource count; linearity is the
worst relative deviation of a median from that line. Each row records the load average when it ran.

    .venv/bin/python bench/render_stacks.py [--runs 3] [--scales 1,4,16,64] [--stacks dev,prod]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STACKS = ("dev", "staging", "prod", "prod-gcp", "prod-azure")
GOAL_MS_PER_RESOURCE = 8.0
GOAL_PROD_SECONDS = 3.0


CPU: list[float] = []


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def render_once(python: Path, project: Path, stack: str) -> tuple[float, dict[str, object]]:
    argv = [str(python), "-m", "infra.cli", "render", "--project", str(project), "--stack", stack, "--format", "json"]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False, timeout=1800)
    elapsed = time.perf_counter() - start
    CPU.append(_child_cpu())
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no stderr)"]
        raise SystemExit(f"render of {stack} in {project} failed with exit code {proc.returncode}: {tail[0]}")
    graph = json.loads(proc.stdout)
    assert isinstance(graph, dict)
    return elapsed, graph


def measure(python: Path, project: Path, stack: str, runs: int) -> dict[str, object]:
    load_before = os.getloadavg()[0]
    times: list[float] = []
    cpus: list[float] = []
    graph: dict[str, object] = {}
    for _ in range(runs):
        before = _child_cpu()
        elapsed, graph = render_once(python, project, stack)
        times.append(elapsed)
        cpus.append(CPU[-1] - before)
    summary = graph.get("summary", {})
    count = int(summary.get("resources", 0)) if isinstance(summary, dict) else 0
    return {"stack": stack, "resources": count, "runs": runs, "medianSeconds": round(statistics.median(times), 3),
            "minSeconds": round(min(times), 3), "maxSeconds": round(max(times), 3),
            "samplesSeconds": [round(t, 3) for t in times],
            "medianCpuSeconds": round(statistics.median(cpus), 3),
            "loadAverage": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


def scaled_project(tmp: Path, factor: int) -> Path:
    """A project whose prod stack has every service of prod repeated ``factor`` times."""
    project = tmp / f"x{factor}"
    (project / "stacks").mkdir(parents=True)
    (project / "infra").mkdir()
    (project / "infra" / "__main__.py").write_text((ROOT / "infra" / "__main__.py").read_text())
    manifest = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    manifest["runtime"]["options"]["virtualenv"] = str(ROOT / ".venv")
    (project / "Pulumi.yaml").write_text(yaml.safe_dump(manifest))
    doc = yaml.safe_load((ROOT / "stacks" / "Pulumi.prod.yaml").read_text())
    services = doc["config"]["gantry:services"]
    scaled: dict[str, object] = {}
    for i in range(factor):
        for name, svc in services.items():
            copy_ = copy.deepcopy(svc)
            suffix = "" if i == 0 else f"{i}"
            copy_["namespace"] = f"{svc['namespace']}{suffix}"
            copy_["hostnames"] = [h.replace(".", f"{suffix}.", 1) for h in svc.get("hostnames", [])]
            scaled[f"{name}{suffix}"] = copy_
    doc["config"]["gantry:services"] = scaled
    policy = doc["config"].get("gantry:policy")
    if isinstance(policy, dict) and "publicLoadBalancers" in policy:
        policy.pop("publicLoadBalancers")
    (project / "stacks" / "Pulumi.prod.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return project


def slope(points: list[tuple[int, float]]) -> tuple[float, float]:
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return b, my - b * mx


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stacks", default=",".join(STACKS), help="shipped stacks to time ('' for none)")
    parser.add_argument("--scales", default="1,4,16,64", help="service multipliers for prod ('' for none)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "render_stacks.json")
    args = parser.parse_args()
    python = ROOT / ".venv" / "bin" / "python"
    if not python.exists():
        python = Path(sys.executable)

    rows: list[dict[str, object]] = []
    print(f"{'stack':<12} {'resources':>9} {'median s':>9} {'min s':>7} {'max s':>7} {'load':>11}")
    for stack in [s for s in args.stacks.split(",") if s]:
        row = measure(python, ROOT, stack, args.runs)
        rows.append(row)
        print(f"{stack:<12} {row['resources']:>9} {row['medianSeconds']:>9} {row['minSeconds']:>7} "
              f"{row['maxSeconds']:>7} {row['loadAverage']!s:>11}")

    scale_rows: list[dict[str, object]] = []
    factors = [int(f) for f in args.scales.split(",") if f]
    if factors:
        print(f"\n{'services':<9} {'resources':>9} {'median s':>9} {'cpu s':>7} {'ms/res':>7} {'load':>11}")
    with tempfile.TemporaryDirectory(prefix="gantry-bench-") as tmp:
        for factor in factors:
            row = measure(python, scaled_project(Path(tmp), factor), "prod", args.runs)
            row["services"] = f"{factor}x"
            scale_rows.append(row)
            per = 1000 * float(row["medianSeconds"]) / max(1, int(row["resources"]))  # type: ignore[arg-type]
            print(f"{factor:>3}x      {row['resources']:>9} {row['medianSeconds']:>9} {row['medianCpuSeconds']:>7} "
                  f"{per:>7.2f} {row['loadAverage']!s:>11}")
    marginal: dict[str, object] = {}
    if len(scale_rows) >= 2:
        for key, label in (("medianSeconds", "wall"), ("medianCpuSeconds", "cpu")):
            points = [(int(r["resources"]), float(r[key])) for r in scale_rows]  # type: ignore[arg-type]
            b, a = slope(points)
            deviation = max(abs(y - (a + b * x)) / y for x, y in points)
            steps = [round(1000 * (y2 - y1) / (x2 - x1), 2)
                     for (x1, y1), (x2, y2) in itertools.pairwise(points) if x2 > x1]
            marginal[label] = {"msPerMarginalResource": round(1000 * b, 2), "interceptSeconds": round(a, 3),
                               "stepMsPerResource": steps, "maxRelativeDeviationFromLine": round(deviation, 3),
                               "withinGoal": 1000 * b <= GOAL_MS_PER_RESOURCE}
            print(f"{label}: marginal {1000 * b:.2f} ms/resource (goal <= {GOAL_MS_PER_RESOURCE}); steps {steps}; "
                  f"intercept {a:.2f} s; worst deviation from linear {100 * deviation:.1f}%")
        marginal["goalMsPerResource"] = GOAL_MS_PER_RESOURCE
    prod = next((r for r in [*rows, *scale_rows] if r["stack"] == "prod"), None)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": "render_stacks",
        "command": ".venv/bin/python -m infra.cli render --project P --stack S --format json (fresh process per run)",
        "measuredAt": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "stacks": rows,
        "scale": scale_rows,
        "marginal": marginal,
        "prodColdSeconds": prod["medianSeconds"] if prod else None,
        "prodGoalSeconds": GOAL_PROD_SECONDS,
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
