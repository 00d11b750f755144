"""GitOps helpers for the rollout CLI: which version a rollout delivers, and what another stack verified.

Called by ``gantry rollout start`` (no ``--image``: the version the stack file asks for, staged by a plain
``pulumi up``) and ``gantry promote`` (the version a source stack runs and verified, from its stack
outputs and its journal). Both read the target, never the stack file's rollout state, which has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from components.k8s.outputs import Progress, RolloutState, ServiceOutputs
from components.spec import Strategy
from infra.config import GantryConfig, ServiceConfig
from infra.errors import ExitCode, GantryError, InputError
from infra.rollout.entries import read
from infra.rollout.journal import Journal, RolloutRecord
from infra.rollout.scheduler import replay
from infra.rollout.seams import Phase, StackName, Target
from infra.settings.rollout import RolloutSettings


@runtime_checkable
class ProgressSource(Protocol):
    """A target whose stack records the service's progress and desired image (``PulumiStackTarget``)."""

    def progress(self) -> Progress: ...

    def deployed(self) -> ServiceOutputs | None: ...


class PromotionRefused(GantryError):
    """The source stack's last rollout of the service did not promote a verified version: nothing to promote."""

    exit_code = ExitCode.USAGE


class SourceBusy(GantryError):
    """A rollout of the service is still running on the source stack: promote once it has ended."""

    exit_code = ExitCode.LOCKED


def next_image(target: Target, stack: str, service: str, svc: ServiceConfig, strategy: Strategy) -> str:
    """The version ``gantry rollout start`` delivers when ``--image`` is not given.

    The one a plain ``pulumi up`` staged (a canary at 0%, or the inactive color); else, on a stack that
    records its desired image, the stack file's ``image`` when it changed since the last ``up`` (merged,
    not yet applied). Anything else needs ``--image``: a target without that record cannot tell a new
    version in the stack file from an old one.
    """
    current = target.current()
    if isinstance(target, ProgressSource):
        progress = target.progress()
        if progress.held and progress.rollout is not None:
            raise InputError(f"--image must be given or a version staged, but a rollout of {progress.rollout.image} "
                             f"still holds {service} on stack {stack} (resume or abort it first)")
    if strategy is Strategy.CANARY:
        if current.canary_image is not None and current.canary_weight == 0:
            return current.canary_image
    elif current.preview_image is not None and current.preview_image != current.stable_image:
        return current.preview_image
    if isinstance(target, ProgressSource):
        deployed = target.deployed()
        recorded = deployed.desired_image if deployed is not None else None
        if svc.image not in (recorded, current.stable_image):
            return svc.image
    raise InputError(f"--image must be given, but stack {stack} runs {current.stable_image} for {service} and has "
                     f"nothing staged: change services.{service}.image in the stack file and run `pulumi up` to "
                     "stage it, or pass --image")


def target_for(project: Path, stack: str, service: str, config: GantryConfig, settings: RolloutSettings,
               strategy: Strategy) -> Target:
    """The stack's rollout target for ``service``, as the rollout itself would build it."""
    from infra.rollout import factory

    return factory.make_target(settings, project=project, stack=StackName(stack), service=service,
                               config=config, strategy=strategy)


def staged_or_desired(project: Path, stack: str, service: str, config: GantryConfig, settings: RolloutSettings,
                      strategy: Strategy) -> str:
    """``next_image`` on the stack's own target (``gantry rollout start`` without ``--image``)."""
    target = target_for(project, stack, service, config, settings, strategy)
    return next_image(target, stack, service, config.services[service], strategy)


@dataclass(frozen=True, slots=True)
class Verified:
    """The version a source stack runs and verified, and the rollout that delivered it."""

    image: str
    rollout_id: str | None
    """None when the journal here has no record of it (the stack outputs alone vouch for it)."""


def verified_version(target: Target, journal: Journal, stack: str, service: str) -> Verified:
    """What ``stack`` runs for ``service``, refusing unless its last rollout promoted and was verified."""
    running = target.current().stable_image
    mark = target.progress().rollout if isinstance(target, ProgressSource) else None
    if mark is not None and mark.state is RolloutState.PROGRESSING:
        raise SourceBusy(f"promote refused: the rollout of {mark.image} on {stack} has not ended for {service}; "
                         "promote once it is promoted")
    records = [r for r in journal.history(StackName(stack), limit=1000) if r.service == service]
    last = records[0] if records else None
    if last is not None and not last.phase.terminal:
        raise SourceBusy(f"promote refused: rollout {last.id} of {last.image} on {stack} is still {last.phase.value}; "
                         "promote once it is promoted")
    if mark is not None and mark.state is RolloutState.ROLLED_BACK:
        raise PromotionRefused(f"promote refused: {stack}'s last rollout of {service} ({mark.image}) rolled back"
                               + _journal_reason(journal, last, mark.image))
    if last is not None and (mark is None or last.image == mark.image):
        state = replay(read(journal, last.id))
        if last.phase is not Phase.PROMOTED:
            raise PromotionRefused(f"promote refused: {stack}'s last rollout of {service} ({last.image}, {last.id}) "
                                   f"ended {last.phase.value}: {state.reason}")
        if state.verified is not True:
            raise PromotionRefused(f"promote refused: {stack}'s last rollout of {service} ({last.image}, {last.id}) "
                                   "promoted but its end check did not verify what serves")
        if last.image != running:
            raise PromotionRefused(f"promote refused: {stack} runs {running} for {service}, not {last.image} that "
                                   f"its last rollout {last.id} promoted (changed since)")
        return Verified(running, last.id)
    if mark is not None and mark.state is RolloutState.PROMOTED and mark.image == running:
        return Verified(running, None)
    raise PromotionRefused(f"promote refused: no promoted rollout of {service} is recorded for {stack} (it runs "
                           f"{running}, never verified by `gantry rollout`)")


def _journal_reason(journal: Journal, last: RolloutRecord | None, image: str) -> str:
    if last is not None and last.image == image:
        return f": {replay(read(journal, last.id)).reason}"
    return ""
