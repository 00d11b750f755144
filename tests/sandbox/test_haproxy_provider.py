"""The engine-driven sandbox's dynamic provider, without the engine: create, diff, update, read, delete on real HAProxy.

Real HAProxy, Prometheus and demo processes on 127.0.0.1 (the sandbox of stack local-engine); the
provider methods are called exactly as the ``pulumi-python`` provider process calls them, with the
property bags the engine sends (numbers as floats, as on the wire). Outcomes are read back from
HAProxy's runtime API, the sandbox state file and the processes themselves.
"""

from __future__ import annotations

import base64
from collections import Counter
from pathlib import Path

import dill  # type: ignore[import-untyped]  # the library ships no type information
import httpx
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from sandbox_helpers import REPO

from components.spec import Color, Strategy
from infra.config import ServiceConfig
from infra.sandbox import haproxy_provider as hp
from infra.sandbox import lifecycle, procs
from infra.sandbox.haproxy import PLACEHOLDER_PORT, RuntimeApi
from infra.sandbox.procs import SandboxError
from infra.sandbox.state import SandboxState, load, sandbox_dir

pytestmark = pytest.mark.sandbox


@pytest.fixture
def engine_sandbox(project: Path) -> SandboxState:
    (project / "stacks" / "Pulumi.local-engine.yaml").write_text(
        (REPO / "stacks" / "Pulumi.local-engine.yaml").read_text())
    return lifecycle.up(project, "local-engine")


def server(project: Path, slot: str, image: str, **fault: float) -> dict[str, object]:
    """A SandboxServer property bag as the engine sends it (numbers are doubles on the wire)."""
    return {"sandboxDir": str(sandbox_dir(project)), "service": "web", "slot": slot, "image": image,
            "fault": {"errorRate": float(fault.get("errorRate", 0.0)), "latencyMs": 0.0, "crashAfter": 0.0}}


def weights(project: Path, stable: int, canary: int, servers: tuple[str, ...] = ("canary", "stable")
            ) -> dict[str, object]:
    return {"sandboxDir": str(sandbox_dir(project)), "service": "web",
            "weights": {"stable": float(stable), "canary": float(canary)}, "servers": list(servers)}


def addr(api: RuntimeApi, backend: str, slot: str) -> tuple[str, str]:
    row = next(s for s in api.show_stat() if s.backend == backend and s.server == slot)
    return row.addr, row.status


def versions_served(st: SandboxState, n: int = 200) -> Counter[str]:
    with httpx.Client(timeout=5.0) as client:
        return Counter(client.get(st.frontend_url("web") + "/").headers["X-Version"] for _ in range(n))


# --------------------------------------------------------------------------- desired state (pure)


def svc(**kw: object) -> ServiceConfig:
    return ServiceConfig.model_validate({"namespace": "web", "image": "demo:v1", **kw})


@pytest.mark.parametrize("weight", [0, 1, 10, 50, 99, 100])
def test_canary_routing_sums_to_100_over_running_slots(weight: int) -> None:
    plan = hp.desired_routing(svc(canaryImage="demo:v2", canaryWeight=weight))
    assert plan == {"stable": hp.SlotPlan("demo:v1", 100 - weight), "canary": hp.SlotPlan("demo:v2", weight)}
    # No canary image: no canary server, whatever weight is left behind.
    assert hp.desired_routing(svc()) == {"stable": hp.SlotPlan("demo:v1", 100), "canary": hp.SlotPlan(None, 0)}


@pytest.mark.parametrize(("config", "expected"), [
    # Before a rollout: only the active color runs.
    ({}, {"blue": hp.SlotPlan("demo:v1", 100), "green": hp.SlotPlan(None, 0)}),
    # Prepared: the idle color runs the new image without traffic.
    ({"greenImage": "demo:v2"}, {"blue": hp.SlotPlan("demo:v1", 100), "green": hp.SlotPlan("demo:v2", 0)}),
    # Switched: the old color keeps the stable image (the instant revert target) at weight 0.
    ({"greenImage": "demo:v2", "activeColor": "green"},
     {"green": hp.SlotPlan("demo:v2", 100), "blue": hp.SlotPlan("demo:v1", 0)}),
    # Promoted (image moved, color keys removed): the old color stops.
    ({"image": "demo:v2", "activeColor": "green"},
     {"green": hp.SlotPlan("demo:v2", 100), "blue": hp.SlotPlan(None, 0)}),
])
def test_bluegreen_routing(config: dict[str, object], expected: dict[str, hp.SlotPlan]) -> None:
    plan = hp.desired_routing(svc(strategy=Strategy.BLUEGREEN.value, **config))
    assert plan == expected
    assert sum(p.weight for p in plan.values() if p.image) == 100
    assert {Color(k) for k in plan} == set(Color)


