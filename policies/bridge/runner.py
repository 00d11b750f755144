"""Runs Checkov on a translated bundle, in Checkov's own interpreter, and parses what it found.

Checkov 3.3 pins boto3==1.35.49, packaging<24 and networkx<2.7, which conflict with Gantry's own
dependencies (boto3 1.44, packaging 26, networkx 3), so it cannot be imported in Gantry's process. It lives
in its own virtualenv (``.venv-checkov``, made by ``scripts/setup.sh``) and ``driver.py`` drives its runner
API there. ``start()`` launches the driver before the program is rendered, so Checkov's ~2 s of imports
overlap the render on a second core; ``scan()`` then hands it the files.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from policies.bridge.translate import Bundle, Framework

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("driver.py")
ENV_PYTHON = "GANTRY_CHECKOV_PYTHON"
ENV_TIMEOUT = "GANTRY_CHECKOV_TIMEOUT"
DEFAULT_TIMEOUT_S = 300.0


class BridgeUnavailable(RuntimeError):
    """Checkov is not installed (or cannot start); the message says how to install it."""


class BridgeFailed(RuntimeError):
    """Checkov started but did not produce a result (crash, timeout, garbled output)."""


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """One Checkov result on one translated resource."""

    check_id: str
    check_name: str
    framework: Framework
    resource: str
    file: str
    lines: tuple[int, int]
    guideline: str = ""


@dataclass(slots=True)
class ScanResult:
    version: str
    failed: list[CheckRecord]
    passed: list[CheckRecord]
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    import_cpu_seconds: float = 0.0
    """CPU the driver spent importing Checkov (overlapping the render when started early)."""
    scan_cpu_seconds: float = 0.0


def checkov_python() -> Path:
    """The interpreter that has Checkov: $GANTRY_CHECKOV_PYTHON, else the project's .venv-checkov."""
    raw = os.environ.get(ENV_PYTHON)
    candidate = Path(raw) if raw else ROOT / ".venv-checkov" / "bin" / "python"
    if not candidate.is_file() or not os.access(candidate, os.X_OK):
        where = f"{ENV_PYTHON}={raw}" if raw else str(candidate)
        raise BridgeUnavailable(
            f"the Checkov bridge is unavailable: no Checkov interpreter at {where}; run scripts/setup.sh (it "
            f"creates .venv-checkov) or set {ENV_PYTHON}, or pass --checkov off to check Gantry's rules only")
    return candidate


def _timeout() -> float:
    try:
        return float(os.environ.get(ENV_TIMEOUT, DEFAULT_TIMEOUT_S))
    except ValueError:
        return DEFAULT_TIMEOUT_S


class CheckovSession:
    """One driver process: started early, used for one scan, always reaped."""

    def __init__(self, python: Path | None = None) -> None:
        self.python = python or checkov_python()
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> CheckovSession:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "AWS_SECRET", "GANTRY_SECRET"))}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        try:
            self.proc = subprocess.Popen(  # argv, never a shell
                [str(self.python), "-I", str(DRIVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, env=env, cwd=tempfile.gettempdir())
        except OSError as exc:
            raise BridgeUnavailable(f"the Checkov bridge is unavailable: {self.python} cannot start ({exc})") from None
        return self

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired, ValueError, OSError):
            proc.communicate(timeout=10)

    def __enter__(self) -> CheckovSession:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def scan(self, bundle: Bundle) -> ScanResult:
        """Write the bundle to a private temp dir, have the driver scan it, and parse the result."""
        return self.scan_many([bundle])[0]

    def scan_many(self, bundles: list[Bundle]) -> list[ScanResult]:
        """Several bundles in one Checkov process (one import for many small graphs, as in the tests)."""
        import time

        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="gantry-checkov-") as tmp:
            jobs = []
            for i, bundle in enumerate(bundles):
                root = Path(tmp) / f"{i:03d}"
                for rel, text in bundle.files.items():
                    path = root / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text, encoding="utf-8")
                jobs.append({"root": str(root), "frameworks": [f.value for f in bundle.frameworks]})
            stdout, stderr, code = self._exchange({"jobs": jobs})
        results = parse_output(stdout, stderr, code, len(bundles))
        for r in results:
            r.seconds = time.perf_counter() - started
        return results

    def catalogue(self) -> dict[str, str]:
        """Every check id Checkov knows, with its name."""
        stdout, stderr, code = self._exchange({"catalogue": True})
        doc = _document(stdout, stderr, code)
        checks = doc.get("checks")
        return {str(k): str(v) for k, v in checks.items()} if isinstance(checks, dict) else {}

    def _exchange(self, request: dict[str, object]) -> tuple[str, str, int | None]:
        if self.proc is None:
            self.start()
        proc = self.proc
        assert proc is not None
        try:
            stdout, stderr = proc.communicate(json.dumps(request) + "\n", timeout=_timeout())
        except subprocess.TimeoutExpired:
            self.close()
            raise BridgeFailed(f"Checkov did not finish within {_timeout():.0f} s (set {ENV_TIMEOUT} to wait "
                               "longer)") from None
        finally:
            self.proc = None
        return stdout, stderr, proc.returncode


