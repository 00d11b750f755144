"""Where each service's rollout progress comes from when the program runs; called by ``infra.platform``.

Rollout progress is never written to the git-tracked stack file. On every ``up`` the program reads it
from the outputs of the stack's previous update (the engine's ``pulumi:pulumi:readStackOutputs`` on its
own stack), and ``gantry`` passes a rollout step for one service in the environment of the ``pulumi up``
it runs (``GANTRY_ROLLOUT_STEP``), which exists for that process only. ``components.k8s.outputs.resolve``
then decides each service's progress. ``PulumiStackTarget`` writes the instruction; the Automation API
fake runs the same ``resolve`` (its engine tests check the fake against the real CLI).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from components.k8s.outputs import Progress, ServiceOutputs, resolve
from components.spec import ServiceSpec
from infra.errors import InputError

ENV = "GANTRY_ROLLOUT_STEP"
"""The variable carrying a rollout step into the program, set only on the ``pulumi up`` gantry runs."""

READ_OUTPUTS = "pulumi:pulumi:readStackOutputs"

S = TypeVar("S", bound=ServiceSpec)


class Instruction(BaseModel):
    """One rollout step for one service of one stack."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stack: str
    service: str
    progress: Progress

    def to_env(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)


def instruction_from_env(stack: str, environ: Mapping[str, str] | None = None) -> Instruction | None:
    """The step gantry passed for this stack, if any; a malformed one stops the update (never guessed)."""
    raw = (os.environ if environ is None else environ).get(ENV)
    if not raw:
        return None
    try:
        instruction = Instruction.model_validate_json(raw)
    except ValidationError as exc:
        raise InputError(f"{ENV} must be a rollout step written by gantry, but it does not parse: "
                         f"{exc.errors()[0]['msg']}") from None
    if instruction.stack != stack:
        raise InputError(f"{ENV} must name this stack ({stack}), but it names {instruction.stack!r}")
    return instruction


def previous_services(outputs: Mapping[str, object] | None) -> dict[str, ServiceOutputs]:
    """The ``services`` output of the previous update, typed; a service that does not parse has none."""
    raw = (outputs or {}).get("services")
    found: dict[str, ServiceOutputs] = {}
    if isinstance(raw, Mapping):
        for name, value in raw.items():
            try:
                found[str(name)] = ServiceOutputs.model_validate(value)
            except ValidationError:
                continue  # e.g. an output from before services were exported: treat as a first update
    return found


def read_own_outputs() -> Mapping[str, object] | None:
    """The outputs of this stack's previous update, read through the engine (None under mocks)."""
    import pulumi
    from pulumi.runtime import invoke
    from pulumi.runtime.mocks import MockMonitor
    from pulumi.runtime.settings import get_monitor

    if isinstance(get_monitor(), MockMonitor):
        # Offline (gantry render/check): there is no previous update, the stack file's state renders.
        return None
    name = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    result = invoke(READ_OUTPUTS, {"name": name})
    value = result.value if isinstance(result.value, Mapping) else {}
    outputs = value.get("outputs")
    return outputs if isinstance(outputs, Mapping) else {}


def resolve_services(services: Mapping[str, S], previous: Mapping[str, ServiceOutputs],
                     instruction: Instruction | None) -> dict[str, tuple[S, str, Progress]]:
    """Per service: the spec to build (with its progress), the desired image to record, and the progress."""
    if instruction is not None and instruction.service not in services:
        valid = ", ".join(sorted(services)) or "none"
        raise InputError(f"{ENV} must name one of the stack's services ({valid}), but {instruction.service!r} "
                         "was given")
    out: dict[str, tuple[S, str, Progress]] = {}
    for name, spec in services.items():
        step = instruction.progress if instruction is not None and instruction.service == name else None
        progress, desired = resolve(spec, previous.get(name), step)
        out[name] = (progress.applied_to(spec), desired, progress)
    return out
