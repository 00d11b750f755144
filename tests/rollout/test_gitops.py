"""Issue 17's acceptance tests a-d on the faithful fake Automation API (CI); test_gitops_engine.py runs them for real.

a. After a promoted rollout, `pulumi up` from a checkout without the rollout's writes changes nothing.
b. During a rollout, an outside `pulumi up` changes nothing for that service.
c. A changed `image` applied with a plain `pulumi up` is staged (canary at 0%, or the inactive color) and
   waits for `gantry rollout start`, which needs no `--image`; `delivery: direct` serves it at once.
d. `gantry rollout status` and the stack's outputs agree after every step.
"""

from __future__ import annotations

import copy
import getpass
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_automation import FakeStack, FakeWorkspace, ProgramRun, program_view, services_program
from fakes import FakeAnalysis, FakeTarget
from gitops_rig import Agreement
from rollout_rig import make_plan, make_rig

from components.k8s.outputs import Progress, RolloutState, ServiceOutputs, resolve
from components.spec import Color, Delivery, ServiceSpec, Strategy
from infra.config import ServiceConfig
from infra.errors import InputError
from infra.progress import ENV, Instruction, instruction_from_env
from infra.rollout.gitops import PromotionRefused, SourceBusy, next_image, verified_version
from infra.rollout.journal import SqliteJournal
from infra.rollout.pulumi_target import PulumiStackTarget
from infra.rollout.seams import Phase, StackName, Verdict

V1, V2, V3 = "ghcr.io/acme/web:1.0", "ghcr.io/acme/web:1.1", "ghcr.io/acme/web:1.2"
A1, A2 = "ghcr.io/acme/api:2.0", "ghcr.io/acme/api:2.1"


def git_stack(web: dict[str, object] | None = None) -> dict[str, object]:
    """The stack file as git holds it."""
    return {"aws:region": "us-east-1", "gantry:services": {
        "web": {"namespace": "web", "image": V1, "strategy": "canary", **(web or {})},
        "api": {"namespace": "api", "image": A1, "strategy": "bluegreen"}}}


@pytest.fixture
def stack() -> FakeStack:
    s = FakeStack("dev", config=git_stack(), program=services_program, user=getpass.getuser(),
                  host=socket.gethostname())
    s.up()  # the stack's first deployment, from git
    return s


def outputs(stack: FakeStack, service: str = "web") -> ServiceOutputs:
    return ServiceOutputs.model_validate(stack.stack_outputs["services"][service])  # type: ignore[index]


def merge(stack: FakeStack, service: str, image: str) -> None:
    """A pull request changing the service's image lands in the checkout (the stack file)."""
    stack.config["gantry:services"][service]["image"] = image  # type: ignore[index]


def outside_up(stack: FakeStack, config: dict[str, object] | None = None) -> None:
    """`pulumi up` by someone else: a checkout's stack file, no gantry step in its environment."""
    if config is not None:
        stack.config = copy.deepcopy(config)
    assert ENV not in stack.workspace.env_vars
    stack.up()


class Rig:
    def __init__(self, tmp_path: Path, stack: FakeStack, service: str = "web",
                 strategy: Strategy = Strategy.CANARY) -> None:
        self.ws = FakeWorkspace()
        self.ws.add(stack)
        self.stack, self.service, self.tmp = stack, service, tmp_path
        self.target = PulumiStackTarget("dev", service, tmp_path, strategy, stack_factory=self.ws.factory,
                                        checkpoint_dir=tmp_path / "checkpoints")
        self.strategy = strategy

    def run(self, image: str, verdicts: list[Verdict], *, during: object = None) -> tuple[object, Agreement]:
        rig = make_rig(self.tmp, strategy=self.strategy, target=self.target,  # type: ignore[arg-type]
                       analysis=FakeAnalysis(verdicts) if during is None else during,  # type: ignore[arg-type]
                       plan=make_plan(self.strategy, weights=(10, 50, 100)))
        agreement = Agreement(self.tmp, lambda: outputs(self.stack, self.service), self.target.current().stable_image)
        rig.engine.observer = agreement
        outcome = rig.engine.start(stack=StackName("dev"), service=self.service, image=image, plan=rig.plan)
        rig.journal.close()
        return outcome, agreement


# --------------------------------------------------------------------------- a


