"""Shared rollout state: journal and lease in one DynamoDB table, checkpoint bodies in S3 (encrypted).

Opened by ``infra.rollout.state.open_backend`` for a stack whose ``gantry:rollout.state`` is a
``dynamodb://`` URL; the engine, the CLI and the drills use it through the same ``Journal`` and
``Lock`` protocols as the SQLite backend. Every pipeline runner that names the same table sees the
same rollouts, leases and checkpoints.

Layout (partition key ``pk``, sort key ``sk``, both strings; ``<ns>`` is the namespace):

- ``<ns>#rollout#<id>`` / ``meta``: the summary row (stack, service, image, phase, times, commit);
- ``<ns>#rollout#<id>`` / ``e#<seq:012>``: one item per entry, key (rollout id, sequence);
- ``<ns>#stack#<stack>`` and ``<ns>#all`` / ``<created_at>#<id>``: the history indexes;
- ``<ns>#active#<stack>`` / ``<id>``: unfinished rollouts (deleted with the terminal phase);
- ``<ns>#quarantine#<stack>`` / ``<service>|<image>``: rolled-back versions;
- ``<ns>#lock#<stack>`` / ``lease``: the lease, with its fencing token.

Indexes are items in the table, not GSIs, because a GSI can only be read eventually consistently;
every read here is strongly consistent (``ConsistentRead``).

Sequence numbers: an append puts ``e#<last+1>`` under ``attribute_not_exists(pk)``, so two writers
can never take the same number; the loser re-reads (a compare-and-append with ``expect_last`` raises
``JournalConflict`` instead, exactly like SQLite). The entry, the summary row's phase, the active
index and a quarantine are written by one ``TransactWriteItems`` (all or nothing). Each transaction
carries a ``ClientRequestToken``, so the SDK's own retry of a commit whose answer was lost is a no-op,
not a second write that would look like a conflict.

Lease and fencing: the lock item holds the holder, its expiry and ``token``, a counter incremented by
every acquisition (a conditional write on the state that was read, so two runners cannot both take
it). Release keeps the counter. While this process holds a stack's lease, every journal write for
that rollout adds a ``ConditionCheck`` on the lock item (``token`` unchanged and still held) to its
transaction: a holder whose lease was taken over has its next write refused with ``LeaseLost``
(a ``StackLocked``, exit 3). The engine journals an intent before every effect, so a holder that
lost its lease stops before its next effect. Operator writes (``rollout abort`` from another runner)
hold no lease and carry no token: they never act on the target, and compare-and-append orders them.

A holder on another runner is judged by its lease's expiry alone. On the same machine (same runner
name and boot id) a dead pid is taken over at once, as with SQLite. ``GANTRY_RUNNER`` names this
runner in leases (e.g. a CI job id); it defaults to the host name.

Checkpoints: with ``checkpoints=s3://bucket/prefix`` a CHECKPOINT entry's body is put to S3 first
(``ServerSideEncryption`` requested on every put, KMS when ``GANTRY_STATE_KMS_KEY`` names a key, else
AES256) and the journal item holds its key and SHA-256, checked on read. The body is what the SQLite
journal would hold: the target already redacted the stack's secrets from it. Without S3 a checkpoint
is inline and must fit DynamoDB's 400 KB item.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

from components.spec import Strategy
from infra.errors import InputError, TemporaryError
from infra.rollout.errors import StackLocked
from infra.rollout.journal import (
    AppendHook,
    Entry,
    EntryKind,
    JournalConflict,
    Quarantine,
    RolloutRecord,
    UnknownRollout,
)
from infra.rollout.lock import DEFAULT_TTL, Lease, holder_alive, iso, process_identity
from infra.rollout.provenance import Provenance, Source
from infra.rollout.seams import Clock, JSONObject, Phase, RolloutId, StackName
from infra.settings.state_url import DynamoState

AttrMap = dict[str, dict[str, Any]]
"""A DynamoDB item in the low-level client's attribute-value form."""

MAX_INLINE = 350_000
"""Bytes of entry data kept inline; DynamoDB refuses items over 400 KB (keys and attributes included)."""
ENV_RUNNER = "GANTRY_RUNNER"
ENV_KMS_KEY = "GANTRY_STATE_KMS_KEY"
_APPEND_ATTEMPTS = 200


