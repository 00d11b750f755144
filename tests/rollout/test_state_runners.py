"""Runners on different machines, simulated: two checkouts in separate temp dirs share one moto server.

Each runner is the real ``gantry`` CLI as a subprocess, run from its own checkout with its own runner name
(``GANTRY_RUNNER``), so neither can see the other's processes: only the shared table tells them about each
other. The stack's target is the ``file`` fake; its state directory is shared by both checkouts (a
symlink), as the real infrastructure would be. AWS credentials are dummy values, set only here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto_state import Moto, aws_env, moto_server

from infra.rollout.clock import SystemClock
from infra.rollout.entries import parse_all
from infra.rollout.journal import EntryKind
from infra.rollout.scheduler import mismatches, replay
from infra.rollout.seams import Phase, RolloutId
from infra.rollout.state import open_state

# The CLI through the drills launcher, which adds the test-only file target.
GANTRY = [sys.executable, str(Path(__file__).resolve().parent / "drill_cli.py")]
REPO = Path(__file__).resolve().parents[2]
SECRET = f"dummy-secret-{uuid.uuid4().hex}"
"""The dummy AWS secret key the runners get: it must never reach output or the journal."""


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as server, aws_env(server):
        yield server


class Runner:
    """One checkout of the project on its own 'machine'."""

    def __init__(self, name: str, root: Path, state: str, shared_targets: Path, *, interval: str, ttl: str,
                 moto: Moto) -> None:
        self.name, self.root = name, root
        (root / "stacks").mkdir(parents=True)
        (root / "Pulumi.yaml").write_text("name: shop\nruntime: python\nstackConfigDir: stacks\n")
        gate = f"{sys.executable} -c print(0.0)"
        (root / "stacks" / "Pulumi.prod.yaml").write_text(f"""config:
  gantry:cloud: local
  gantry:environment: prod
  gantry:tier: dev
  gantry:services:
    web: {{namespace: web, image: "app:1.0", strategy: canary}}
  gantry:rollout:
    state: "{state}"
    steps: [20, 100]
    interval: {interval}
    threshold: 1
    judge: threshold
    lockTtl: {ttl}
    target: file
    metrics: {{provider: command}}
    gates: [{{name: errors, expr: "{gate}", max: 0.05}}]
""")
        (root / ".gantry").mkdir()
        (root / ".gantry" / "targets").symlink_to(shared_targets, target_is_directory=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GANTRY_"))}
        self.env.update(moto.env, AWS_SECRET_ACCESS_KEY=SECRET, GANTRY_RUNNER=name)
        self.outputs: list[str] = []

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*GANTRY, *args, "--project", str(self.root)], capture_output=True, text=True,
                              cwd=REPO, env=self.env, timeout=180, check=False)
        self.outputs += [done.stdout, done.stderr]
        return done

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([*GANTRY, *args, "--project", str(self.root)], cwd=REPO, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _runners(tmp: Path, moto: Moto, *, interval: str, ttl: str = "60s") -> tuple[Runner, Runner, str]:
    state = moto.state_url()
    shared = tmp / "infrastructure"
    shared.mkdir()
    a = Runner("runner-a", tmp / "machine-a" / "shop", state, shared, interval=interval, ttl=ttl, moto=moto)
    b = Runner("runner-b", tmp / "machine-b" / "shop", state, shared, interval=interval, ttl=ttl, moto=moto)
    return a, b, state


def _wait_for_weight(proc: subprocess.Popen[str], weight: int) -> str:
    """Read A's --json events until the weight is live; returns the rollout id."""
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        data = event.get("data", {})
        if event["event"] == "applied" and data.get("action") == "set_weight" and data.get("weight") == weight:
            return str(event["rollout"])
    raise AssertionError(f"runner A ended before weight {weight}: {proc.wait()} {proc.stderr and proc.stderr.read()}")


def _finish(proc: subprocess.Popen[str], timeout: float = 120.0) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text


def _journal_dump(moto: Moto, state: str) -> str:
    table = state.split("//")[1].split("?")[0]
    return json.dumps(moto.client("dynamodb").scan(TableName=table)["Items"])


def test_b_sees_a_in_status_and_history_and_a_start_on_b_exits_3_naming_a(tmp_path: Path, moto: Moto) -> None:
    a, b, state = _runners(tmp_path, moto, interval="60s")
    proc = a.spawn("rollout", "start", "--stack", "prod", "--service", "web", "--image", "app:2.0", "--json")
    try:
        rid = _wait_for_weight(proc, 20)
        status = b.run("rollout", "status", rid, "--json")
        assert status.returncode == 0, status.stderr
        seen = json.loads(status.stdout)
        assert (seen["rollout"], seen["stack"], seen["image"], seen["phase"], seen["weight"]) == (
            rid, "prod", "app:2.0", "progressing", 20)
        history = b.run("rollout", "history", "--json")
        assert history.returncode == 0, history.stderr
        rows = [json.loads(line) for line in history.stdout.splitlines()]
        assert [(r["rollout"], r["stack"], r["phase"]) for r in rows] == [(rid, "prod", "progressing")]
        assert [json.loads(line)["rollout"] for line in b.run("rollout", "history", "--stack", "prod", "--json")
                .stdout.splitlines()] == [rid]
        assert not (b.root / ".gantry" / "journal.db").exists()  # B read the shared table, not a local journal
        started = b.run("rollout", "start", "--stack", "prod", "--service", "web", "--image", "app:3.0")
        assert started.returncode == 3, started.stderr
        assert "runner-a" in started.stderr and rid in started.stderr
        assert len(started.stderr.strip().splitlines()) == 1  # one line, no traceback
        # A's rollout is untouched by B's refused start: still one rollout, still running.
        assert [json.loads(x)["rollout"] for x in b.run("rollout", "history", "--json").stdout.splitlines()] == [rid]
    finally:
        proc.send_signal(signal.SIGKILL)
        _finish(proc)
    _no_secret(*a.outputs, *b.outputs, _journal_dump(moto, state))