def test_a_after_a_promoted_rollout_an_up_from_a_checkout_without_its_writes_changes_nothing(
        tmp_path: Path, stack: FakeStack) -> None:
    checkout = copy.deepcopy(stack.config)  # main, before the pipeline's rollout: image 1.0
    outcome, agreement = Rig(tmp_path, stack).run(V2, [Verdict.PASS])
    assert outcome.phase is Phase.PROMOTED and outcome.verified  # type: ignore[attr-defined]
    assert stack.writes == [] and stack.config == checkout, "the rollout wrote nothing to the stack file"
    promoted = copy.deepcopy(stack.stack_outputs)
    outside_up(stack, checkout)
    assert stack.stack_outputs == promoted, "the promoted release stays"
    assert outputs(stack).image == V2 and outputs(stack).canary_image is None
    assert agreement.problems == [] and len(agreement.checked) >= 5


# --------------------------------------------------------------------------- b


@pytest.mark.parametrize("pr_merged_meanwhile", [False, True], ids=["same-file", "file-changed-meanwhile"])
def test_b_an_outside_up_during_a_rollout_changes_nothing_for_the_service(
        tmp_path: Path, stack: FakeStack, pr_merged_meanwhile: bool) -> None:
    seen: list[dict[str, object]] = []

    class OutsideUpAtEachStep:
        def analyse(self, ctx: object) -> object:
            before = copy.deepcopy(stack.stack_outputs)
            if pr_merged_meanwhile:
                merge(stack, "web", V3)
            outside_up(stack)
            assert stack.stack_outputs == before, "an outside up moved the rollout"
            seen.append(before)
            return FakeAnalysis([Verdict.PASS]).analyse(ctx)  # type: ignore[arg-type]

    outcome, agreement = Rig(tmp_path, stack).run(V2, [], during=OutsideUpAtEachStep())
    assert outcome.phase is Phase.PROMOTED and outcome.verified  # type: ignore[attr-defined]
    assert [s["services"]["web"]["canaryWeight"] for s in seen] == [10, 50, 100]  # type: ignore[index]
    assert agreement.problems == []
    if pr_merged_meanwhile:
        # The change merged during the rollout was not swallowed: the next plain up stages it.
        outside_up(stack)
        assert (outputs(stack).image, outputs(stack).canary_image, outputs(stack).canary_weight) == (V2, V3, 0)


def test_b_a_bluegreen_rollout_is_kept_by_an_outside_up_too(tmp_path: Path, stack: FakeStack) -> None:
    class OutsideUp:
        def analyse(self, ctx: object) -> object:
            before = copy.deepcopy(stack.stack_outputs)
            outside_up(stack)
            assert stack.stack_outputs == before
            return FakeAnalysis([Verdict.PASS]).analyse(ctx)  # type: ignore[arg-type]

    outcome, agreement = Rig(tmp_path, stack, "api", Strategy.BLUEGREEN).run(A2, [], during=OutsideUp())
    assert outcome.phase is Phase.PROMOTED and agreement.problems == []  # type: ignore[attr-defined]
    assert outputs(stack, "api").active_color is Color.GREEN


# --------------------------------------------------------------------------- c


def test_c_a_changed_image_is_staged_at_zero_and_rolled_out_without_image(tmp_path: Path, stack: FakeStack) -> None:
    merge(stack, "web", V2)
    outside_up(stack)
    staged = outputs(stack)
    assert (staged.image, staged.canary_image, staged.canary_weight, staged.rollout) == (V1, V2, 0, None)
    assert stack.writes == []
    rig = Rig(tmp_path, stack)
    svc = ServiceConfig.model_validate(stack.config["gantry:services"]["web"])  # type: ignore[index]
    image = next_image(rig.target, "dev", "web", svc, Strategy.CANARY)
    assert image == V2
    outcome, agreement = rig.run(image, [Verdict.PASS])
    assert outcome.phase is Phase.PROMOTED and agreement.problems == []  # type: ignore[attr-defined]
    # Then a plain up from main (which has the PR) changes nothing: (a) for the GitOps flow.
    promoted = copy.deepcopy(stack.stack_outputs)
    outside_up(stack)
    assert stack.stack_outputs == promoted
    with pytest.raises(InputError, match=r"--image must be given, but stack dev runs ghcr\.io/acme/web:1\.1"):
        next_image(rig.target, "dev", "web", svc, Strategy.CANARY)


