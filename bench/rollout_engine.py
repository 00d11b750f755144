"""Real-engine rollout figures on the engine-driven sandbox (local-engine): time per `pulumi up`, time to roll back.

Each run is ``gantry rollout start --stack local-engine --service web --image demo:v3`` (v3 answers 20% of
requests with 500s) under 200 rps, so every run takes at least one real step ``up`` and ends in a real
rollback ``up``. Measured per run, from the journal's timestamps (``--json`` events) and HAProxy itself:

- step ``up``: intent -> applied of each ``set_weight`` (config write + ``pulumi up``);
- rollback: the rollback decision -> HAProxy back at stable 100 / canary 0 (polled every 50 ms), and
  decision -> the revert journaled as applied (the ``up`` returned).

Needs ``pulumi``, ``pulumi-language-python`` and ``pulumi-resource-pulumi-python`` on PATH, and HAProxy and
Prometheus. Prints medians and writes ``bench/results/rollout_engine.json`` with the load average.
Usage: ``PATH=<pulumi bin>:$PATH .venv/bin/python bench/rollout_engine.py [--runs 5]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "sandbox"))  # the engine rig the `engine` tests use

from engine_rig import STACK, EngineProject, events  # noqa: E402

from infra.sandbox.loadgen import LoadGenerator  # noqa: E402

GOAL_ROLLBACK_S = 30.0
SEED_LIMIT_ROLLBACK_S = 120.0


class StablePoller(threading.Thread):
    """Records every (time, weights) change of the web backend, so 'stable at 100%' is HAProxy's own answer."""

    def __init__(self, rig: EngineProject) -> None:
        super().__init__(daemon=True)
        self.rig = rig
        self.changes: list[tuple[float, dict[str, int]]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        last: dict[str, int] | None = None
        while not self._halt.wait(0.05):
            try:
                weights = self.rig.haproxy_weights()
            except OSError:
                continue
            if weights != last:
                self.changes.append((time.time(), weights))
                last = weights

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def stable_after(self, t: float) -> float | None:
        for at, weights in self.changes:
            if at >= t and weights.get("stable") == 100 and weights.get("canary") == 0:
                return at
        return None


def one_run(rig: EngineProject, index: int) -> dict[str, object]:
    poller = StablePoller(rig)
    poller.start()
    args = ["rollout", "start", "--stack", STACK, "--service", "web", "--image", "demo:v3", "--json"]
    if index:
        args.append("--force")  # v3 is quarantined after the first rollback
    with LoadGenerator(rig.sandbox().frontend_url("web"), rate_rps=200, max_seconds=600):
        started = time.time()
        done = rig.gantry(*args)
    poller.stop()
    evs = events(done.stdout)
    intents: dict[str, float] = {}
    steps: list[float] = []
    prepare = revert_up = None
    decision_at = applied_revert_at = None
    for e in evs:
        data = e.get("data") if isinstance(e.get("data"), dict) else {}
        assert isinstance(data, dict)
        at = float(str(e.get("at", 0)))
        kind, action = e.get("event"), data.get("action")
        if kind == "intent":
            intents[str(action)] = at
        elif kind == "applied" and str(action) in intents:
            took = at - intents.pop(str(action))
            if action == "set_weight":
                steps.append(took)
            elif action == "prepare":
                prepare = took
            elif action == "revert":
                revert_up, applied_revert_at = took, at
        elif kind == "decision" and data.get("decision") == "rollback":
            decision_at = at
    outcome = next((e for e in evs if e.get("event") == "outcome"), {})
    stable_at = poller.stable_after(decision_at) if decision_at is not None else None
    return {
        "run": index, "exit_code": done.returncode, "phase": outcome.get("phase"), "verified": outcome.get("verified"),
        "total_s": round(time.time() - started, 2), "prepare_up_s": prepare, "step_up_s": steps,
        "revert_up_s": revert_up,
        "decision_to_stable_100_s": None if stable_at is None or decision_at is None else stable_at - decision_at,
        "decision_to_revert_applied_s": (None if applied_revert_at is None or decision_at is None
                                         else applied_revert_at - decision_at),
    }


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    if shutil.which("pulumi") is None:
        sys.exit("pulumi must be on PATH (with pulumi-language-python and pulumi-resource-pulumi-python)")
    version = subprocess.run(["pulumi", "version"], capture_output=True, text=True).stdout.strip()
    load_before = os.getloadavg()
    runs: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rig = EngineProject.create(Path(tmp))
        try:
            for i in range(args.runs):
                r = one_run(rig, i)
                runs.append(r)
                print(json.dumps(r), flush=True)
        finally:
            rig.close()
    load_after = os.getloadavg()

    def floats(key: str) -> list[float]:
        return [float(str(r[key])) for r in runs if r.get(key) is not None]

    steps = [float(s) for r in runs for s in r["step_up_s"]]  # type: ignore[attr-defined]
    figures = {
        "step_up_s_median": median(steps), "step_up_samples": len(steps),
        "prepare_up_s_median": median(floats("prepare_up_s")),
        "revert_up_s_median": median(floats("revert_up_s")),
        "decision_to_stable_100_s_median": median(floats("decision_to_stable_100_s")),
        "decision_to_revert_applied_s_median": median(floats("decision_to_revert_applied_s")),
        "rolled_back_and_verified": sum(r["phase"] == "rolled_back" and r["verified"] is True for r in runs),
        "runs": len(runs),
    }
    rollback = figures["decision_to_stable_100_s_median"]
    figures["goal_rollback_30s_met"] = rollback is not None and float(str(rollback)) <= GOAL_ROLLBACK_S
    figures["seed_limit_rollback_120s_met"] = rollback is not None and float(str(rollback)) <= SEED_LIMIT_ROLLBACK_S
    doc = {"benchmark": "rollout_engine", "date": datetime.now(UTC).isoformat(timespec="seconds"),
           "pulumi": version, "load_average": {"before": load_before, "after": load_after},
           "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
           "figures": figures, "runs": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rollout_engine.json").write_text(json.dumps(doc, indent=1))
    print(json.dumps(figures, indent=1))
    print(f"load average {load_before[0]:.2f} -> {load_after[0]:.2f}; wrote {args.out / 'rollout_engine.json'}")


if __name__ == "__main__":
    main()
