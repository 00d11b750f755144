"""Builds the DR engine for a stack: its ``gantry:dr`` settings, the target for its cloud, the journal and lock.

Called by ``gantry dr`` and the sandbox drill. A ``cloud: local`` stack gets ``SandboxDrTarget``; a cloud
stack gets ``PulumiDrTarget`` over the Automation API. The journal and lease lock are the rollouts' own
(``.gantry/journal.db``), so a DR operation and a rollout on the same stacks exclude each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from components.spec import Cloud
from infra.config import GantryConfig, load_stack
from infra.documents import load_yaml
from infra.dr.engine import DrEngine, DrTarget, Observer, check_stack
from infra.dr.pulumi_target import Prober, PulumiDrTarget, http_probe
from infra.dr.settings import DrSettings
from infra.errors import InputError
from infra.rollout.clock import SystemClock
from infra.rollout.journal import AppendHook, SqliteJournal, journal_path
from infra.rollout.lock import SqliteLock
from infra.rollout.pulumi_target import OnOutput, StackFactory, select_stack
from infra.rollout.seams import Clock


@dataclass(slots=True)
class Parts:
    cfg: GantryConfig
    settings: DrSettings
    target: DrTarget
    journal: SqliteJournal
    lock: SqliteLock
    engine: DrEngine

    def close(self) -> None:
        close = getattr(self.target, "close", None)
        if callable(close):
            close()
        self.lock.close()
        self.journal.close()


def config_dir(project: Path) -> Path:
    """Where the stack files are: Pulumi.yaml's stackConfigDir, else ``stacks/``."""
    manifest = project / "Pulumi.yaml"
    if manifest.is_file():
        doc = load_yaml(manifest) or {}
        if isinstance(doc, dict) and isinstance(doc.get("stackConfigDir"), str):
            return project / str(doc["stackConfigDir"])
        return project
    return project / "stacks"


def dr_settings(project: Path, stack: str) -> tuple[GantryConfig, DrSettings]:
    cfg = load_stack(stack, config_dir(project))
    if cfg.dr is None:
        raise InputError(f"gantry:dr must be set in stack {stack} for `gantry dr` (primary, standby, healthChecks), "
                         "but it has none")
    check_stack(cfg.dr, stack)
    return cfg, cfg.dr


def build(project: Path, stack: str, *, observer: Observer | None = None, clock: Clock | None = None,
          prober: Prober = http_probe, stack_factory: StackFactory = select_stack,
          on_output: OnOutput | None = None, on_append: AppendHook | None = None) -> Parts:
    """Everything ``gantry dr`` needs for ``stack`` (the pair's primary or standby)."""
    cfg, settings = dr_settings(project, stack)
    target: DrTarget
    if cfg.cloud is Cloud.LOCAL:
        from infra.dr.sandbox_target import SandboxDrTarget

        target = SandboxDrTarget(settings, project, prober=prober)
    else:
        target = PulumiDrTarget(settings, project, stack_factory=stack_factory, prober=prober, on_output=on_output)
    clock = clock or SystemClock()
    # Only the crash drills pass a hook (to SIGKILL this process at an exact journal boundary).
    hook = on_append
    journal = SqliteJournal(journal_path(project), on_append=hook)
    lock = SqliteLock(journal.path, clock)
    engine = DrEngine(settings, target, journal, lock, clock, observer=observer)
    return Parts(cfg, settings, target, journal, lock, engine)
