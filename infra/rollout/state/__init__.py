"""Rollout state backends: where each stack's journal, lease and checkpoints live (``gantry:rollout.state``).

Called by the rollout CLI, the crash drills and the stress test. ``open_state`` opens one backend from
its URL (``infra.settings.state_url``): ``sqlite`` is ``infra.rollout.journal.SqliteJournal`` with its
``SqliteLock``, ``dynamodb://...`` is ``infra.rollout.state.dynamodb``. Both return a ``StateJournal``
(the ``Journal`` protocol plus ``lease_lock``), so the engine never knows which one it runs on.

Commands that name a stack open that stack's backend. Commands that name only a rollout id (``status``,
``abort``, ``resume``...) look for it in every backend the project's stack files name, this machine's
SQLite first: a runner that never saw the rollout start finds it in the shared table. ``history``
without ``--stack`` merges them all (``ProjectJournal``).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from pathlib import Path

from infra.errors import InputError
from infra.rollout.journal import (
    AppendHook,
    Entry,
    EntryKind,
    Quarantine,
    RolloutRecord,
    SqliteJournal,
    StateJournal,
    UnknownRollout,
    journal_path,
)
from infra.rollout.lock import Lock
from infra.rollout.seams import Clock, JSONObject, Phase, RolloutId, StackName
from infra.settings.state_url import FIELD, DynamoState, SqliteState, StateUrl, parse_state_url

__all__ = ["FIELD", "ProjectJournal", "StateUrl", "open_for_rollout", "open_project", "open_state",
           "parse_state_url", "project_states", "stack_state"]

DEFAULT_NAMESPACE = "gantry"


def project_namespace(project: Path) -> str:
    """The Pulumi project's name (Pulumi.yaml ``name``): keeps projects that share a table apart."""
    from infra.documents import DocumentError, load_yaml

    try:
        doc = load_yaml(project / "Pulumi.yaml") if (project / "Pulumi.yaml").is_file() else None
    except DocumentError:
        return DEFAULT_NAMESPACE
    name = doc.get("name") if isinstance(doc, dict) else None
    return name if isinstance(name, str) and name.replace("-", "").replace("_", "").isalnum() else DEFAULT_NAMESPACE


def open_state(state: StateUrl | str, project: Path, *, on_append: AppendHook | None = None) -> StateJournal:
    """The journal of one backend (its ``lease_lock`` gives the lock beside it)."""
    url = parse_state_url(state) if isinstance(state, str) else state
    if isinstance(url, SqliteState):
        return SqliteJournal(journal_path(project), on_append=on_append)
    from infra.rollout.state.dynamodb import DynamoBackend

    return DynamoBackend(url, project_namespace(project)).journal(on_append)


def _config_dir(project: Path) -> Path:
    from infra.documents import load_yaml

    manifest = project / "Pulumi.yaml"
    if manifest.is_file():
        doc = load_yaml(manifest) or {}
        if isinstance(doc, dict) and isinstance(doc.get("stackConfigDir"), str):
            return project / str(doc["stackConfigDir"])
        return project
    return project / "stacks"


def _state_in(path: Path) -> StateUrl:
    from infra.documents import load_yaml

    doc = load_yaml(path) or {}
    config = doc.get("config") if isinstance(doc, dict) else None
    rollout = config.get("gantry:rollout") if isinstance(config, dict) else None
    value = rollout.get("state", "sqlite") if isinstance(rollout, dict) else "sqlite"
    try:
        return parse_state_url(value)
    except ValueError as exc:
        raise InputError(f"{path.name}: gantry:{exc}") from None


def stack_state(project: Path, stack: str) -> StateUrl:
    """The backend a stack's file names (sqlite when it names none or the file does not exist)."""
    path = _config_dir(project) / f"Pulumi.{stack}.yaml"
    return _state_in(path) if path.is_file() else SqliteState()


def project_states(project: Path) -> list[StateUrl]:
    """Every distinct backend the project's stack files name, this machine's SQLite first."""
    found: list[StateUrl] = [SqliteState()]
    directory = _config_dir(project)
    for path in sorted(directory.glob("Pulumi.*.yaml")) if directory.is_dir() else []:
        try:
            url = _state_in(path)
        except Exception:  # a broken stack file is reported by the commands that load it, not here
            continue
        if url not in found:
            found.append(url)
    return found


