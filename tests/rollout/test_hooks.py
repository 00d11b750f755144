"""Hooks: HTTP POST (2xx passes) against a real local server, argv commands (exit 0 passes); timeouts; no shell."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from metric_servers import App, free_port, serve

from infra.errors import InputError
from infra.rollout.hooks import CommandHook, HttpHook
from infra.rollout.seams import HookPhase, HookResult, JSONObject

PY = sys.executable
TOKEN = "tok-0123456789abcdef"
PAYLOAD: JSONObject = {"rollout": "r1", "stack": "dev", "service": "web", "weight": 25}


@pytest.fixture
def app() -> Iterator[App]:
    def slow(_: BaseHTTPRequestHandler) -> tuple[int, str]:
        time.sleep(1.0)
        return 200, "late"

    routes = {"/ok": lambda _: (200, "fine"), "/no-content": lambda _: (204, ""),
              "/reject": lambda _: (409, f"gate closed; token {TOKEN}"), "/error": lambda _: (500, "boom"),
              "/redirect": lambda _: (302, ""), "/slow": slow}
    with serve(App(routes=routes)) as running:  # type: ignore[arg-type]
        yield running


@pytest.mark.parametrize(("path", "ok"), [("/ok", True), ("/no-content", True), ("/reject", False),
                                          ("/error", False), ("/redirect", False)])
def test_http_hook_passes_only_on_2xx(app: App, path: str, ok: bool) -> None:
    result = HttpHook("gate", HookPhase.STEP, f"{app.url}{path}").run(PAYLOAD)
    assert result.ok is ok


def test_http_hook_posts_the_payload_as_json(app: App) -> None:
    HttpHook("smoke", HookPhase.CONFIRM_PROMOTION, f"{app.url}/ok",
             headers={"Authorization": f"Bearer {TOKEN}"}).run(PAYLOAD)
    method, _, body, headers = app.requests[-1]
    assert method == "POST"
    assert json.loads(body) == {"hook": "smoke", "phase": "confirm-promotion", **PAYLOAD}
    assert {k.lower(): v for k, v in headers.items()}["content-type"] == "application/json"


def test_http_hook_masks_secrets_in_the_detail(app: App) -> None:
    result = HttpHook("gate", HookPhase.STEP, f"{app.url}/reject", secrets=[TOKEN]).run(PAYLOAD)
    assert not result.ok and "409" in result.detail and TOKEN not in result.detail


def test_http_hook_times_out(app: App) -> None:
    result = HttpHook("slow", HookPhase.STEP, f"{app.url}/slow", timeout=0.2).run(PAYLOAD)
    assert result == HookResult(False, "timed out after 0.2s")


def test_http_hook_unreachable_fails_without_raising() -> None:
    result = HttpHook("gone", HookPhase.ROLLBACK, f"http://127.0.0.1:{free_port()}/x", timeout=1).run(PAYLOAD)
    assert not result.ok and "request failed" in result.detail


def test_command_hook_exit_code_decides_and_payload_arrives_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "payload.json"
    script = f"import sys, pathlib; pathlib.Path({str(out)!r}).write_text(sys.stdin.read())"
    assert CommandHook("record", HookPhase.PRE_ROLLOUT, [PY, "-c", script]).run(PAYLOAD).ok
    assert json.loads(out.read_text()) == {"hook": "record", "phase": "pre-rollout", **PAYLOAD}
    failed = CommandHook("no", HookPhase.STEP, [PY, "-c", "import sys; print('smoke failed'); sys.exit(2)"]).run({})
    assert not failed.ok and failed.detail == "exit 2: smoke failed"


def test_command_hook_is_never_run_through_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hook = CommandHook("echo", HookPhase.STEP, [PY, "-c", "import sys; print(sys.argv[1])", f"; touch {marker}"])
    result = hook.run({})
    assert result.ok and f"; touch {marker}" in result.detail
    assert not marker.exists()


def test_command_hook_times_out_and_leaves_no_process(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = f"import os, time, pathlib; pathlib.Path({str(pidfile)!r}).write_text(str(os.getpid())); time.sleep(30)"
    result = CommandHook("sleepy", HookPhase.STEP, [PY, "-c", script], timeout=1.0).run({})
    assert result == HookResult(False, "timed out after 1s")
    pid = int(pidfile.read_text())
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def test_command_hook_env_values_are_masked_and_phase_is_exported() -> None:
    hook = CommandHook("env", HookPhase.POST_ROLLOUT,
                       [PY, "-c", "import os; print(os.environ['GANTRY_HOOK_PHASE'], os.environ['API_TOKEN'])"],
                       env={"API_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"})
    result = hook.run({})
    assert result.ok and "post-rollout" in result.detail and TOKEN not in result.detail


def test_missing_binary_fails_without_raising() -> None:
    result = CommandHook("nope", HookPhase.STEP, ["/nonexistent/hook"]).run({})
    assert not result.ok and "cannot run /nonexistent/hook" in result.detail


@pytest.mark.parametrize(("make", "field"), [
    (lambda: CommandHook("a", HookPhase.STEP, []), "hooks.a.argv must be a non-empty list"),
    (lambda: CommandHook("b", HookPhase.STEP, "echo hi"), "hooks.b.argv must be a non-empty list"),
    (lambda: CommandHook("c", HookPhase.STEP, ["x"], timeout=0), r"hooks\.c\.timeout must be within"),
    (lambda: HttpHook("d", HookPhase.STEP, "ftp://x"), r"hooks\.d\.url must be an http\(s\) URL"),
])
def test_bad_hook_config_names_the_field(make: Callable[[], object], field: str) -> None:
    with pytest.raises(InputError, match=field):
        make()


def test_timeout_kills_grandchildren_too(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild"
    child = (f"import subprocess, sys, pathlib; p = subprocess.Popen([sys.executable, '-c', 'import time; "
             f"time.sleep(30)']); pathlib.Path({str(pidfile)!r}).write_text(str(p.pid)); p.wait()")
    result = CommandHook("spawner", HookPhase.STEP, [PY, "-c", child], timeout=1.5).run({})
    assert not result.ok and "timed out" in result.detail
    pid = int(pidfile.read_text())
    status = Path(f"/proc/{pid}/status")

    def alive() -> bool:
        try:
            return "zombie" not in status.read_text().lower()
        except FileNotFoundError:
            return False

    # SIGKILL is delivered asynchronously: a loaded machine may still show the grandchild running for a moment.
    deadline = time.monotonic() + 5.0
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(), "the grandchild outlived the timeout"