class LeaseLost(StackLocked):
    """A journal write carried a fencing token that is no longer the lease's: another runner took the stack."""


class StateUnavailable(TemporaryError):
    """DynamoDB or S3 could not be reached or refused the request; nothing was written."""


def runner_name() -> str:
    return os.environ.get(ENV_RUNNER) or socket.gethostname()


def _s(value: str) -> dict[str, Any]:
    return {"S": value}


def _n(value: float | int) -> dict[str, Any]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def _get_s(item: AttrMap, key: str, default: str = "") -> str:
    return str(item[key]["S"]) if key in item else default


def _get_n(item: AttrMap, key: str, default: float = 0.0) -> float:
    return float(item[key]["N"]) if key in item else default


def _seq_key(seq: int) -> str:
    return f"e#{seq:012d}"


def _when_key(created_at: float, rid: str) -> str:
    return f"{created_at:020.6f}#{rid}"


_clients: dict[tuple[int, str, str, str], Any] = {}
_clients_mutex = threading.Lock()


def _client(service: str, region: str) -> Any:
    """This process's SDK client for (service, region, endpoint): built once (building one costs ~0.5 s of CPU).

    Clients are thread-safe; keyed by pid so a forked child never uses its parent's connection pool.
    """
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    endpoint = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or os.environ.get("AWS_ENDPOINT_URL") or ""
    key = (os.getpid(), service, region, endpoint)
    with _clients_mutex:
        if key not in _clients:
            cfg = Config(connect_timeout=10.0, read_timeout=10.0, retries={"max_attempts": 4, "mode": "standard"})
            _clients[key] = boto3.client(service, region_name=region, config=cfg)
        return _clients[key]


