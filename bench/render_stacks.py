"""Benchmark: resource count and cold render time per shipped stack; run by hand, writes bench/results/.

Cold means a fresh interpreter for every run (`python -m infra.cli render --stack S --format json`),
so import cost is included, as a user running `gantry render` would see it.

    .venv/bin/python bench/render_stacks.py [--runs 5] [--stacks dev,prod]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STACKS = ("dev", "staging", "prod", "prod-gcp", "prod-azure")
CLUSTER_COMPONENTS = ("gantry:aws:", "gantry:gcp:", "gantry:azure:")
CLUSTER_TYPES = {
    "aws:eks/cluster:Cluster", "gcp:container/cluster:Cluster", "azure-native:containerservice:ManagedCluster",
}


def render_once(python: Path, stack: str) -> tuple[float, dict[str, object]]:
    argv = [str(python), "-m", "infra.cli", "render", "--stack", stack, "--format", "json"]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False, timeout=600)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no stderr)"]
        raise SystemExit(f"render of {stack} failed with exit code {proc.returncode}: {tail[0]}")
    graph = json.loads(proc.stdout)
    assert isinstance(graph, dict)
    return elapsed, graph


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stacks", default=",".join(STACKS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "render_stacks.json")
    args = parser.parse_args()
    python = ROOT / ".venv" / "bin" / "python"
    if not python.exists():
        python = Path(sys.executable)

    rows: list[dict[str, object]] = []
    print(f"{'stack':<12} {'resources':>9} {'cluster':>8} {'median s':>9} {'min s':>7} {'max s':>7}")
    for stack in [s for s in args.stacks.split(",") if s]:
        times: list[float] = []
        graph: dict[str, object] = {}
        for _ in range(args.runs):
            elapsed, graph = render_once(python, stack)
            times.append(elapsed)
        summary = graph.get("summary", {})
        count = int(summary.get("resources", 0)) if isinstance(summary, dict) else 0
        resources = graph.get("resources", [])
        types = [r.get("type") for r in resources] if isinstance(resources, list) else []
        # A URN's third part is the type chain (parents first); cluster resources sit under a gantry cloud component.
        cluster_parts = sum(
            1 for r in resources
            if isinstance(r, dict) and any(c in str(r.get("urn", "")).split("::")[2] for c in CLUSTER_COMPONENTS)
        ) if isinstance(resources, list) else 0
        row = {
            "stack": stack,
            "resources": count,
            "clusterResources": cluster_parts,
            "hasCluster": any(t in CLUSTER_TYPES for t in types),
            "runs": args.runs,
            "medianSeconds": round(statistics.median(times), 3),
            "minSeconds": round(min(times), 3),
            "maxSeconds": round(max(times), 3),
            "samplesSeconds": [round(t, 3) for t in times],
        }
        rows.append(row)
        print(f"{stack:<12} {count:>9} {cluster_parts:>8} {row['medianSeconds']:>9} "
              f"{row['minSeconds']:>7} {row['maxSeconds']:>7}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": "render_stacks",
        "command": ".venv/bin/python -m infra.cli render --stack S --format json (fresh process per run)",
        "measuredAt": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "stacks": rows,
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
