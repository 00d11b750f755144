"""Runs the stack-file fuzzer (tests/infra/test_stackfile_fuzz.py, 1000 cases through the real CLI) and records
its figures: cases, tracebacks, slowest case, peak-RSS growth and the machine's load average.

Usage: python bench/stackfile_fuzz.py  -> prints the figures, writes bench/results/stackfile_fuzz.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "bench" / "results" / "stackfile_fuzz.json"


def main() -> int:
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GANTRY_FUZZ_REPORT": str(RESULT)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/infra/test_stackfile_fuzz.py"], cwd=ROOT, env=env, check=False)
    if not RESULT.is_file():
        print("the fuzzer wrote no figures", file=sys.stderr)
        return 1
    figures = json.loads(RESULT.read_text())
    print(f"cases {figures['cases']}, tracebacks {figures['tracebacks']}, slowest case "
          f"{figures['slowest_case_seconds']} s ({figures['slowest_case']}), mean {figures['mean_case_seconds']} s, "
          f"peak RSS growth {figures['peak_rss_growth_mib']} MiB, load average {figures['loadavg']}")
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