class DynamoBackend:
    """One table (and optionally one bucket) as a rollout state backend; shares fences between its parts."""

    def __init__(self, state: DynamoState, namespace: str) -> None:
        self.state = state
        self.ns = state.namespace or namespace
        self.client: Any = _client("dynamodb", state.region)
        self.s3: Any = _client("s3", state.region) if state.checkpoints else None
        self.fences: dict[StackName, tuple[RolloutId, int]] = {}
        """Leases this process holds through this backend: stack -> (rollout, token). Journal writes read it."""
        self.fence_mutex = threading.Lock()

    def describe(self) -> str:
        return f"{self.state} (namespace {self.ns})"

    def journal(self, on_append: AppendHook | None = None) -> DynamoJournal:
        return DynamoJournal(self, on_append=on_append)

    def lock(self, clock: Clock, *, ttl: float = DEFAULT_TTL, holder: str | None = None, host: str | None = None,
             pid: int | None = None) -> DynamoLock:
        return DynamoLock(self, clock, ttl=ttl, holder=holder, host=host, pid=pid)

    # ------------------------------------------------------------------ keys

    def rollout_pk(self, rid: str) -> str:
        return f"{self.ns}#rollout#{rid}"

    def lock_key(self, stack: str) -> AttrMap:
        return {"pk": _s(f"{self.ns}#lock#{stack}"), "sk": _s("lease")}

    # ------------------------------------------------------------------ calls

    def call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        """One SDK call; AWS errors become typed Gantry errors (the table's name, never a credential)."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError  # type: ignore[import-untyped]

        try:
            return fn(**kwargs)
        except NoCredentialsError:
            raise InputError(f"AWS credentials must be available for rollout.state {self.state}, but none were "
                             "found; configure them as for `pulumi up` (AWS_PROFILE, a role, ...)") from None
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "ResourceNotFoundException":
                raise InputError(f"rollout.state table {self.state.table} must exist in {self.state.region}, "
                                 "but it was not found; create it with the RolloutState component or point "
                                 "rollout.state at an existing table") from None
            if code in ("NoSuchBucket",):
                raise InputError(f"rollout.state checkpoints bucket must exist, but {self.state.checkpoints} "
                                 "was not found") from None
            raise
        except BotoCoreError as exc:
            raise StateUnavailable(f"{what} on {self.describe()} failed: {exc}") from None

    def get_item(self, key: AttrMap) -> AttrMap | None:
        found = self.call("GetItem", self.client.get_item, TableName=self.state.table, Key=key, ConsistentRead=True)
        item = found.get("Item")
        return cast(AttrMap, item) if item else None

    def query(self, **kwargs: Any) -> Iterator[AttrMap]:
        """Every item of a strongly consistent query, page after page."""
        args: dict[str, Any] = {"TableName": self.state.table, "ConsistentRead": True, **kwargs}
        limit = kwargs.get("Limit")
        seen = 0
        while True:
            page = self.call("Query", self.client.query, **args)
            for item in page.get("Items", []):
                yield cast(AttrMap, item)
                seen += 1
                if limit is not None and seen >= limit:
                    return
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            args["ExclusiveStartKey"] = last

    def batch_get(self, keys: Sequence[AttrMap]) -> list[AttrMap]:
        out: list[AttrMap] = []
        for i in range(0, len(keys), 100):
            pending: list[AttrMap] = list(keys[i:i + 100])
            for attempt in range(20):
                if not pending:
                    break
                page = self.call("BatchGetItem", self.client.batch_get_item, RequestItems={
                    self.state.table: {"Keys": pending, "ConsistentRead": True}})
                out.extend(cast(list[AttrMap], page.get("Responses", {}).get(self.state.table, [])))
                pending = cast(list[AttrMap], page.get("UnprocessedKeys", {}).get(self.state.table, {})
                               .get("Keys", []))
                if pending:
                    time.sleep(min(1.0, 0.02 * 2 ** attempt))
            if pending:
                raise StateUnavailable(f"BatchGetItem on {self.describe()} left {len(pending)} keys unprocessed")
        return out

    def fence_for(self, stack: StackName, rid: RolloutId) -> int | None:
        with self.fence_mutex:
            held = self.fences.get(stack)
        return held[1] if held is not None and held[0] == rid else None

    def lost(self, stack: StackName, rid: RolloutId) -> LeaseLost:
        """The error for a holder whose lease is gone, naming whoever holds the stack now; drops our fence."""
        with self.fence_mutex:
            self.fences.pop(stack, None)
        current = self.get_item(self.lock_key(stack))
        if current is None or not current.get("held", {}).get("BOOL", False):
            return LeaseLost(stack, "nobody (our lease was released)", runner_name(), None, None, rollout_id=rid)
        return LeaseLost(stack, f"{_get_s(current, 'holder')} (rollout {_get_s(current, 'rollout_id')})",
                         _get_s(current, "host"), int(_get_n(current, "pid")), iso(_get_n(current, "expires_at")),
                         rollout_id=_get_s(current, "rollout_id"))

    # ------------------------------------------------------------------ checkpoints

    def put_blob(self, rid: str, body: bytes) -> tuple[str, str]:
        """Write a checkpoint body to S3, encrypted at rest; returns (key, sha256)."""
        assert self.state.checkpoints is not None and self.s3 is not None
        loc = self.state.checkpoints
        digest = hashlib.sha256(body).hexdigest()
        key = "/".join(p for p in (loc.prefix, self.ns, rid, f"{uuid.uuid4().hex}.json") if p)
        kms = os.environ.get(ENV_KMS_KEY)
        sse: dict[str, str] = ({"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms} if kms
                               else {"ServerSideEncryption": "AES256"})
        self.call("PutObject", self.s3.put_object, Bucket=loc.bucket, Key=key, Body=body,
                  ContentType="application/json", ChecksumAlgorithm="SHA256", **sse)
        return key, digest

    def get_blob(self, key: str, digest: str) -> bytes:
        assert self.state.checkpoints is not None and self.s3 is not None
        found = self.call("GetObject", self.s3.get_object, Bucket=self.state.checkpoints.bucket, Key=key)
        body = cast(bytes, found["Body"].read())
        if hashlib.sha256(body).hexdigest() != digest:
            raise StateUnavailable(f"checkpoint s3://{self.state.checkpoints.bucket}/{key} does not match the "
                                   "SHA-256 its journal entry recorded")
        return body


def _cancel_reasons(exc: Exception) -> list[str]:
    response = cast(Mapping[str, Any], getattr(exc, "response", {}))
    reasons = response.get("CancellationReasons") or []
    return [str(r.get("Code", "None")) for r in reasons]


class DynamoJournal:
    """The shared journal: the ``Journal`` protocol over one DynamoDB table (see the module docstring)."""

    def __init__(self, backend: DynamoBackend, *, on_append: AppendHook | None = None) -> None:
        self.backend = backend
        self._on_append = on_append
        self._appends = 0
        self._stacks: dict[RolloutId, StackName] = {}
        self._last: dict[RolloutId, int] = {}
        """The newest seq this journal saw per rollout: a guess for the next append, checked by its condition."""

    def __str__(self) -> str:
        return self.backend.describe()

    def lease_lock(self, clock: Clock, *, ttl: float | None = None, pid: int | None = None,
                   host: str | None = None) -> DynamoLock:
        """The lease lock that fences this journal's writes (same backend, same process)."""
        return self.backend.lock(clock, ttl=DEFAULT_TTL if ttl is None else ttl, pid=pid, host=host)

    # ------------------------------------------------------------------ writes

    def _hook(self, moment: str, kind: EntryKind) -> None:
        if self._on_append is not None:
            self._on_append(moment, kind, self._appends)

    def _entry_item(self, rid: RolloutId, seq: int, kind: EntryKind, text: str, at: float,
                    token: int | None) -> AttrMap:
        item: AttrMap = {"pk": _s(self.backend.rollout_pk(rid)), "sk": _s(_seq_key(seq)), "kind": _s(kind.value),
                         "at": _n(at), "writer": _s(runner_name()), "wid": _s(uuid.uuid4().hex)}
        if token is not None:
            item["token"] = _n(token)
        if kind is EntryKind.CHECKPOINT and self.backend.state.checkpoints is not None:
            key, digest = self.backend.put_blob(rid, text.encode())
            item.update(blob=_s(key), sha256=_s(digest), data=_s("{}"))
        else:
            if len(text.encode()) > MAX_INLINE:
                raise InputError(f"rollout.state must name checkpoints=s3://<bucket>/<prefix> for entries over "
                                 f"{MAX_INLINE} bytes, but a {kind.value} entry of {len(text.encode())} bytes "
                                 f"was to be written to {self.backend.state}")
            item["data"] = _s(text)
        return item

    def _ours(self, rid: RolloutId, seq: int, wid: str) -> bool:
        """Whether the entry at ``seq`` is this very write: its answer was lost and a retry found it in place.

        A transaction whose response times out is retried by the SDK; DynamoDB makes that retry a no-op
        through the request token, but a fake (or a token older than ten minutes) may instead refuse it
        because the entry now exists. Without this check the write would be repeated at the next seq.
        """
        item = self.backend.get_item({"pk": _s(self.backend.rollout_pk(rid)), "sk": _s(_seq_key(seq))})
        return item is not None and _get_s(item, "wid") == wid

    def _fence(self, stack: StackName, rid: RolloutId) -> tuple[int | None, list[dict[str, Any]]]:
        token = self.backend.fence_for(stack, rid)
        if token is None:
            return None, []
        return token, [{"ConditionCheck": {
            "TableName": self.backend.state.table, "Key": self.backend.lock_key(stack),
            "ConditionExpression": "#t = :t AND held = :yes AND rollout_id = :r",
            "ExpressionAttributeNames": {"#t": "token"},
            "ExpressionAttributeValues": {":t": _n(token), ":yes": {"BOOL": True}, ":r": _s(rid)}}}]

    def _transact(self, items: list[dict[str, Any]]) -> list[str] | None:
        """Run one transaction; None when it committed, else the per-item cancellation codes."""
        from botocore.exceptions import ClientError

        try:
            self.backend.call("TransactWriteItems", self.backend.client.transact_write_items, TransactItems=items,
                              ClientRequestToken=uuid.uuid4().hex)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "TransactionCanceledException":
                return _cancel_reasons(exc) or ["Unknown"]
            if code in ("TransactionConflictException", "TransactionInProgressException",
                        "ProvisionedThroughputExceededException", "ThrottlingException"):
                return ["TransactionConflict"]
            raise StateUnavailable(f"TransactWriteItems on {self.backend.describe()} failed: {code}") from None
        return None

    def create(self, record: RolloutRecord, started: JSONObject) -> Entry:
        self._appends += 1
        self._hook("before", EntryKind.STARTED)
        text = json.dumps(started, sort_keys=True, separators=(",", ":"))
        b, table = self.backend, self.backend.state.table
        token, fence = self._fence(record.stack, record.id)
        meta: AttrMap = {"pk": _s(b.rollout_pk(record.id)), "sk": _s("meta"), "id": _s(record.id),
                         "stack": _s(record.stack), "service": _s(record.service), "image": _s(record.image),
                         "strategy": _s(record.strategy.value), "phase": _s(record.phase.value),
                         "created_at": _n(record.created_at), "updated_at": _n(record.updated_at)}
        p = record.provenance
        if p.commit is not None:
            meta["commit_sha"] = _s(p.commit)
        if p.committed_at is not None:
            meta["committed_at"] = _n(p.committed_at)
        if p.source is not None:
            meta["commit_source"] = _s(p.source.value)
        when = _when_key(record.created_at, record.id)
        new = "attribute_not_exists(pk)"
        started = self._entry_item(record.id, 1, EntryKind.STARTED, text, record.created_at, token)
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": table, "Item": meta, "ConditionExpression": new}},
            {"Put": {"TableName": table, "ConditionExpression": new, "Item": started}},
            {"Put": {"TableName": table, "Item": {"pk": _s(f"{b.ns}#stack#{record.stack}"), "sk": _s(when),
                                                  "rid": _s(record.id)}}},
            {"Put": {"TableName": table, "Item": {"pk": _s(f"{b.ns}#all"), "sk": _s(when), "rid": _s(record.id)}}},
        ]
        if not record.phase.terminal:
            items.append({"Put": {"TableName": table, "Item": {
                "pk": _s(f"{b.ns}#active#{record.stack}"), "sk": _s(record.id), "created_at": _n(record.created_at)}}})
        items += fence  # last, so its cancellation reason is the last one
        for attempt in range(_APPEND_ATTEMPTS):
            reasons = self._transact(items)
            if reasons is None:
                break
            if fence and reasons[-1] == "ConditionalCheckFailed":
                raise self.backend.lost(record.stack, record.id)
            if "ConditionalCheckFailed" in reasons[:2]:
                if self._ours(record.id, 1, _get_s(started, "wid")):
                    break  # our own commit, whose answer was lost
                raise JournalConflict(f"rollout {record.id} already exists in {b.describe()}")
            time.sleep(min(0.5, 0.005 * 2 ** min(attempt, 7)))
        else:
            raise StateUnavailable(f"could not record rollout {record.id} in {b.describe()}: every attempt conflicted")
        self._stacks[record.id] = record.stack
        self._last[record.id] = 1
        self._hook("after", EntryKind.STARTED)
        return Entry(1, record.id, EntryKind.STARTED, cast(JSONObject, json.loads(text)), record.created_at)

    def _last_seq(self, rid: RolloutId) -> int:
        for item in self.backend.query(
                KeyConditionExpression="pk = :pk AND begins_with(sk, :e)", ScanIndexForward=False, Limit=1,
                ExpressionAttributeValues={":pk": _s(self.backend.rollout_pk(rid)), ":e": _s("e#")}):
            return int(_get_s(item, "sk")[2:])
        return 0

    def _stack_of(self, rid: RolloutId) -> StackName:
        if rid not in self._stacks:
            self._stacks[rid] = self.get(rid).stack
        return self._stacks[rid]

    def append(self, rollout_id: RolloutId, kind: EntryKind, data: JSONObject, at: float,
               *, phase: Phase | None = None, quarantine: Quarantine | None = None,
               expect_last: int | None = None) -> Entry:
        self._appends += 1
        self._hook("before", kind)
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        b, table = self.backend, self.backend.state.table
        stack = self._stack_of(rollout_id)
        token, fence = self._fence(stack, rollout_id)
        update = "SET updated_at = :at" + (", phase = :p" if phase is not None else "")
        values: dict[str, Any] = {":at": _n(at)}
        if phase is not None:
            values[":p"] = _s(phase.value)
        extra: list[dict[str, Any]] = [{"Update": {
            "TableName": table, "Key": {"pk": _s(b.rollout_pk(rollout_id)), "sk": _s("meta")},
            "UpdateExpression": update, "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeValues": values}}]
        active_key = {"pk": _s(f"{b.ns}#active#{stack}"), "sk": _s(rollout_id)}
        if phase is not None and phase.terminal:
            extra.append({"Delete": {"TableName": table, "Key": active_key}})
        if quarantine is not None:
            extra.append({"Put": {"TableName": table, "Item": {
                "pk": _s(f"{b.ns}#quarantine#{quarantine.stack}"), "sk": _s(f"{quarantine.service}|{quarantine.image}"),
                "stack": _s(quarantine.stack), "service": _s(quarantine.service), "image": _s(quarantine.image),
                "rollout_id": _s(quarantine.rollout_id), "at": _n(quarantine.at), "reason": _s(quarantine.reason)}}})
        blob_item: AttrMap | None = None
        guess = self._last.get(rollout_id)
        for attempt in range(_APPEND_ATTEMPTS):
            if expect_last is not None:
                seq = expect_last + 1
            else:
                seq = (guess if guess is not None else self._last_seq(rollout_id)) + 1
                guess = None  # a wrong guess costs one refused put; the next try reads the newest
            if blob_item is None:
                blob_item = self._entry_item(rollout_id, seq, kind, text, at, token)  # S3 put happens once
            item = dict(blob_item, sk=_s(_seq_key(seq)))
            reasons = self._transact([{"Put": {"TableName": table, "Item": item,
                                               "ConditionExpression": "attribute_not_exists(pk)"}},
                                      *extra, *fence])
            if reasons is None:
                break
            if fence and reasons[-1] == "ConditionalCheckFailed":
                raise self.backend.lost(stack, rollout_id)  # fenced: a stale holder never writes again
            if reasons[1] == "ConditionalCheckFailed":
                raise UnknownRollout(f"rollout id must be one recorded in {b.describe()}, but {rollout_id!r} "
                                     "was given")
            if reasons[0] == "ConditionalCheckFailed":
                if self._ours(rollout_id, seq, _get_s(item, "wid")):
                    break  # our own commit, whose answer was lost: never write it twice
                if expect_last is not None:
                    raise JournalConflict(f"rollout {rollout_id} has an entry newer than {expect_last}; "
                                          "read it again")
                continue  # another writer took this sequence number: read the newest and take the next
            time.sleep(min(0.5, 0.005 * 2 ** min(attempt, 7)))  # a transaction conflict: nothing was written
        else:
            raise StateUnavailable(f"could not append to rollout {rollout_id} in {b.describe()}: every attempt "
                                   "conflicted")
        self._last[rollout_id] = seq
        self._hook("after", kind)
        return Entry(seq, rollout_id, kind, cast(JSONObject, json.loads(text)), at)

    # ------------------------------------------------------------------ reads

    def entries(self, rollout_id: RolloutId, after: int = 0) -> list[Entry]:
        out: list[Entry] = []
        for item in self.backend.query(
                KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
                ExpressionAttributeValues={":pk": _s(self.backend.rollout_pk(rollout_id)),
                                           ":lo": _s(_seq_key(after + 1)), ":hi": _s(_seq_key(10 ** 12 - 1))}):
            if "blob" in item:
                text = self.backend.get_blob(_get_s(item, "blob"), _get_s(item, "sha256")).decode()
            else:
                text = _get_s(item, "data")
            out.append(Entry(int(_get_s(item, "sk")[2:]), rollout_id, EntryKind(_get_s(item, "kind")),
                             cast(JSONObject, json.loads(text)), _get_n(item, "at")))
        if out:
            self._last[rollout_id] = max(out[-1].seq, self._last.get(rollout_id, 0))
        return out

    def get(self, rollout_id: RolloutId) -> RolloutRecord:
        item = self.backend.get_item({"pk": _s(self.backend.rollout_pk(rollout_id)), "sk": _s("meta")})
        if item is None:
            raise UnknownRollout(f"rollout id must be one recorded in {self.backend.describe()}, but "
                                 f"{rollout_id!r} was given; list them with `gantry rollout history`")
        return _record(item)

    def _records(self, rids: Sequence[str]) -> list[RolloutRecord]:
        keys = [{"pk": _s(self.backend.rollout_pk(r)), "sk": _s("meta")} for r in rids]
        by_id = {r.id: r for r in (_record(i) for i in self.backend.batch_get(keys))}
        return [by_id[RolloutId(r)] for r in rids if RolloutId(r) in by_id]

    def history(self, stack: StackName | None = None, limit: int = 50) -> list[RolloutRecord]:
        pk = f"{self.backend.ns}#all" if stack is None else f"{self.backend.ns}#stack#{stack}"
        rids = [_get_s(i, "rid") for i in self.backend.query(
            KeyConditionExpression="pk = :pk", ScanIndexForward=False, Limit=limit,
            ExpressionAttributeValues={":pk": _s(pk)})]
        return self._records(rids)

    def active(self, stack: StackName) -> list[RolloutRecord]:
        pk = _s(f"{self.backend.ns}#active#{stack}")
        rids = [_get_s(i, "sk") for i in self.backend.query(KeyConditionExpression="pk = :pk",
                                                              ExpressionAttributeValues={":pk": pk})]
        records = [r for r in self._records(rids) if not r.phase.terminal]
        return sorted(records, key=lambda r: (r.created_at, r.id))

    def quarantined(self, stack: StackName, service: str, image: str) -> Quarantine | None:
        item = self.backend.get_item({"pk": _s(f"{self.backend.ns}#quarantine#{stack}"),
                                      "sk": _s(f"{service}|{image}")})
        if item is None:
            return None
        return Quarantine(StackName(_get_s(item, "stack")), _get_s(item, "service"), _get_s(item, "image"),
                          RolloutId(_get_s(item, "rollout_id")), _get_n(item, "at"), _get_s(item, "reason"))

    def close(self) -> None:
        """Nothing to release: the SDK's connection pool closes with the process."""


