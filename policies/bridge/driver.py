"""Runs inside Checkov's own interpreter (``.venv-checkov``): scans a directory with Checkov's runner API.

Started by ``policies.bridge.runner`` before the program is rendered, so Checkov's imports overlap the
render. Protocol: it prints ``ready`` once imported, then reads one JSON request from stdin
(``{"jobs": [{"root": dir, "frameworks": [...]}, ...]}``) and writes one JSON document to stdout: per job,
failed and passed checks with their resource ids, file and lines; plus Checkov's version. With
``{"catalogue": true}`` it lists every check id and name instead. Only stdlib and Checkov are imported.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
from typing import Any


def _runners() -> dict[str, Any]:
    from checkov.arm.runner import Runner as ArmRunner
    from checkov.kubernetes.runner import Runner as K8sRunner
    from checkov.terraform_json.runner import (
        TerraformJsonRunner,
    )

    return {"terraform_json": TerraformJsonRunner, "arm": ArmRunner, "kubernetes": K8sRunner}


def _record(r: Any, framework: str) -> dict[str, Any]:
    lines = list(getattr(r, "file_line_range", None) or [0, 0])
    return {"check_id": r.check_id, "check_name": r.check_name, "resource": r.resource, "framework": framework,
            "file": os.path.basename(str(r.file_path or "")), "path": str(r.file_path or ""),
            "lines": lines, "guideline": getattr(r, "guideline", None) or ""}


def main() -> int:
    import gc
    import time

    started = time.process_time()
    # Checkov's import builds thousands of check objects; the cyclic collector would run hundreds of times
    # and find almost nothing. Reference counting still frees memory; this process is short-lived.
    gc.disable()
    logging.disable(logging.CRITICAL)  # Checkov logs parse noise at WARNING; our caller reports what matters
    os.environ.setdefault("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false")
    os.environ.setdefault("BC_SKIP_MAPPING", "TRUE")
    from checkov.common.util.banner import version
    from checkov.runner_filter import RunnerFilter

    runners = _runners()
    imported = time.process_time() - started
    print("ready", flush=True)
    request = json.loads(sys.stdin.readline() or "{}")
    if request.get("catalogue"):
        json.dump({"version": version, "checks": _catalogue()}, sys.stdout)
        sys.stdout.write("\n")
        return 0
    before = time.process_time()
    results = [_scan(runners, RunnerFilter, job) for job in request.get("jobs", [])]
    json.dump({"version": version, "results": results, "importCpuSeconds": round(imported, 3),
               "scanCpuSeconds": round(time.process_time() - before, 3)}, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
    # Tearing down Checkov's object graph costs CPU and gives nothing back: the answer is already out.
    os._exit(0)


def _catalogue() -> dict[str, str]:
    from checkov.arm.registry import arm_resource_registry
    from checkov.common.checks_infra.registry import (
        get_graph_checks_registry,
    )
    from checkov.kubernetes.checks.resource.registry import (
        registry as k8s_registry,
    )
    from checkov.terraform.checks.resource.registry import (
        resource_registry,
    )

    out: dict[str, str] = {}
    for registry in (resource_registry, arm_resource_registry, k8s_registry):
        for checks in registry.checks.values():
            for c in checks:
                out[c.id] = c.name
    for framework in ("terraform", "kubernetes"):
        graph = get_graph_checks_registry(framework)
        graph.load_checks()
        for c in graph.checks:
            out[c.id] = c.name
    return out


def _scan(runners: dict[str, Any], runner_filter: Any, job: dict[str, Any]) -> dict[str, Any]:
    root = str(job.get("root") or "")
    frameworks = [f for f in job.get("frameworks", []) if f in runners]
    failed: list[dict[str, Any]] = []
    passed: list[dict[str, Any]] = []
    errors: list[str] = []
    RunnerFilter = runner_filter
    for framework in frameworks:
        sub = os.path.join(root, {"terraform_json": "", "arm": "azure", "kubernetes": "k8s"}[framework])
        try:
            runner = runners[framework]()
            rf = RunnerFilter(framework=[framework], show_progress_bar=False, download_external_modules=False)
            # Checkov prints progress and warnings on stdout; our stdout is the protocol.
            with contextlib.redirect_stdout(io.StringIO()):
                report = runner.run(root_folder=sub, runner_filter=rf)
            reports = report if isinstance(report, list) else [report]
            for rep in reports:
                failed += [_record(r, framework) for r in rep.failed_checks]
                # Passed checks: ids and resources only (the prod stack passes ~400; their code is not needed).
                passed += [{"check_id": r.check_id, "check_name": "", "resource": r.resource,
                            "framework": framework, "file": "", "lines": [0, 0]} for r in rep.passed_checks]
        except Exception as exc:  # report and keep the other frameworks
            errors.append(f"{framework}: {type(exc).__name__}: {' '.join(str(exc).split())}")
    return {"failed": failed, "passed": passed, "errors": errors}


if __name__ == "__main__":
    sys.exit(main())