def test_c_bluegreen_stages_on_the_inactive_color(tmp_path: Path, stack: FakeStack) -> None:
    merge(stack, "api", A2)
    outside_up(stack)
    staged = outputs(stack, "api")
    assert (staged.active_color, staged.blue_image, staged.green_image) == (Color.BLUE, A1, A2)
    rig = Rig(tmp_path, stack, "api", Strategy.BLUEGREEN)
    svc = ServiceConfig.model_validate(stack.config["gantry:services"]["api"])  # type: ignore[index]
    assert next_image(rig.target, "dev", "api", svc, Strategy.BLUEGREEN) == A2
    assert rig.target.current().stable_image == A1, "users still get the old color"


def test_c_a_rolled_back_version_is_not_restaged_by_later_ups(tmp_path: Path, stack: FakeStack) -> None:
    merge(stack, "web", V2)
    outside_up(stack)
    outcome, agreement = Rig(tmp_path, stack).run(V2, [Verdict.FAIL])
    assert outcome.phase is Phase.ROLLED_BACK and agreement.problems == []  # type: ignore[attr-defined]
    rolled = copy.deepcopy(stack.stack_outputs)
    assert outputs(stack).rollout == outputs(stack).rollout.__class__(image=V2, state=RolloutState.ROLLED_BACK)
    outside_up(stack)
    assert stack.stack_outputs == rolled, "no pods for the rolled-back version"
    merge(stack, "web", V3)  # the fix is merged: staged
    outside_up(stack)
    assert (outputs(stack).canary_image, outputs(stack).canary_weight) == (V3, 0)


def test_c_direct_delivery_serves_a_changed_image_at_once(tmp_path: Path) -> None:
    stack = FakeStack("dev", config=git_stack({"delivery": "direct"}), program=services_program)
    stack.up()
    merge(stack, "web", V2)
    outside_up(stack)
    out = outputs(stack)
    assert (out.image, out.canary_image, out.canary_weight, out.delivery) == (V2, None, 0, Delivery.DIRECT)


def test_c_reverting_the_pr_before_the_rollout_unstages(tmp_path: Path, stack: FakeStack) -> None:
    merge(stack, "web", V2)
    outside_up(stack)
    merge(stack, "web", V1)
    outside_up(stack)
    assert (outputs(stack).image, outputs(stack).canary_image) == (V1, None)


# --------------------------------------------------------------------------- the resolution itself


def spec(image: str = V1, **extra: object) -> ServiceSpec:
    return ServiceSpec.model_validate({"namespace": "web", "image": image, **extra})


def test_resolve_without_a_previous_update_uses_the_stack_files_state() -> None:
    progress, desired = resolve(spec(canary_image=V2, canary_weight=10), None, None)
    assert (progress.canary_image, progress.canary_weight, desired) == (V2, 10, V1)


def test_resolve_keeps_a_held_service_whatever_the_file_says() -> None:
    held = ServiceOutputs.build(spec(canary_image=V2, canary_weight=50), desired_image=V1,
                                rollout=Progress(image=V1).marked(V2, RolloutState.PROGRESSING).rollout)
    for file_image in (V1, V2, V3):
        progress, desired = resolve(spec(file_image, delivery="direct"), held, None)
        assert progress == held.progress() and desired == V1


def test_resolve_never_stages_the_image_it_already_recorded() -> None:
    # A rollout with --image delivered V2 while the stack file said V1: V1 is not staged afterwards.
    after = ServiceOutputs.build(spec(V2), desired_image=V1,
                                 rollout=Progress(image=V2).marked(V2, RolloutState.PROMOTED).rollout)
    progress, desired = resolve(spec(V1), after, None)
    assert progress == after.progress() and desired == V1


def test_a_step_for_another_stack_or_garbage_is_refused() -> None:
    step = Instruction(stack="prod", service="web", progress=Progress(image=V1)).to_env()
    with pytest.raises(InputError, match="must name this stack \\(dev\\), but it names 'prod'"):
        instruction_from_env("dev", {ENV: step})
    with pytest.raises(InputError, match=f"{ENV} must be a rollout step written by gantry"):
        instruction_from_env("dev", {ENV: '{"stack": "dev"'})
    with pytest.raises(InputError, match=f"{ENV} must be a rollout step"):
        instruction_from_env("dev", {ENV: json.dumps({"stack": "dev", "service": "web", "progress": {
            "image": V1, "canaryWeight": 101}})})
    assert instruction_from_env("dev", {}) is None


