"""Run time of the README's by-hand walkthrough: the fenced block, line by line as written, from a fresh project.

Run: ``.venv/bin/python bench/walkthrough.py [--runs 3]``. Each run copies the project files (Pulumi.yaml,
stacks/, a link to the set-up's .venv) into a temp directory and runs every command of the block with the venv
NOT on PATH, exactly as ``tests/sandbox/test_walkthrough.py`` does (it reads the commands through that test's
parser, so bench, test and README share one source). Writes ``bench/results/walkthrough.json``: per run, each
command's seconds and exit code and the total, with the machine's load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "sandbox"))

from test_walkthrough import _env_without_venv_on_path, fresh_project, readme_lines  # noqa: E402

from infra.sandbox import lifecycle  # noqa: E402


def one_run() -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="gantry-walkthrough-") as tmp:
        project = fresh_project(Path(tmp) / "clone")
        env = _env_without_venv_on_path()
        load_before = os.getloadavg()
        commands: list[dict[str, object]] = []
        started = time.monotonic()
        try:
            for line in readme_lines():
                t0 = time.monotonic()
                res = subprocess.run(shlex.split(line.command), cwd=project, env=env, capture_output=True,
                                     text=True, timeout=300)
                commands.append({"command": line.command, "seconds": round(time.monotonic() - t0, 2),
                                 "exit_code": res.returncode, "expected_exit_code": line.exit_code})
        finally:
            lifecycle.down(project)
        return {"seconds": round(time.monotonic() - started, 2), "ok": all(
                    c["exit_code"] == c["expected_exit_code"] for c in commands),
                "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "commands": commands}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "walkthrough.json")
    args = parser.parse_args()
    runs = [one_run() for _ in range(args.runs)]
    totals = [float(str(r["seconds"])) for r in runs]
    doc = {"benchmark": "walkthrough", "machine": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs)",
           "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "runs": runs,
           "median_seconds": statistics.median(totals), "max_seconds": max(totals),
           "all_ok": all(r["ok"] for r in runs)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"walkthrough: median {doc['median_seconds']:.1f}s over {len(runs)} run(s), all as the README says: "
          f"{doc['all_ok']} (load {os.getloadavg()[0]:.2f}) -> {args.out}")
    return 0 if doc["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