def test_provider_is_pickled_by_reference_so_the_state_follows_the_code() -> None:
    # A by-value pickle would freeze this code into every stack's state; by reference, the provider
    # process imports the installed module.
    for provider in (hp.ServerProvider(), hp.WeightsProvider()):
        blob = base64.b64decode(serialize_provider(provider))
        assert b"infra.sandbox.haproxy_provider" in blob
        assert type(dill.loads(blob)) is type(provider)


# --------------------------------------------------------------------------- CRUD on the real sandbox


def test_create_adopts_the_running_stable_then_a_canary_takes_exactly_its_weight(
        engine_sandbox: SandboxState, project: Path) -> None:
    api = RuntimeApi(Path(engine_sandbox.haproxy_socket))
    stable = engine_sandbox.services["web"].slots["stable"]
    assert stable is not None
    stable_pid = stable.pid
    provider = hp.ServerProvider()

    created = provider.create(server(project, "stable", "demo:v1"))
    assert created.id == "web/stable"
    assert created.outs is not None and created.outs["pid"] == stable_pid  # adopted, not restarted

    canary = provider.create(server(project, "canary", "demo:v2"))
    assert canary.outs is not None
    port = canary.outs["port"]
    assert addr(api, "be_web", "canary")[0] == f"127.0.0.1:{port}"
    assert addr(api, "mx_web_canary", "s")[0] == f"127.0.0.1:{port}"
    assert api.weights("be_web") == {"stable": 100, "canary": 0}
    assert procs.alive(int(str(canary.outs["pid"])))

    # Redoing a create (what follows an interrupted one, once its pending operation is cleared) adopts it.
    again = provider.create(server(project, "canary", "demo:v2"))
    assert again.outs is not None and again.outs["pid"] == canary.outs["pid"]

    applied = hp.WeightsProvider().create(weights(project, 50, 50))
    assert applied.outs is not None and applied.outs["weights"] == {"stable": 50, "canary": 50}
    assert api.weights("be_web") == {"stable": 50, "canary": 50}
    served = versions_served(engine_sandbox)
    assert set(served) == {"v1", "v2"} and 60 <= served["v2"] <= 140, served  # round robin, ~100 of 200


def test_diff_update_read_delete(engine_sandbox: SandboxState, project: Path) -> None:
    api = RuntimeApi(Path(engine_sandbox.haproxy_socket))
    provider = hp.ServerProvider()
    outs = provider.create(server(project, "canary", "demo:v2")).outs
    assert outs is not None
    old_pid = int(str(outs["pid"]))

    assert provider.diff("web/canary", outs, server(project, "canary", "demo:v2")).changes is False
    assert provider.diff("web/canary", outs, server(project, "canary", "demo:v3")).changes is True
    assert provider.diff("web/canary", outs, server(project, "canary", "demo:v2", errorRate=0.5)).changes is True
    moved = provider.diff("web/canary", outs, {**server(project, "canary", "demo:v2"), "slot": "stable"})
    assert moved.replaces == ["slot"]

    # Update to a new image: a new process behind the same slot, the old one stopped.
    updated = provider.update("web/canary", outs, server(project, "canary", "demo:v3")).outs
    assert updated is not None
    new_pid = int(str(updated["pid"]))
    assert new_pid != old_pid and procs.alive(new_pid) and not procs.alive(old_pid)
    assert addr(api, "be_web", "canary")[0] == f"127.0.0.1:{updated['port']}"
    state = load(sandbox_dir(project))
    assert state is not None and state.services["web"].slots["canary"] is not None
    assert state.services["web"].slots["canary"].image == "demo:v3"

    # Read reports what really runs; a dead process is "gone", and diff wants it back.
    read = provider.read("web/canary", updated)
    assert read.id == "web/canary" and read.outs is not None and read.outs["pid"] == new_pid
    procs.stop_pid(new_pid, state.marker)
    assert provider.read("web/canary", updated).id == ""
    assert provider.diff("web/canary", updated, server(project, "canary", "demo:v3")).changes is True

    # Delete: the slot is detached (weight 0, maintenance, placeholder address) and forgotten.
    hp.WeightsProvider().create(weights(project, 90, 10))
    provider.delete("web/canary", updated)
    assert api.weights("be_web")["canary"] == 0
    address, status = addr(api, "be_web", "canary")
    assert address == f"127.0.0.1:{PLACEHOLDER_PORT}" and status.startswith("MAINT")
    after = load(sandbox_dir(project))
    assert after is not None and after.services["web"].slots["canary"] is None


