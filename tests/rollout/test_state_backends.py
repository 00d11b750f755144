"""The Journal and Lock protocols on both backends: SQLite and DynamoDB/S3 (a real moto server on 127.0.0.1).

Every behaviour the engine relies on is checked on both: compare-and-append, dense per-rollout sequences
under concurrent writers, the summary row following the phase, quarantine, leases. DynamoDB-only: the
fencing token (a holder whose lease was taken over cannot write again), checkpoints in S3 encrypted and
checked, and the bounds of an inline item.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto_state import Moto, aws_env, moto_server

from components.spec import Strategy
from infra.errors import InputError
from infra.rollout.clock import FakeClock
from infra.rollout.errors import StackLocked
from infra.rollout.journal import EntryKind, JournalConflict, Quarantine, RolloutRecord, StateJournal, UnknownRollout
from infra.rollout.provenance import Provenance, Source
from infra.rollout.seams import Phase, RolloutId, StackName
from infra.rollout.state import open_state
from infra.rollout.state.dynamodb import MAX_INLINE, DynamoJournal, LeaseLost, StateUnavailable

STACK = StackName("prod")


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as server, aws_env(server):
        yield server


@pytest.fixture(params=["sqlite", "dynamodb"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return "sqlite"
    moto: Moto = request.getfixturevalue("moto")
    return moto.state_url()


@pytest.fixture
def journal(state_url: str, tmp_path: Path) -> Iterator[StateJournal]:
    j = open_state(state_url, tmp_path)
    yield j
    j.close()


def record(rid: str = "r-1", stack: StackName = STACK, created: float = 100.0, phase: Phase = Phase.PENDING
           ) -> RolloutRecord:
    return RolloutRecord(RolloutId(rid), stack, "web", "app:2", Strategy.CANARY, phase, created, created,
                         Provenance(commit="abc123", committed_at=90.0, source=Source.FLAG))


def test_create_append_and_read_back(journal: StateJournal) -> None:
    first = journal.create(record(), {"plan": {"steps": [10, 100]}})
    second = journal.append(first.rollout_id, EntryKind.INTENT, {"action": "set_weight", "weight": 10}, 101.0,
                            phase=Phase.PROGRESSING)
    assert second.seq > first.seq
    entries = journal.entries(first.rollout_id)
    assert [(e.kind, e.data, e.at) for e in entries] == [
        (EntryKind.STARTED, {"plan": {"steps": [10, 100]}}, 100.0),
        (EntryKind.INTENT, {"action": "set_weight", "weight": 10}, 101.0)]
    assert journal.entries(first.rollout_id, after=first.seq) == entries[1:]
    got = journal.get(first.rollout_id)
    provenance = Provenance(commit="abc123", committed_at=90.0, source=Source.FLAG)
    assert (got.phase, got.updated_at, got.provenance) == (Phase.PROGRESSING, 101.0, provenance)
    assert [r.id for r in journal.active(STACK)] == [first.rollout_id]


def test_unknown_rollout_is_an_input_error_naming_the_backend(journal: StateJournal) -> None:
    with pytest.raises(UnknownRollout, match="rollout id must be one recorded in"):
        journal.get(RolloutId("r-nope"))
    if isinstance(journal, DynamoJournal):  # SQLite's foreign key refuses it too (an IntegrityError, as before)
        with pytest.raises(UnknownRollout):
            journal.append(RolloutId("r-nope"), EntryKind.HOOK, {}, 1.0)


def test_compare_and_append_refuses_a_stale_expectation_and_writes_nothing(journal: StateJournal) -> None:
    first = journal.create(record(), {})
    operator = journal.append(first.rollout_id, EntryKind.OPERATOR, {"action": "abort"}, 101.0)
    with pytest.raises(JournalConflict):
        journal.append(first.rollout_id, EntryKind.DECISION, {"decision": "advance"}, 102.0,
                       phase=Phase.PROMOTING, expect_last=first.seq)
    entries = journal.entries(first.rollout_id)
    assert [e.kind for e in entries] == [EntryKind.STARTED, EntryKind.OPERATOR]
    assert journal.get(first.rollout_id).phase is Phase.PENDING  # the refused phase change did not land
    ok = journal.append(first.rollout_id, EntryKind.DECISION, {"decision": "rollback"}, 103.0,
                        phase=Phase.ROLLING_BACK, expect_last=operator.seq)
    assert ok.seq > operator.seq


def test_terminal_phase_leaves_active_and_quarantine_lands_with_it(journal: StateJournal) -> None:
    first = journal.create(record(), {})
    q = Quarantine(STACK, "web", "app:2", first.rollout_id, 105.0, "error rate 20%")
    journal.append(first.rollout_id, EntryKind.PHASE, {"phase": "rolled_back"}, 105.0, phase=Phase.ROLLED_BACK,
                   quarantine=q)
    assert journal.active(STACK) == []
    assert journal.quarantined(STACK, "web", "app:2") == q
    assert journal.quarantined(STACK, "web", "app:3") is None
    assert journal.quarantined(StackName("dev"), "web", "app:2") is None


def test_history_newest_first_per_stack_and_overall(journal: StateJournal) -> None:
    for i, stack in enumerate(["prod", "dev", "prod"]):
        journal.create(record(f"r-{i}", StackName(stack), created=100.0 + i), {})
    assert [r.id for r in journal.history(STACK)] == ["r-2", "r-0"]
    assert [r.id for r in journal.history()] == ["r-2", "r-1", "r-0"]
    assert [r.id for r in journal.history(limit=2)] == ["r-2", "r-1"]


def test_concurrent_writers_never_share_a_sequence_number(state_url: str, tmp_path: Path) -> None:
    # Four writers, each with its own backend instance (a runner each), appending without expectations.
    setup = open_state(state_url, tmp_path)
    rid = setup.create(record(), {}).rollout_id
    errors: list[BaseException] = []
    written: list[tuple[int, str]] = []
    mutex = threading.Lock()

    def writer(name: str) -> None:
        j = open_state(state_url, tmp_path)
        try:
            for i in range(15):
                e = j.append(rid, EntryKind.HOOK, {"w": name, "i": i}, 200.0)
                with mutex:
                    written.append((e.seq, f"{name}{i}"))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            j.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    entries = setup.entries(rid)
    setup.close()
    assert len(entries) == 1 + 60
    seqs = [e.seq for e in entries]
    assert seqs == sorted(set(seqs))  # unique and ordered
    by_seq = {e.seq: f"{e.data['w']}{e.data['i']}" for e in entries[1:]}
    assert sorted(written) == sorted(by_seq.items())  # every acknowledged write is there, at its seq
    for name in "abcd":  # each writer's own order is kept
        mine = [e.data["i"] for e in entries[1:] if e.data["w"] == name]
        assert mine == list(range(15))


def test_lease_blocks_a_second_runner_until_it_expires(state_url: str, tmp_path: Path) -> None:
    clock = FakeClock()
    a = open_state(state_url, tmp_path).lease_lock(clock, ttl=30.0)
    b = open_state(state_url, tmp_path).lease_lock(clock, ttl=30.0, host="runner-b")  # another machine: expiry only
    lease = a.acquire(STACK, RolloutId("r-a"))
    with pytest.raises(StackLocked) as info:
        b.acquire(STACK, RolloutId("r-b"))
    assert info.value.rollout_id == "r-a" and "r-a" in str(info.value)
    assert a.holder(STACK) == lease
    clock.advance(20.0)
    lease = a.heartbeat(lease)
    clock.advance(20.0)  # 40 s after the start, but the heartbeat moved the expiry
    with pytest.raises(StackLocked):
        b.acquire(STACK, RolloutId("r-b"))
    clock.advance(11.0)
    taken = b.acquire(STACK, RolloutId("r-b"))
    assert taken.rollout_id == "r-b"
    with pytest.raises(StackLocked):
        a.heartbeat(lease)  # the old holder learns it lost the stack
    a.release(lease)  # a stale release must not free the new holder's lease
    held = b.holder(STACK)
    assert held is not None and held.rollout_id == "r-b"
    b.release(taken)
    assert b.holder(STACK) is None


# --------------------------------------------------------------------------- DynamoDB only


def test_fencing_token_grows_and_a_stale_holder_cannot_write(moto: Moto, tmp_path: Path) -> None:
    url = moto.state_url()
    clock = FakeClock()
    ja, jb = open_state(url, tmp_path), open_state(url, tmp_path)
    la, lb = ja.lease_lock(clock, ttl=30.0), jb.lease_lock(clock, ttl=30.0, host="runner-b")
    lease_a = la.acquire(STACK, RolloutId("r-1"))
    first = ja.create(record(), {})
    ja.append(first.rollout_id, EntryKind.INTENT, {"action": "set_weight"}, 101.0)
    clock.advance(31.0)  # A stalls (a long GC pause, a frozen VM) past its lease; B resumes the rollout
    lease_b = lb.acquire(STACK, RolloutId("r-1"))
    assert lease_b.token > lease_a.token
    jb.append(first.rollout_id, EntryKind.DECISION, {"decision": "rollback"}, 132.0, phase=Phase.ROLLING_BACK)
    before = jb.entries(first.rollout_id)
    with pytest.raises(LeaseLost) as info:  # A wakes up and tries its next intent: refused, exit 3
        ja.append(first.rollout_id, EntryKind.INTENT, {"action": "promote"}, 133.0, phase=Phase.PROMOTING)
    assert info.value.exit_code == 3 and "runner-b" in str(info.value)
    with pytest.raises(StackLocked):  # ...and again: its fence is gone, but B still holds the stack
        la.acquire(STACK, RolloutId("r-1"))
    assert jb.entries(first.rollout_id) == before
    assert jb.get(first.rollout_id).phase is Phase.ROLLING_BACK
    # B's own writes carry B's token.
    raw = moto.client("dynamodb").query(
        TableName=url.split("//")[1].split("?")[0], KeyConditionExpression="pk = :p AND begins_with(sk, :e)",
        ExpressionAttributeValues={":p": {"S": f"gantry#rollout#{first.rollout_id}"}, ":e": {"S": "e#"}})
    tokens = [int(i["token"]["N"]) for i in raw["Items"]]
    assert tokens == [lease_a.token, lease_a.token, lease_b.token]
    # A release and a new acquisition still give a greater token (the counter survives release).
    lb.release(lease_b)
    assert la.acquire(STACK, RolloutId("r-2")).token == lease_b.token + 1


def test_operator_writes_need_no_lease(moto: Moto, tmp_path: Path) -> None:
    url = moto.state_url()
    clock = FakeClock()
    engine_journal, operator_journal = open_state(url, tmp_path), open_state(url, tmp_path)
    engine_journal.lease_lock(clock).acquire(STACK, RolloutId("r-1"))
    first = engine_journal.create(record(), {})
    op = operator_journal.append(first.rollout_id, EntryKind.OPERATOR, {"action": "abort"}, 101.0,
                                 expect_last=first.seq)
    with pytest.raises(JournalConflict):  # the engine's decision on the old state loses to the abort
        engine_journal.append(first.rollout_id, EntryKind.DECISION, {"decision": "advance"}, 102.0,
                              expect_last=first.seq)
    assert [e.seq for e in engine_journal.entries(first.rollout_id)] == [first.seq, op.seq]


def test_checkpoints_go_to_s3_encrypted_and_are_checked(moto: Moto, tmp_path: Path) -> None:
    url = moto.state_url()
    table = url.split("//")[1].split("?")[0]
    bucket = url.split("checkpoints=s3://")[1].split("/")[0]
    j = open_state(url, tmp_path)
    first = j.create(record(), {})
    body = {"state": {"deployment": {"resources": ["x" * 1000] * 600}, "config": {"password": "[secret]"}}}
    cp = j.append(first.rollout_id, EntryKind.CHECKPOINT, body, 101.0, phase=Phase.PROGRESSING)
    assert j.entries(first.rollout_id)[-1].data == body  # 600 KB: over DynamoDB's item limit, fine in S3
    s3 = moto.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(keys) == 1 and keys[0].startswith(f"rollouts/gantry/{first.rollout_id}/")
    assert s3.head_object(Bucket=bucket, Key=keys[0])["ServerSideEncryption"] == "AES256"
    item = moto.client("dynamodb").get_item(TableName=table, Key={
        "pk": {"S": f"gantry#rollout#{first.rollout_id}"}, "sk": {"S": f"e#{cp.seq:012d}"}}, ConsistentRead=True)
    assert item["Item"]["data"]["S"] == "{}" and item["Item"]["blob"]["S"] == keys[0]
    s3.put_object(Bucket=bucket, Key=keys[0], Body=json.dumps({"state": "tampered"}).encode())
    with pytest.raises(StateUnavailable, match="does not match the SHA-256"):
        j.entries(first.rollout_id)


def test_checkpoint_kms_key_is_requested_when_named(moto: Moto, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    key = moto.client("kms").create_key()["KeyMetadata"]["KeyId"]
    monkeypatch.setenv("GANTRY_STATE_KMS_KEY", key)
    url = moto.state_url()
    bucket = url.split("checkpoints=s3://")[1].split("/")[0]
    j = open_state(url, tmp_path)
    first = j.create(record(), {})
    j.append(first.rollout_id, EntryKind.CHECKPOINT, {"state": {}}, 101.0)
    s3 = moto.client("s3")
    (obj,) = s3.list_objects_v2(Bucket=bucket)["Contents"]
    head = s3.head_object(Bucket=bucket, Key=obj["Key"])
    assert head["ServerSideEncryption"] == "aws:kms" and key in head["SSEKMSKeyId"]


def test_an_entry_too_big_for_an_item_needs_s3_and_writes_nothing(moto: Moto, tmp_path: Path) -> None:
    j = open_state(moto.state_url(checkpoints=False), tmp_path)
    first = j.create(record(), {})
    with pytest.raises(InputError, match="checkpoints=s3://"):
        j.append(first.rollout_id, EntryKind.CHECKPOINT, {"state": "x" * (MAX_INLINE + 1)}, 101.0)
    assert len(j.entries(first.rollout_id)) == 1


def test_namespaces_keep_projects_apart(moto: Moto, tmp_path: Path) -> None:
    url = moto.state_url()
    one, two = open_state(url + "&namespace=one", tmp_path), open_state(url + "&namespace=two", tmp_path)
    one.create(record(), {})
    assert two.history() == [] and two.active(STACK) == []
    two.lease_lock(FakeClock()).acquire(STACK, RolloutId("r-9"))  # the same stack name, another project
    assert one.lease_lock(FakeClock()).holder(STACK) is None


def test_a_missing_table_is_one_line_naming_the_fix(moto: Moto, tmp_path: Path) -> None:
    j = open_state("dynamodb://no-such-table?region=us-east-1", tmp_path)
    assert isinstance(j, DynamoJournal)
    with pytest.raises(InputError, match=r"table no-such-table must exist in us-east-1.*RolloutState"):
        j.history()


class _LostAnswers:
    """A client whose transactions commit, then are sent again, as the SDK does when a response times out."""

    def __init__(self, client: object) -> None:
        self._client = client

    def __getattr__(self, name: str) -> object:
        return getattr(self._client, name)

    def transact_write_items(self, **kwargs: object) -> object:
        self._client.transact_write_items(**kwargs)  # type: ignore[attr-defined]  # committed; the answer is lost
        return self._client.transact_write_items(**kwargs)  # type: ignore[attr-defined]  # the SDK's retry


def test_a_commit_whose_answer_was_lost_is_never_written_twice(moto: Moto, tmp_path: Path) -> None:
    j = open_state(moto.state_url(), tmp_path)
    assert isinstance(j, DynamoJournal)
    j.backend.client = _LostAnswers(j.backend.client)
    first = j.create(record(), {"plan": 1})
    j.append(first.rollout_id, EntryKind.HOOK, {"n": 1}, 101.0)
    last = j.append(first.rollout_id, EntryKind.DECISION, {"n": 2}, 102.0, expect_last=2)
    j.append(first.rollout_id, EntryKind.CHECKPOINT, {"state": {"n": 3}}, 103.0)
    assert [(e.seq, e.kind) for e in j.entries(first.rollout_id)] == [
        (1, EntryKind.STARTED), (2, EntryKind.HOOK), (3, EntryKind.DECISION), (4, EntryKind.CHECKPOINT)]
    assert last.seq == 3


def test_an_engine_whose_lease_was_taken_over_stops_before_its_next_effect(moto: Moto, tmp_path: Path) -> None:
    from fakes import FakeAnalysis, FakeTarget

    from infra.rollout.engine import Engine
    from infra.rollout.scheduler import canary_plan

    url = moto.state_url()
    clock = FakeClock()
    rival_journal = open_state(url, tmp_path)
    rival = rival_journal.lease_lock(clock, ttl=30.0, host="runner-b")
    taken: list[int] = []

    class StallingTarget(FakeTarget):
        def set_weights(self, canary_weight: int) -> None:
            super().set_weights(canary_weight)
            if not taken:  # A freezes right after its first effect; meanwhile its lease runs out and B takes it
                clock.advance(31.0)
                rid = rival_journal.history(STACK)[0].id
                taken.append(rival.acquire(STACK, rid).token)

    target = StallingTarget(Strategy.CANARY, "app:1.0")
    journal = open_state(url, tmp_path)
    engine = Engine(target=target, analysis=FakeAnalysis(), journal=journal, lock=journal.lease_lock(clock, ttl=30.0),
                    clock=clock, poll=30.0)
    with pytest.raises(StackLocked) as info:
        engine.start(stack=STACK, service="web", image="app:2.0", plan=canary_plan([10, 50, 100], interval=30.0,
                                                                                     threshold=1))
    assert "runner-b" in str(info.value)
    assert target.count("set_weights") == 1  # no effect after the lease was lost
    assert target.count("promote") == 0 and target.count("revert") == 0
    rid = rival_journal.history(STACK)[0].id
    kinds = [e.kind for e in rival_journal.entries(rid)]
    assert kinds[-1] is EntryKind.INTENT  # A's "applied" for the effect was refused: B's resume sees it pending
    held = rival.holder(STACK)
    assert held is not None and held.token == taken[0] and held.host == "runner-b"


def test_project_journal_merges_this_machines_sqlite_with_the_shared_table(moto: Moto, tmp_path: Path) -> None:
    from infra.rollout.journal import SqliteJournal
    from infra.rollout.state import open_for_rollout, open_project

    url = moto.state_url()
    (tmp_path / "stacks").mkdir()
    (tmp_path / "Pulumi.yaml").write_text("name: shop\nruntime: python\nstackConfigDir: stacks\n")
    (tmp_path / "stacks" / "Pulumi.prod.yaml").write_text(f'config:\n  gantry:rollout:\n    state: "{url}"\n')
    local = open_state("sqlite", tmp_path)
    shared = open_state(url, tmp_path)
    local.create(record("r-old", StackName("dev"), created=100.0), {})
    shared.create(record("r-new", STACK, created=200.0), {})
    merged = open_project(tmp_path)
    assert [r.id for r in merged.history()] == ["r-new", "r-old"]
    assert [r.id for r in merged.active(STACK)] == ["r-new"]
    merged.append(RolloutId("r-new"), EntryKind.OPERATOR, {"action": "abort"}, 201.0)  # routed to its owner
    assert [e.kind for e in shared.entries(RolloutId("r-new"))] == [EntryKind.STARTED, EntryKind.OPERATOR]
    with pytest.raises(UnknownRollout):
        merged.get(RolloutId("r-none"))
    with pytest.raises(InputError, match="--stack"):
        merged.lease_lock(FakeClock())
    assert isinstance(open_for_rollout(tmp_path, RolloutId("r-old")), SqliteJournal)
    assert isinstance(open_for_rollout(tmp_path, RolloutId("r-new")), DynamoJournal)
    merged.close()
    local.close()