def test_b_aborts_a_and_a_honours_it_within_one_poll(tmp_path: Path, moto: Moto) -> None:
    a, b, state = _runners(tmp_path, moto, interval="120s")
    proc = a.spawn("rollout", "start", "--stack", "prod", "--service", "web", "--image", "app:2.0", "--json")
    try:
        rid = _wait_for_weight(proc, 20)
        aborted = b.run("rollout", "abort", rid, "--json")  # B journals the abort, then follows A to the end
        code, out, err = _finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            _finish(proc)
    assert code == 1, err  # A rolled back
    assert aborted.returncode == 1, aborted.stderr  # B reports the rollback it followed
    assert json.loads(aborted.stdout.splitlines()[-1])["phase"] == "rolled_back"
    journal = open_state(state, b.root)
    entries = journal.entries(RolloutId(rid))
    kinds = [e.kind for e in entries]
    abort_at = kinds.index(EntryKind.OPERATOR)
    # A's very next entry is its rollback decision: it did nothing else (no further step) after the abort.
    after = entries[abort_at + 1]
    assert (after.kind, after.data["decision"]) == (EntryKind.DECISION, "rollback")
    # ...and it came long before the 120 s step interval would have ended: the abort cut A's wait short.
    assert after.at - entries[abort_at - 1].at < 120.0
    table = state.split("//")[1].split("?")[0]
    item = moto.client("dynamodb").get_item(TableName=table, ConsistentRead=True, Key={
        "pk": {"S": f"shop#rollout#{rid}"}, "sk": {"S": f"e#{after.seq:012d}"}})["Item"]
    abort_item = moto.client("dynamodb").get_item(TableName=table, ConsistentRead=True, Key={
        "pk": {"S": f"shop#rollout#{rid}"}, "sk": {"S": f"e#{entries[abort_at].seq:012d}"}})["Item"]
    assert (abort_item["writer"]["S"], item["writer"]["S"]) == ("runner-b", "runner-a")
    assert "token" not in abort_item and "token" in item  # the operator holds no lease; A's write was fenced
    state_after = replay(parse_all(entries))
    assert state_after.phase is Phase.ROLLED_BACK and state_after.verified
    assert [e.data["ok"] for e in entries if e.kind is EntryKind.VERIFIED] == [True]
    _no_secret(out, err, *a.outputs, *b.outputs, _journal_dump(moto, state))


def test_b_resumes_after_a_is_killed_once_its_lease_expires(tmp_path: Path, moto: Moto) -> None:
    a, b, state = _runners(tmp_path, moto, interval="2s", ttl="20s")
    proc = a.spawn("rollout", "start", "--stack", "prod", "--service", "web", "--image", "app:2.0", "--json")
    try:
        rid = _wait_for_weight(proc, 20)
    finally:
        proc.send_signal(signal.SIGKILL)
        code, _, _ = _finish(proc)
    assert code == -signal.SIGKILL
    # A is dead, but B is another machine: it cannot know, so A's lease stands until it expires.
    early = b.run("rollout", "resume", rid)
    assert early.returncode == 3, early.stderr
    assert "runner-a" in early.stderr and "lease expires" in early.stderr
    journal = open_state(state, b.root)
    lease = journal.lease_lock(SystemClock()).holder(journal.get(RolloutId(rid)).stack)
    assert lease is not None and lease.host == "runner-a"
    while time.time() <= lease.expires_at:  # wait out the lease (20 s), as a real runner would
        time.sleep(0.2)
    resumed = b.run("rollout", "resume", rid, "--json")
    assert resumed.returncode == 0, resumed.stderr
    entries = journal.entries(RolloutId(rid))
    final = replay(parse_all(entries))
    assert final.phase is Phase.PROMOTED and final.verified
    from fakes import JsonFileTarget

    live = JsonFileTarget(tmp_path / "infrastructure" / "prod-web.json").current()
    assert mismatches(final, live) == [] and live.stable_image == "app:2.0"
    taken = journal.lease_lock(SystemClock()).holder(final.stack)
    assert taken is None  # B released it at the end
    _no_secret(*a.outputs, *b.outputs, _journal_dump(moto, state))