def parse_output(stdout: str, stderr: str, returncode: int | None, jobs: int = 1) -> list[ScanResult]:
    """The driver's ``ready`` line then one JSON document with a result per job; anything else is a failed
    run with its reason."""
    doc = _document(stdout, stderr, returncode)
    results = doc.get("results")
    if not isinstance(results, list) or len(results) != jobs:
        raise BridgeFailed(f"Checkov's driver returned {len(results) if isinstance(results, list) else 'no'} "
                           f"result(s) for {jobs} job(s)")
    version = str(doc.get("version", "?"))
    imp, scan = doc.get("importCpuSeconds"), doc.get("scanCpuSeconds")
    out = [ScanResult(version=version, failed=_records(r.get("failed")), passed=_records(r.get("passed")),
                      errors=[str(e) for e in r.get("errors") or []]) if isinstance(r, dict)
           else ScanResult(version, [], [], ["malformed result"]) for r in results]
    for r in out:
        r.import_cpu_seconds = float(imp) if isinstance(imp, int | float) else 0.0
        r.scan_cpu_seconds = float(scan) if isinstance(scan, int | float) else 0.0
    return out


def _document(stdout: str, stderr: str, returncode: int | None) -> dict[str, object]:
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    if not lines or lines[0] != "ready":
        tail = " ".join(stderr.strip().splitlines()[-1:]) or f"exit {returncode}"
        if "No module named 'checkov'" in stderr:
            raise BridgeUnavailable("the Checkov bridge is unavailable: the Checkov interpreter has no checkov "
                                    "package; run scripts/setup.sh")
        raise BridgeFailed(f"Checkov's driver did not start: {tail}")
    try:
        doc = json.loads(lines[-1])
    except ValueError:
        raise BridgeFailed(f"Checkov's driver returned no result (exit {returncode}): "
                           f"{' '.join(stderr.strip().splitlines()[-1:])}") from None
    if not isinstance(doc, dict):
        raise BridgeFailed("Checkov's driver returned a non-object result")
    return doc


def _records(raw: object) -> list[CheckRecord]:
    out: list[CheckRecord] = []
    if not isinstance(raw, list):
        return out
    for r in raw:
        if not isinstance(r, dict):
            continue
        try:
            framework = Framework(str(r.get("framework")))
        except ValueError:
            continue
        lines = r.get("lines") or [0, 0]
        out.append(CheckRecord(check_id=str(r.get("check_id")), check_name=str(r.get("check_name")),
                               framework=framework, resource=str(r.get("resource")), file=str(r.get("file", "")),
                               lines=(int(lines[0]), int(lines[-1])), guideline=str(r.get("guideline") or "")))
    return out


def available() -> str | None:
    """None when the bridge can run, else the reason it cannot (for ``--list-rules`` and warnings)."""
    try:
        checkov_python()
    except BridgeUnavailable as exc:
        return str(exc)
    return None


__all__ = ["BridgeFailed", "BridgeUnavailable", "CheckRecord", "CheckovSession", "ScanResult", "available",
           "checkov_python", "parse_output"]
