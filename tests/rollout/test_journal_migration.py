"""Journal schema migrations: a journal written by schema version 0 is brought forward without losing an entry.

The fixture ``fixtures/journal_v0.sql`` is a dump of a journal the engine wrote before commit provenance
existed (three rollouts: canary promoted, canary rolled back, blue/green promoted).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from rollout_rig import STACK, make_rig

from infra.errors import ExitCode
from infra.rollout import journal as journal_mod
from infra.rollout import kpis
from infra.rollout.entries import read
from infra.rollout.journal import SCHEMA_VERSION, NewerJournal, SqliteJournal, migrate
from infra.rollout.provenance import UNKNOWN, Provenance, Source
from infra.rollout.scheduler import replay
from infra.rollout.seams import Phase

FIXTURE = Path(__file__).parent / "fixtures" / "journal_v0.sql"


def v0_journal(tmp: Path) -> Path:
    path = tmp / ".gantry" / "journal.db"
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.executescript(FIXTURE.read_text(encoding="utf-8"))
    conn.close()
    return path


def raw(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_v0_journal_is_migrated_and_keeps_every_entry(tmp_path: Path) -> None:
    path = v0_journal(tmp_path)
    assert raw(path, "PRAGMA user_version") == [(0,)]
    entries_before = raw(path, "SELECT * FROM entries ORDER BY seq")
    rollouts_before = raw(path, "SELECT * FROM rollouts ORDER BY created_at, id")
    other_before = raw(path, "SELECT * FROM quarantine"), raw(path, "SELECT * FROM leases")
    assert len(entries_before) > 30 and len(rollouts_before) == 3

    journal = SqliteJournal(path)
    assert raw(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert raw(path, "SELECT * FROM entries ORDER BY seq") == entries_before
    # The old columns keep their values; the new ones are NULL (unknown), appended after them.
    after = raw(path, "SELECT * FROM rollouts ORDER BY created_at, id")
    assert [row[:8] for row in after] == rollouts_before
    assert all(row[8:] == (None, None, None) for row in after)
    assert (raw(path, "SELECT * FROM quarantine"), raw(path, "SELECT * FROM leases")) == other_before

    records = journal.history()
    assert sorted(r.phase for r in records) == sorted([Phase.PROMOTED, Phase.ROLLED_BACK, Phase.PROMOTED])
    for record in records:
        assert record.provenance == UNKNOWN
        assert replay(read(journal, record.id)).phase is record.phase  # old entries replay as before
    # The KPI report reads it: no commit times, and no stable counts in analyses written before they existed.
    rep = kpis.compute(kpis.load(journal), since=0.0, until=2_000_000_000.0)
    assert rep.overall.metric("lead_time").detail["without_commit_time"] == 2
    assert rep.overall.metric("lead_time").value is None
    assert rep.overall.metric("zero_downtime").value is None
    assert rep.overall.metric("rollback_rate").value == 1 / 3
    journal.close()


def test_a_migrated_journal_takes_new_rollouts_with_provenance(tmp_path: Path) -> None:
    path = v0_journal(tmp_path)
    journal = SqliteJournal(path)
    rig = make_rig(tmp_path, journal=journal)
    # The fixture's newest rollout started at the fake clock's epoch; start later than it.
    rig.clock.advance(10_000)
    prov = Provenance(commit="0123456789abcdef0123456789abcdef01234567", committed_at=rig.clock.now() - 60,
                      source=Source.GITLAB)
    outcome = rig.engine.start(stack=STACK, service="web", image="app:9.0", plan=rig.plan, provenance=prov)
    assert outcome.phase is Phase.PROMOTED
    journal.close()
    again = SqliteJournal(path)
    assert again.get(outcome.rollout_id).provenance == prov
    assert len(again.history()) == 4
    again.close()


def test_reopening_a_current_journal_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    SqliteJournal(path).close()
    assert raw(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    again = SqliteJournal(path)
    assert migrate(again.conn) == SCHEMA_VERSION  # already current: nothing to do
    again.close()


def test_concurrent_processes_migrate_an_old_journal_exactly_once(tmp_path: Path) -> None:
    path = v0_journal(tmp_path)
    code = ("import sys; from pathlib import Path; from infra.rollout.journal import SqliteJournal;"
            "j = SqliteJournal(Path(sys.argv[1])); print(len(j.history())); j.close()")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(6)]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [r[1] for r in results]
    assert [r[0].strip() for r in results] == ["3"] * 6
    assert raw(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    columns = [row[1] for row in raw(path, "PRAGMA table_info(rollouts)")]
    assert columns.count("commit_sha") == 1 and columns[-3:] == ["commit_sha", "committed_at", "commit_source"]


def test_a_migration_that_fails_midway_leaves_the_old_version_intact(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = v0_journal(tmp_path)
    # The first statement succeeds, the second fails: the step's transaction must undo the first.
    monkeypatch.setattr(journal_mod, "MIGRATIONS", ("ALTER TABLE rollouts ADD COLUMN x TEXT;"
                                                   "ALTER TABLE no_such_table ADD COLUMN y TEXT;",))
    monkeypatch.setattr(journal_mod, "SCHEMA_VERSION", 1)
    with pytest.raises(sqlite3.OperationalError):
        SqliteJournal(path)
    assert raw(path, "PRAGMA user_version") == [(0,)]
    assert "x" not in [row[1] for row in raw(path, "PRAGMA table_info(rollouts)")]
    monkeypatch.undo()
    assert len(SqliteJournal(path).history()) == 3  # and the real migration still works afterwards


def test_a_journal_from_a_newer_gantry_is_refused_not_damaged(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    SqliteJournal(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=7")
    conn.close()
    expected = f"journal schema version must be at most {SCHEMA_VERSION}, but 7 was found"
    with pytest.raises(NewerJournal, match=expected) as info:
        SqliteJournal(path)
    assert info.value.exit_code is ExitCode.USAGE
    assert raw(path, "PRAGMA user_version") == [(7,)]
