"""The SQLite journal: durable, private, ordered, atomic with phase and quarantine, and replayable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from rollout_rig import make_rig

from components.spec import Strategy
from infra.errors import ExitCode
from infra.rollout.entries import read
from infra.rollout.journal import (
    EntryKind,
    Quarantine,
    RolloutRecord,
    SqliteJournal,
    UnknownRollout,
    journal_path,
)
from infra.rollout.scheduler import replay
from infra.rollout.seams import Phase, RolloutId, StackName


def _record(rid: str, stack: str = "dev", at: float = 1.0) -> RolloutRecord:
    return RolloutRecord(RolloutId(rid), StackName(stack), "web", "app:2.0", Strategy.CANARY, Phase.PENDING, at, at)


def test_journal_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    j = SqliteJournal.for_project(tmp_path)
    path = journal_path(tmp_path)
    assert path == tmp_path / ".gantry" / "journal.db"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert j.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    j.create(_record("r1"), {"plan": 1})
    for extra in (path.with_name("journal.db-wal"), path.with_name("journal.db-shm")):
        if extra.exists():
            assert stat.S_IMODE(os.stat(extra).st_mode) & 0o077 == 0, extra


def test_existing_world_readable_file_is_tightened(tmp_path: Path) -> None:
    path = journal_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    SqliteJournal(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_entries_are_ordered_durable_and_survive_reopen(tmp_path: Path) -> None:
    j = SqliteJournal.for_project(tmp_path)
    first = j.create(_record("r1"), {"a": 1})
    e2 = j.append(RolloutId("r1"), EntryKind.INTENT, {"action": "prepare"}, 2.0)
    e3 = j.append(RolloutId("r1"), EntryKind.APPLIED, {"action": "prepare"}, 3.0, phase=Phase.PROGRESSING)
    j.close()
    again = SqliteJournal.for_project(tmp_path)
    entries = again.entries(RolloutId("r1"))
    assert [e.seq for e in entries] == [first.seq, e2.seq, e3.seq]
    assert first.seq < e2.seq < e3.seq
    assert [e.kind for e in entries] == [EntryKind.STARTED, EntryKind.INTENT, EntryKind.APPLIED]
    assert entries[1].data == {"action": "prepare"}
    assert again.entries(RolloutId("r1"), after=e2.seq) == [entries[2]]
    assert again.get(RolloutId("r1")).phase is Phase.PROGRESSING
    assert again.get(RolloutId("r1")).updated_at == 3.0


def test_phase_and_quarantine_are_written_with_the_entry(tmp_path: Path) -> None:
    j = SqliteJournal.for_project(tmp_path)
    j.create(_record("r1"), {})
    q = Quarantine(StackName("dev"), "web", "app:2.0", RolloutId("r1"), 5.0, "error rate 20%")
    j.append(RolloutId("r1"), EntryKind.PHASE, {"phase": "rolled_back"}, 5.0, phase=Phase.ROLLED_BACK, quarantine=q)
    assert j.get(RolloutId("r1")).phase is Phase.ROLLED_BACK
    assert j.quarantined(StackName("dev"), "web", "app:2.0") == q
    assert j.quarantined(StackName("dev"), "web", "app:2.1") is None
    assert j.quarantined(StackName("prod"), "web", "app:2.0") is None


def test_history_and_active_filter_by_stack_and_phase(tmp_path: Path) -> None:
    j = SqliteJournal.for_project(tmp_path)
    j.create(_record("a", "dev", 1.0), {})
    j.create(_record("b", "prod", 2.0), {})
    j.create(_record("c", "dev", 3.0), {})
    j.append(RolloutId("a"), EntryKind.PHASE, {"phase": "promoted"}, 4.0, phase=Phase.PROMOTED)
    assert [r.id for r in j.history()] == ["c", "b", "a"]
    assert [r.id for r in j.history(StackName("dev"))] == ["c", "a"]
    assert [r.id for r in j.active(StackName("dev"))] == ["c"]
    assert j.active(StackName("staging")) == []


def test_unknown_rollout_is_an_input_error_naming_the_id(tmp_path: Path) -> None:
    j = SqliteJournal.for_project(tmp_path)
    with pytest.raises(UnknownRollout, match="'r-nope'") as info:
        j.get(RolloutId("r-nope"))
    assert info.value.exit_code is ExitCode.USAGE
    assert "gantry rollout history" in str(info.value)


def test_append_hook_sees_every_write_before_and_after(tmp_path: Path) -> None:
    seen: list[tuple[str, str, int]] = []
    j = SqliteJournal(journal_path(tmp_path), on_append=lambda m, k, n: seen.append((m, k.value, n)))
    j.create(_record("r1"), {})
    j.append(RolloutId("r1"), EntryKind.HOOK, {"key": "x"}, 1.0)
    assert seen == [("before", "started", 1), ("after", "started", 1), ("before", "hook", 2), ("after", "hook", 2)]


def test_a_finished_rollout_replays_to_the_engines_final_state(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    outcome = rig.start()
    reopened = SqliteJournal.for_project(tmp_path)
    assert replay(read(reopened, outcome.rollout_id)) == outcome.state
    assert outcome.state.phase is Phase.PROMOTED


def test_two_processes_appending_at_once_lose_nothing(tmp_path: Path) -> None:
    path = journal_path(tmp_path)
    SqliteJournal(path).create(_record("r1"), {})
    children = []
    for writer in ("engine", "operator"):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                j = SqliteJournal(path)
                for i in range(100):
                    j.append(RolloutId("r1"), EntryKind.OPERATOR, {"writer": writer, "i": i}, float(i))
                code = 0
            finally:
                os._exit(code)
        children.append(pid)
    for pid in children:
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    entries = SqliteJournal(path).entries(RolloutId("r1"))[1:]
    for writer in ("engine", "operator"):
        assert [e.data["i"] for e in entries if e.data["writer"] == writer] == list(range(100))
    assert [e.seq for e in entries] == sorted({e.seq for e in entries})