def test_weights_never_leave_the_backend_empty(engine_sandbox: SandboxState, project: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    hp.ServerProvider().create(server(project, "canary", "demo:v2"))
    api = RuntimeApi(Path(engine_sandbox.haproxy_socket))
    seen: list[dict[str, int]] = []
    real_set = RuntimeApi.set_weight

    def recording(self: RuntimeApi, backend: str, slot: str, weight: int) -> None:
        real_set(self, backend, slot, weight)
        seen.append(api.weights("be_web"))

    monkeypatch.setattr(RuntimeApi, "set_weight", recording)
    provider = hp.WeightsProvider()
    outs = provider.create(weights(project, 0, 100)).outs
    assert outs is not None and outs["weights"] == {"stable": 0, "canary": 100}
    outs = provider.update("web/weights", outs, weights(project, 100, 0)).outs
    assert outs is not None and outs["weights"] == {"stable": 100, "canary": 0}
    assert seen and all(sum(w.values()) > 0 for w in seen), seen

    # Refresh reads HAProxy, so a hand-made change shows up as drift that the next up corrects.
    real_set(api, "be_web", "stable", 37)
    drifted = provider.read("web/weights", outs).outs
    assert drifted is not None and drifted["weights"] == {"stable": 37, "canary": 0}
    assert provider.diff("web/weights", drifted, weights(project, 100, 0)).changes is True


def test_bad_input_and_a_stopped_sandbox(engine_sandbox: SandboxState, project: Path) -> None:
    provider = hp.ServerProvider()
    with pytest.raises(SandboxError, match=r"service must be one of the running sandbox's services \(web\)"):
        provider.create({**server(project, "stable", "demo:v1"), "service": "nope"})
    with pytest.raises(SandboxError, match="slot must be one of stable, canary"):
        provider.create(server(project, "blue", "demo:v1"))
    with pytest.raises(SandboxError, match=r"weights\.canary must be an integer from 0 to 100"):
        hp.WeightsProvider().create(weights(project, 50, 150))
    outs = provider.create(server(project, "canary", "demo:v2")).outs
    assert outs is not None
    lifecycle.down(project)
    with pytest.raises(SandboxError, match="the sandbox is not up"):
        provider.create(server(project, "canary", "demo:v2"))
    provider.delete("web/canary", outs)  # nothing left to delete: no error
    assert provider.read("web/canary", outs).id == ""


def test_weights_stop_a_slot_left_running_by_a_forgotten_create(engine_sandbox: SandboxState, project: Path) -> None:
    # An interrupted `up` started the canary, then its pending create was cleared from the state: no
    # resource owns the process any more. The next up's weights notice it and take it down.
    outs = hp.ServerProvider().create(server(project, "canary", "demo:v2")).outs
    assert outs is not None
    orphan = int(str(outs["pid"]))
    provider = hp.WeightsProvider()
    current = provider.create(weights(project, 100, 0)).outs
    assert current is not None
    wanted = weights(project, 100, 0, servers=("stable",))
    assert provider.diff("web/weights", current, wanted).changes is True
    provider.update("web/weights", current, wanted)
    assert not procs.alive(orphan)
    state = load(sandbox_dir(project))
    assert state is not None and state.services["web"].slots["canary"] is None
    assert state.services["web"].slots["stable"] is not None  # the wanted slot is untouched
    assert provider.diff("web/weights", provider.read("web/weights", wanted).outs or {}, wanted).changes is False
    assert set(versions_served(engine_sandbox, 50)) == {"v1"}
