"""Typed journal entries: old journals read the same, new entries are written in the same format, bad ones are named."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from fakes import FakeAnalysis
from rollout_rig import make_rig

from components.spec import Color
from infra.rollout.entries import (
    Analysed,
    Applied,
    CorruptEntry,
    Decided,
    EffectKind,
    Failed,
    Intended,
    Requested,
    SetWeight,
    Started,
    Switch,
    parse,
    parse_all,
)
from infra.rollout.journal import Entry, EntryKind
from infra.rollout.scheduler import replay
from infra.rollout.seams import Decision, JSONObject, Phase, RolloutId, Verdict

RID = RolloutId("r-old")
FIXTURE = Path(__file__).parent / "fixtures" / "journal_v0.sql"
"""A journal written by schema version 0 (three rollouts), also used by the migration tests."""

# Entries exactly as an early Gantry wrote them: no ``forced``, no ``window``/``traffic``/``label`` in analyses,
# decisions without ``override``/``step``, a phase without a reason, and a key this version does not know.
OLD: list[tuple[EntryKind, JSONObject]] = [
    (EntryKind.STARTED, {"stack": "dev", "service": "web", "image": "app:2.0",
                         "plan": {"strategy": "canary", "interval": 30.0, "threshold": 1, "max_holds": 3,
                                  "scale_down_delay": 0.0, "hook_phases": [],
                                  "steps": [{"weight": 50, "effect": "set_weight", "label": "canary 50%"}]},
                         "baseline": {"strategy": "canary", "stable_image": "app:1.0", "canary_image": None,
                                      "canary_weight": 0, "active_color": None, "preview_image": None}}),
    (EntryKind.CHECKPOINT, {"state": {"config": {"web": {"image": "app:1.0"}}}}),
    (EntryKind.INTENT, {"action": "prepare", "image": "app:2.0"}),
    (EntryKind.APPLIED, {"action": "prepare", "image": "app:2.0"}),
    (EntryKind.INTENT, {"action": "set_weight", "weight": 50, "step": 0}),
    (EntryKind.APPLIED, {"action": "set_weight", "weight": 50, "step": 0}),
    (EntryKind.ANALYSIS, {"verdict": "fail", "step": 0,
                          "checks": [{"name": "errors", "verdict": "fail", "value": 0.2, "limit": 0.01}]}),
    (EntryKind.DECISION, {"decision": "rollback", "reason": "1 failed analyses", "legacy_note": "x"}),
    (EntryKind.INTENT, {"action": "revert"}),
    (EntryKind.APPLIED, {"action": "revert"}),
    (EntryKind.PHASE, {"phase": "rolled_back"}),
    (EntryKind.VERIFIED, {"ok": True, "mismatches": []}),
]


def old_journal() -> list[Entry]:
    return [Entry(i + 1, RID, kind, data, float(i)) for i, (kind, data) in enumerate(OLD)]


def test_an_old_format_journal_reads_and_replays() -> None:
    entries = parse_all(old_journal())
    first = entries[0].body
    assert isinstance(first, Started) and first.forced is False and first.plan.steps[0].weight == 50
    analysed = entries[6].body
    assert isinstance(analysed, Analysed) and analysed.traffic is None and analysed.early is False
    assert analysed.failed == ("errors 0.2 > 0.01",)
    decided = entries[7].body
    assert isinstance(decided, Decided) and (decided.override, decided.step) == (False, None)
    state = replay(entries)
    assert state.phase is Phase.ROLLED_BACK and state.reverted and state.weight == 0
    assert state.reason == "1 failed analyses"  # the phase entry without a reason keeps the decision's
    assert state.last_failed == ("errors 0.2 > 0.01",) and state.verified is True


def test_old_entries_serialise_back_to_what_was_stored() -> None:
    for entry in old_journal():
        stored = dict(entry.data)
        stored.pop("legacy_note", None)  # unknown keys are ignored on read
        assert parse(entry).body.to_json() == stored, entry.kind


def test_the_v0_fixture_journal_round_trips() -> None:
    conn = sqlite3.connect(":memory:")
    conn.executescript(FIXTURE.read_text(encoding="utf-8"))
    rows = conn.execute("SELECT seq, rollout_id, kind, data, at FROM entries ORDER BY seq").fetchall()
    for seq, rid, kind, data, at in rows:
        entry = Entry(seq, RolloutId(rid), EntryKind(kind), json.loads(data), at)
        assert parse(entry).body.to_json() == entry.data


def test_what_the_engine_writes_is_the_format_readers_knew(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, analysis=FakeAnalysis([Verdict.PASS, Verdict.FAIL]))
    outcome = rig.start()
    assert outcome.phase is Phase.ROLLED_BACK
    raw = rig.entries(outcome.rollout_id)
    # The on-disk payloads keep their string keys: an older Gantry (or a script) reads them unchanged.
    intents = [e.data for e in raw if e.kind is EntryKind.INTENT]
    assert intents[:2] == [{"action": "prepare", "image": "app:2.0"}, {"action": "set_weight", "step": 0, "weight": 10}]
    decision = next(e.data for e in raw if e.kind is EntryKind.DECISION)
    assert set(decision) == {"decision", "reason", "override", "step"}
    for entry in raw:
        assert parse(entry).body.to_json() == entry.data, entry.kind
    typed = parse_all(raw)
    assert replay(typed) == outcome.state
    assert [b.body.effect for b in typed if isinstance(b.body, Intended)][1] == SetWeight(weight=10, step=0)


@pytest.mark.parametrize(("kind", "data", "field"), [
    (EntryKind.INTENT, {"action": "teleport"}, "action"),
    (EntryKind.APPLIED, {"action": "set_weight", "step": 0}, "weight"),
    (EntryKind.APPLIED, {"action": "switch", "color": "purple"}, "color"),
    (EntryKind.ANALYSIS, {"verdict": "maybe"}, "verdict"),
    (EntryKind.OPERATOR, {"action": "note"}, "action"),
    (EntryKind.CHECKPOINT, {"state": [1, 2]}, "state"),
    (EntryKind.STARTED, {"stack": "dev"}, "service"),
    (EntryKind.DECISION, {}, "decision"),
])
def test_a_corrupt_entry_is_named_with_its_field(kind: EntryKind, data: JSONObject, field: str) -> None:
    with pytest.raises(CorruptEntry, match=rf"^journal entry 7 \({kind.value}\) of rollout r-old: .*{field}"):
        parse(Entry(7, RID, kind, data, 0.0))


def test_bodies_are_typed_values() -> None:
    applied = parse(Entry(3, RID, EntryKind.APPLIED, {"action": "switch", "color": "green", "step": 1}, 0.0)).body
    assert applied == Applied(effect=Switch(color=Color.GREEN, step=1))
    failed = parse(Entry(4, RID, EntryKind.ERROR, {"action": "checkpoint", "message": "boom"}, 0.0)).body
    assert isinstance(failed, Failed) and failed.action is EffectKind.CHECKPOINT and failed.type is None
    op = parse(Entry(5, RID, EntryKind.OPERATOR, {"action": "promote", "skip_analysis": True}, 0.0)).body
    assert isinstance(op, Requested) and op.skip_analysis and op.reason == ""
    assert Decided(decision=Decision.HOLD).to_json() == {"decision": "hold"}