def test_the_fake_program_reads_previous_outputs_as_a_program_does() -> None:
    # nulls dropped, numbers as floats (the real engine's readStackOutputs; checked by the engine test).
    assert program_view({"a": None, "b": {"c": 1, "d": None, "e": True}, "f": [1, "x"]}) == {
        "b": {"c": 1.0, "e": True}, "f": [1.0, "x"]}
    out = services_program(ProgramRun("dev", git_stack(), {}, {}))
    again = services_program(ProgramRun("dev", git_stack(), {}, program_view(out)))  # type: ignore[arg-type]
    assert again == out


# --------------------------------------------------------------------------- promote's source check


def promoted_stack(tmp_path: Path, verdict: Verdict) -> tuple[FakeStack, Rig, object]:
    s = FakeStack("dev", config=git_stack(), program=services_program, user=getpass.getuser(),
                  host=socket.gethostname())
    s.up()
    rig = Rig(tmp_path, s)
    outcome, _ = rig.run(V2, [verdict])
    return s, rig, outcome


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[SqliteJournal]:
    j = SqliteJournal(tmp_path / ".gantry" / "journal.db")
    yield j
    j.close()


def test_promote_source_is_what_it_runs_after_a_verified_promotion(tmp_path: Path) -> None:
    _, rig, outcome = promoted_stack(tmp_path, Verdict.PASS)
    j = SqliteJournal(tmp_path / ".gantry" / "journal.db")
    try:
        v = verified_version(rig.target, j, "dev", "web")
    finally:
        j.close()
    assert (v.image, v.rollout_id) == (V2, outcome.rollout_id)  # type: ignore[attr-defined]


def test_promote_source_refuses_a_rolled_back_rollout_with_its_reason(tmp_path: Path) -> None:
    _, rig, _ = promoted_stack(tmp_path, Verdict.FAIL)
    j = SqliteJournal(tmp_path / ".gantry" / "journal.db")
    try:
        with pytest.raises(PromotionRefused, match=r"dev's last rollout of web \(ghcr.io/acme/web:1.1\) rolled back: "):
            verified_version(rig.target, j, "dev", "web")
    finally:
        j.close()


def test_promote_source_trusts_the_stack_outputs_when_this_journal_never_saw_the_rollout(
        tmp_path: Path, journal: SqliteJournal) -> None:
    # The staging job ran on another runner: only the stack's outputs (shared backend) know the rollout.
    _, rig, _ = promoted_stack(tmp_path / "runner-1", Verdict.PASS)
    v = verified_version(rig.target, journal, "dev", "web")
    assert (v.image, v.rollout_id) == (V2, None)
    _, rig, _ = promoted_stack(tmp_path / "runner-2", Verdict.FAIL)
    with pytest.raises(PromotionRefused, match=r"rolled back$"):
        verified_version(rig.target, journal, "dev", "web")


def test_promote_source_refuses_a_running_or_unknown_rollout(tmp_path: Path, stack: FakeStack,
                                                            journal: SqliteJournal) -> None:
    rig = Rig(tmp_path, stack)
    with pytest.raises(PromotionRefused, match="no promoted rollout of web is recorded for dev"):
        verified_version(rig.target, journal, "dev", "web")
    rig.target.prepare(V2)
    with pytest.raises(SourceBusy, match=r"rollout of ghcr\.io/acme/web:1\.1 on dev has not ended") as info:
        verified_version(rig.target, journal, "dev", "web")
    assert int(info.value.exit_code) == 3
    # A target without stack outputs (the sandbox's) is judged by the journal alone.
    with pytest.raises(PromotionRefused, match="no promoted rollout"):
        verified_version(FakeTarget(Strategy.CANARY, V1), journal, "dev", "web")


def test_offline_renders_read_no_previous_update_and_use_the_stack_files_state() -> None:
    from infra.render import render_callable

    def program() -> None:
        import pulumi

        from infra.config import load_from_engine
        from infra.platform import build_platform

        for key, value in build_platform(load_from_engine()).items():
            pulumi.export(key, value)

    config = {"gantry:cloud": "local", "gantry:environment": "dev", "gantry:tier": "dev",
              "gantry:services": {"web": {"namespace": "web", "image": V1, "canaryImage": V2, "canaryWeight": 10}},
              "gantry:rollout": {"target": "file", "metrics": {"provider": "command"},
                                 "gates": [{"name": "e", "expr": "true", "max": 1}]}}
    result = render_callable(program, project="gantry", stack="dev", config=config)
    assert not [d for d in result.diagnostics if "readStackOutputs" in d], result.diagnostics
    web = ServiceOutputs.model_validate(result.outputs["services"]["web"])
    assert (web.image, web.canary_image, web.canary_weight, web.desired_image) == (V1, V2, 10, V1)
