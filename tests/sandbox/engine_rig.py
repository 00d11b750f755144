"""A throwaway engine-driven sandbox for the ``engine`` tests and bench/rollout_engine.py: stack local-engine, for real.

``EngineProject.create`` writes a project that runs the repository's own program (``infra``, through a
two-line ``program/__main__.py``) with the shipped ``stacks/Pulumi.local-engine.yaml``, starts the sandbox,
creates the stack on a ``file://`` backend under the project and runs the first ``pulumi up`` (which
adopts the sandbox's running v1). Everything runs as a user would run it: ``gantry`` and ``pulumi`` as
separate processes. ``close`` stops the sandbox and any Pulumi plugin a killed ``up`` orphaned.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from infra.sandbox import lifecycle, procs
from infra.sandbox.haproxy import RuntimeApi
from infra.sandbox.state import SandboxState, marker_for, require, sandbox_dir

REPO = Path(__file__).resolve().parents[2]
STACK = "local-engine"

PULUMI_YAML = """\
name: gantry
runtime:
  name: python
  options:
    virtualenv: {venv}
main: program/
stackConfigDir: stacks
"""
PROGRAM = 'import runpy\n\nrunpy.run_module("infra", run_name="__main__")\n'


def events(text: str) -> list[dict[str, object]]:
    out = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


@dataclass
class EngineProject:
    root: Path
    env: dict[str, str]

    @classmethod
    def create(cls, root: Path, stack_yaml: str | None = None) -> EngineProject:
        project, state, home = root / "proj", root / "state", root / "pulumi-home"
        for d in (project / "stacks", project / "program", state, home):
            d.mkdir(parents=True, exist_ok=True)
        (project / "Pulumi.yaml").write_text(PULUMI_YAML.format(venv=sys.prefix))
        (project / "program" / "__main__.py").write_text(PROGRAM)
        (project / "stacks" / f"Pulumi.{STACK}.yaml").write_text(
            stack_yaml or (REPO / "stacks" / f"Pulumi.{STACK}.yaml").read_text())
        env = {**os.environ, "PULUMI_BACKEND_URL": f"file://{state}", "PULUMI_CONFIG_PASSPHRASE": "engine-sandbox",
               "PULUMI_HOME": str(home), "PULUMI_SKIP_UPDATE_CHECK": "true",
               # The venv holds the cloud SDKs; their plugins are neither needed here nor downloadable.
               "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true", "PYTHONUNBUFFERED": "1",
               "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
        rig = cls(project, env)
        try:
            lifecycle.up(project, STACK)
            rig.pulumi("stack", "init", check=True)
            rig.pulumi("up", "--yes", "--skip-preview", check=True)
        except BaseException:
            rig.close()
            raise
        return rig

    # ------------------------------------------------------------------ running things

    def gantry(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "infra.cli", *args, "--project", str(self.root)],
                              cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout)

    def gantry_bg(self, *args: str, out: Path) -> subprocess.Popen[bytes]:
        """``gantry`` in its own session (so the test can SIGKILL it and its ``pulumi`` child together)."""
        with open(out, "wb") as f:
            return subprocess.Popen([sys.executable, "-m", "infra.cli", *args, "--project", str(self.root)],
                                    cwd=self.root, env=self.env, stdout=f, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def pulumi(self, *args: str, check: bool = False, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["pulumi", *args, "--stack", STACK, "--non-interactive"], cwd=self.root,
                              env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"pulumi {' '.join(args)} failed: {done.stderr[-2000:]}")
        return done

    # ------------------------------------------------------------------ what is true now

    @property
    def state_dir(self) -> Path:
        return Path(self.env["PULUMI_BACKEND_URL"].removeprefix("file://"))

    def sandbox(self) -> SandboxState:
        return require(sandbox_dir(self.root))

    def haproxy_weights(self) -> dict[str, int]:
        return RuntimeApi(Path(self.sandbox().haproxy_socket)).weights("be_web")

    def haproxy_addresses(self) -> dict[str, str]:
        api = RuntimeApi(Path(self.sandbox().haproxy_socket))
        return {s.server: s.addr for s in api.show_stat() if s.backend == "be_web"}

    def outputs(self) -> dict[str, object]:
        done = self.pulumi("stack", "output", "--json", check=True)
        value = json.loads(done.stdout)
        assert isinstance(value, dict)
        return value

    def deployment(self) -> dict[str, object]:
        done = self.pulumi("stack", "export", check=True)
        value = json.loads(done.stdout)["deployment"]
        assert isinstance(value, dict)
        return value

    def checkpoint_file(self) -> Path:
        return self.state_dir / ".pulumi" / "stacks" / "gantry" / f"{STACK}.json"

    def pending_in_checkpoint(self) -> list[object]:
        """The backend's checkpoint file as the running engine last wrote it (no CLI: it may be mid-update)."""
        try:
            data = json.loads(self.checkpoint_file().read_text())
        except (OSError, ValueError):
            return []
        pending = data.get("checkpoint", {}).get("latest", {}).get("pending_operations") or []
        return list(pending)

    def lock_files(self) -> list[Path]:
        locks = self.state_dir / ".pulumi" / "locks"
        return sorted(p for p in locks.rglob("*.json")) if locks.is_dir() else []

    def history(self) -> list[dict[str, object]]:
        return list(json.loads(self.pulumi("stack", "history", "--json", check=True).stdout))

    # ------------------------------------------------------------------ cleanup

    def plugin_pids(self) -> list[int]:
        """Pulumi plugins (language host, dynamic provider) started for this project, alive or orphaned."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if f"PULUMI_HOME={self.env['PULUMI_HOME']}".encode() in environ.split(b"\0"):
                found.append(int(entry.name))
        return found

    def close(self) -> None:
        marker = marker_for(sandbox_dir(self.root))
        for pid in self.plugin_pids():
            # Demo versions inherit the environment too; the sandbox's own `down` stops those.
            if procs.alive(pid) and not procs.is_ours(pid, marker):
                os.kill(pid, signal.SIGKILL)
        lifecycle.down(self.root)
        time.sleep(0.1)
        shutil.rmtree(self.root / ".gantry" / "checkpoints", ignore_errors=True)