def _sqlite_exists(project: Path) -> bool:
    return journal_path(project).is_file()


def open_for_rollout(project: Path, rollout_id: RolloutId, *, on_append: AppendHook | None = None) -> StateJournal:
    """The backend that recorded ``rollout_id``; this machine's journal when none did (``get`` then says so)."""
    for url in project_states(project):
        if isinstance(url, SqliteState) and not _sqlite_exists(project):
            continue  # never create a local journal just to look in it
        journal = open_state(url, project, on_append=on_append)
        try:
            journal.get(rollout_id)
        except UnknownRollout:
            journal.close()
            continue
        except BaseException:
            journal.close()
            raise
        return journal
    return open_state(SqliteState(), project, on_append=on_append)


class ProjectJournal:
    """Every backend of the project as one journal: reads merge or route by rollout, writes go to its owner."""

    def __init__(self, journals: list[StateJournal]) -> None:
        self.journals = journals

    def __str__(self) -> str:
        return ", ".join(str(j) for j in self.journals)

    def _owner(self, rollout_id: RolloutId) -> StateJournal:
        for journal in self.journals:
            try:
                journal.get(rollout_id)
            except UnknownRollout:
                continue
            return journal
        raise UnknownRollout(f"rollout id must be one recorded in {self}, but {rollout_id!r} was given; "
                             "list them with `gantry rollout history`")

    def lease_lock(self, clock: Clock, *, ttl: float | None = None, pid: int | None = None,
                   host: str | None = None) -> Lock:
        raise InputError("--stack must be given to take a stack's lease, but none was given")

    def create(self, record: RolloutRecord, started: JSONObject) -> Entry:
        raise InputError("--stack must be given to start a rollout, but none was given")

    def append(self, rollout_id: RolloutId, kind: EntryKind, data: JSONObject, at: float,
               *, phase: Phase | None = None, quarantine: Quarantine | None = None,
               expect_last: int | None = None) -> Entry:
        return self._owner(rollout_id).append(rollout_id, kind, data, at, phase=phase, quarantine=quarantine,
                                              expect_last=expect_last)

    def entries(self, rollout_id: RolloutId, after: int = 0) -> list[Entry]:
        return self._owner(rollout_id).entries(rollout_id, after)

    def get(self, rollout_id: RolloutId) -> RolloutRecord:
        return self._owner(rollout_id).get(rollout_id)

    def history(self, stack: StackName | None = None, limit: int = 50) -> list[RolloutRecord]:
        key: Callable[[RolloutRecord], tuple[float, str]] = lambda r: (r.created_at, r.id)  # noqa: E731
        lists = [sorted(j.history(stack, limit), key=key, reverse=True) for j in self.journals]
        return list(heapq.merge(*lists, key=key, reverse=True))[:limit]

    def active(self, stack: StackName) -> list[RolloutRecord]:
        return sorted((r for j in self.journals for r in j.active(stack)), key=lambda r: (r.created_at, r.id))

    def quarantined(self, stack: StackName, service: str, image: str) -> Quarantine | None:
        for journal in self.journals:
            found = journal.quarantined(stack, service, image)
            if found is not None:
                return found
        return None

    def close(self) -> None:
        for journal in self.journals:
            journal.close()


def open_project(project: Path, *, on_append: AppendHook | None = None) -> ProjectJournal:
    """All of the project's backends (the local SQLite journal only if it exists or nothing else is named)."""
    urls = project_states(project)
    shared = [u for u in urls if isinstance(u, DynamoState)]
    chosen: list[StateUrl] = ([SqliteState()] if _sqlite_exists(project) or not shared else []) + list(shared)
    journals: list[StateJournal] = []
    try:
        for url in chosen:
            journals.append(open_state(url, project, on_append=on_append))
    except BaseException:
        for journal in journals:
            journal.close()
        raise
    return ProjectJournal(journals)