def _record(item: AttrMap) -> RolloutRecord:
    return RolloutRecord(
        id=RolloutId(_get_s(item, "id")), stack=StackName(_get_s(item, "stack")), service=_get_s(item, "service"),
        image=_get_s(item, "image"), strategy=Strategy(_get_s(item, "strategy")), phase=Phase(_get_s(item, "phase")),
        created_at=_get_n(item, "created_at"), updated_at=_get_n(item, "updated_at"),
        provenance=Provenance(commit=_get_s(item, "commit_sha") or None,
                              committed_at=_get_n(item, "committed_at") if "committed_at" in item else None,
                              source=Source(_get_s(item, "commit_source")) if "commit_source" in item else None))


class DynamoLock:
    """Per-stack leases on the lock items of the table, with a fencing token (see the module docstring)."""

    def __init__(self, backend: DynamoBackend, clock: Clock, *, ttl: float = DEFAULT_TTL, holder: str | None = None,
                 host: str | None = None, pid: int | None = None) -> None:
        self.backend = backend
        self.clock = clock
        self.ttl = ttl
        self.holder_name = holder or os.environ.get("USER") or "gantry"
        self.host = host or runner_name()
        self.pid = pid if pid is not None else os.getpid()
        self.process = process_identity(self.pid)

    def _lease(self, item: AttrMap) -> Lease:
        return Lease(StackName(_get_s(item, "stack")), RolloutId(_get_s(item, "rollout_id")), _get_s(item, "holder"),
                     _get_s(item, "host"), int(_get_n(item, "pid")), _get_n(item, "acquired_at"),
                     _get_n(item, "expires_at"), _get_s(item, "process"), int(_get_n(item, "token")))

    def holder(self, stack: StackName) -> Lease | None:
        item = self.backend.get_item(self.backend.lock_key(stack))
        if item is None or not item.get("held", {}).get("BOOL", False):
            return None
        return self._lease(item)

    def last_holder(self, stack: StackName) -> RolloutId | None:
        """The rollout that held the stack's lease last, held now or released (drills: who acted last)."""
        item = self.backend.get_item(self.backend.lock_key(stack))
        return None if item is None else RolloutId(_get_s(item, "rollout_id"))

    def _takeable(self, lease: Lease, now: float) -> bool:
        if lease.expires_at <= now:
            return True  # the only test that means anything for a holder on another runner
        if lease.host != self.host:
            return False
        mine, theirs = self.process.partition(":")[0], lease.process.partition(":")[0]
        if not mine or mine != theirs:
            return False  # same name, another machine (or boot): its pids mean nothing here
        if lease.pid == self.pid and lease.process in ("", self.process):
            return True  # our own process re-entering
        return not holder_alive(lease)

    def acquire(self, stack: StackName, rollout_id: RolloutId) -> Lease:
        from botocore.exceptions import ClientError

        key = self.backend.lock_key(stack)
        for _ in range(_APPEND_ATTEMPTS):
            now = self.clock.now()
            item = self.backend.get_item(key)
            if item is not None and item.get("held", {}).get("BOOL", False):
                current = self._lease(item)
                if not self._takeable(current, now):
                    raise StackLocked(stack, f"{current.holder} (rollout {current.rollout_id})", current.host,
                                      current.pid, iso(current.expires_at), rollout_id=current.rollout_id)
            token = int(_get_n(item, "token")) + 1 if item is not None else 1
            lease = Lease(stack, rollout_id, self.holder_name, self.host, self.pid, now, now + self.ttl,
                          self.process, token)
            new: AttrMap = {**key, "stack": _s(stack), "rollout_id": _s(rollout_id), "holder": _s(lease.holder),
                            "host": _s(lease.host), "pid": _n(lease.pid), "acquired_at": _n(now),
                            "expires_at": _n(lease.expires_at), "process": _s(lease.process), "token": _n(token),
                            "held": {"BOOL": True}}
            # Compare-and-swap on exactly the state that was judged: a renewal or another taker in between
            # changes token or expiry, and this write is refused; the loop reads again and judges again.
            if item is None:
                cond: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
            else:
                cond = {"ConditionExpression": "#t = :t AND expires_at = :e",
                        "ExpressionAttributeNames": {"#t": "token"},
                        "ExpressionAttributeValues": {":t": item["token"], ":e": item["expires_at"]}}
            try:
                self.backend.call("PutItem", self.backend.client.put_item, TableName=self.backend.state.table,
                                  Item=new, **cond)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    continue
                raise
            with self.backend.fence_mutex:
                self.backend.fences[stack] = (rollout_id, token)
            return lease
        raise StateUnavailable(f"the lease on stack {stack} changed on each of {_APPEND_ATTEMPTS} attempts to take it")

    def _conditional_update(self, lease: Lease, update: str, values: dict[str, Any]) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.backend.call("UpdateItem", self.backend.client.update_item, TableName=self.backend.state.table,
                              Key=self.backend.lock_key(lease.stack), UpdateExpression=update,
                              ConditionExpression="#t = :t AND held = :yes AND rollout_id = :r",
                              ExpressionAttributeNames={"#t": "token"},
                              ExpressionAttributeValues={":t": _n(lease.token), ":yes": {"BOOL": True},
                                                         ":r": _s(lease.rollout_id), **values})
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def heartbeat(self, lease: Lease) -> Lease:
        expires = self.clock.now() + self.ttl
        if not self._conditional_update(lease, "SET expires_at = :e", {":e": _n(expires)}):
            raise self.backend.lost(lease.stack, lease.rollout_id)
        return Lease(lease.stack, lease.rollout_id, lease.holder, lease.host, lease.pid, lease.acquired_at, expires,
                     lease.process, lease.token)

    def release(self, lease: Lease) -> None:
        # The token stays: the next holder's is greater, so fencing never sees a number twice.
        self._conditional_update(lease, "SET held = :no, expires_at = :zero",
                                 {":no": {"BOOL": False}, ":zero": _n(0)})
        with self.backend.fence_mutex:
            if self.backend.fences.get(lease.stack, (None, None))[1] == lease.token:
                del self.backend.fences[lease.stack]

    def close(self) -> None:
        """Nothing to release (the lease itself is released by ``release``)."""
