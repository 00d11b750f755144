"""Rollout hooks: an HTTP POST of a JSON payload (2xx passes) or an argv command (exit 0 passes).

Registers the ``http`` and ``command`` hook backends.
The scheduler runs them at pre-rollout, each step, confirm-promotion, post-rollout and rollback, like
Flagger's webhooks. Never a shell, always a timeout, and ``run`` never raises: a hook that cannot run
fails, and its detail is masked before it reaches the journal. An argv starting with ``gantry`` runs as
``<this interpreter> -m infra.cli``: no activated venv or PATH entry is needed.

A command hook runs with a minimal environment, never Gantry's own (which holds cloud credentials and
webhook URLs): ``PATH`` and ``HOME``, the variables its ``env:`` lists, and these, from the payload:

- ``GANTRY_HOOK_NAME``, ``GANTRY_HOOK_PHASE`` (pre-rollout, step, confirm-promotion, post-rollout, rollback);
- ``GANTRY_ROLLOUT_ID``, ``GANTRY_STACK``, ``GANTRY_SERVICE``;
- ``GANTRY_IMAGE`` (the new version), ``GANTRY_BASELINE_IMAGE``, ``GANTRY_STEP`` and ``GANTRY_WEIGHT``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from components.spec import Spec
from components.validation import Violation, raise_first
from infra import registry
from infra.errors import InputError
from infra.rollout.argv import Timeout, run_argv
from infra.rollout.backends import RolloutHook
from infra.rollout.masking import Masker
from infra.rollout.seams import Hook, HookPhase, HookResult, JSONObject
from infra.settings.rollout import refuse_secure

HOOK_BASE_ENV = ("PATH", "HOME")
"""What every command hook gets from Gantry's own environment; anything else must be listed in its ``env``."""
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"

DETAIL_LIMIT = 500
# Payload key -> the variable a command hook gets it in.
PAYLOAD_ENV = {"rollout": "GANTRY_ROLLOUT_ID", "stack": "GANTRY_STACK", "service": "GANTRY_SERVICE",
               "image": "GANTRY_IMAGE", "baseline": "GANTRY_BASELINE_IMAGE", "step": "GANTRY_STEP",
               "weight": "GANTRY_WEIGHT"}


def hook_environment(name: str, phase: HookPhase, payload: JSONObject, extra: Mapping[str, str],
                     base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a command hook: PATH and HOME, its allow-listed ``extra``, then GANTRY_*."""
    base = os.environ if base is None else base
    env = {k: base[k] for k in HOOK_BASE_ENV if k in base}
    env.update(extra)
    env.update({var: str(payload[key]) for key, var in PAYLOAD_ENV.items() if payload.get(key) is not None})
    env.update(GANTRY_HOOK_NAME=name, GANTRY_HOOK_PHASE=phase.value)
    return env


GANTRY_MODULE = "infra.cli"
"""The module behind the ``gantry`` script (pyproject's ``[project.scripts]``)."""


def resolve_argv(argv: Sequence[str]) -> list[str]:
    """``gantry ...`` runs through this interpreter (``python -m infra.cli``): a hook must not depend on an
    activated venv or on which ``gantry`` PATH happens to find first."""
    if argv and argv[0] == "gantry":
        return [sys.executable, "-m", GANTRY_MODULE, *argv[1:]]
    return list(argv)


def _check_timeout(name: str, timeout: float) -> None:
    if not 0 < timeout <= 3600:
        raise InputError(f"hooks.{name}.timeout must be within (0, 3600] seconds, but {timeout} was given")


@dataclass(frozen=True, slots=True)
class HttpHook:
    """POSTs ``{"hook", "phase", **payload}`` as JSON to ``url``; any 2xx passes."""

    name: str
    phase: HookPhase
    url: str
    timeout: float = 10.0
    headers: Mapping[str, str] = field(default_factory=dict)
    secrets: Sequence[str] = ()

    def __post_init__(self) -> None:
        _check_timeout(self.name, self.timeout)
        if not self.url.startswith(("http://", "https://")):
            raise InputError(f"hooks.{self.name}.url must be an http(s) URL, but {self.url!r} was given")

    def run(self, payload: JSONObject) -> HookResult:
        import httpx

        masker = Masker([*self.secrets, *self.headers.values()])
        body = {"hook": self.name, "phase": self.phase.value, **payload}
        try:
            with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
                response = client.post(self.url, json=body, headers=dict(self.headers))
        except httpx.TimeoutException:
            return HookResult(False, f"timed out after {self.timeout:g}s")
        except httpx.HTTPError as exc:
            return HookResult(False, masker.mask(f"request failed: {exc}")[:DETAIL_LIMIT])
        text = masker.mask(response.text.strip())[:DETAIL_LIMIT]
        ok = 200 <= response.status_code < 300
        return HookResult(ok, f"HTTP {response.status_code}" + (f": {text}" if text else ""))


@dataclass(frozen=True, slots=True)
class CommandHook:
    """Runs ``argv`` with the JSON payload on stdin in a minimal environment (see the module); exit 0 passes.

    ``env`` holds the allow-listed variables, already resolved; their values are masked in its detail like
    ``secrets`` (every secret Gantry knows), since a hook may print what it was given.
    """

    name: str
    phase: HookPhase
    argv: Sequence[str]
    timeout: float = 60.0
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    secrets: Sequence[str] = ()

    def __post_init__(self) -> None:
        _check_timeout(self.name, self.timeout)
        if not self.argv or isinstance(self.argv, str):
            raise InputError(f"hooks.{self.name}.argv must be a non-empty list of arguments, "
                             f"but {self.argv!r} was given")

    def run(self, payload: JSONObject) -> HookResult:
        masker = Masker([*self.secrets, *self.env.values()])
        body = json.dumps({"hook": self.name, "phase": self.phase.value, **payload})
        env = hook_environment(self.name, self.phase, payload, self.env)
        try:
            done = run_argv(resolve_argv(self.argv), timeout=self.timeout, stdin=body, env=env, cwd=self.cwd)
        except Timeout:
            return HookResult(False, f"timed out after {self.timeout:g}s")
        except OSError as exc:
            return HookResult(False, masker.mask(f"cannot run {self.argv[0]}: {exc.strerror}"))
        output = (done.stdout.strip() + "\n" + done.stderr.strip()).strip()
        # Masked before it is cut, so a secret straddling the cut cannot leave a readable piece.
        tail = masker.mask(output)[-DETAIL_LIMIT:]
        return HookResult(done.returncode == 0, f"exit {done.returncode}" + (f": {tail}" if tail else ""))


# --------------------------------------------------------------------------- the backends


class HookEnvSettings(Spec):
    """One variable a command hook may see: passed through from Gantry's environment, or set to ``value``."""

    name: str = Field(pattern=_ENV_NAME, description="Variable name. Required.")
    value: Annotated[str | None, BeforeValidator(lambda v: refuse_secure(
        v, "keep the secret in the pipeline's environment and list the variable by name with secret: true"))] = (
        Field(default=None, description="Literal value. Default: none (Gantry's own value of the variable, "
                                        "which must be set)."))
    secret: bool = Field(default=False, description="Mask the value in the journal, logs and output. "
                                                    "Default: false.")

    @model_validator(mode="after")
    def _not_reserved(self) -> HookEnvSettings:
        if self.name.startswith("GANTRY_"):
            raise_first([Violation("name", "a name outside GANTRY_* (Gantry sets those itself)", self.name)])
        return self


def _env_entry(value: object) -> object:
    # `env: [KUBECONFIG]` is shorthand for `env: [{name: KUBECONFIG}]`.
    return {"name": value} if isinstance(value, str) else value


@registry.HOOKS.register
class HttpHookSettings(RolloutHook):
    """POST a JSON payload to ``url``; a 2xx passes."""

    kind: Literal["http"] = "http"
    url: Annotated[str, BeforeValidator(lambda v: refuse_secure(
        v, "use an argv hook instead and pass the token in its env with secret: true"))] = Field(
        description="POST a JSON payload here. Required.")
    env: list[str | dict[str, object]] = Field(default_factory=list, exclude=True,
                                               description="Must stay empty: an HTTP hook runs no process.")

    @model_validator(mode="after")
    def _no_env(self) -> HttpHookSettings:
        if self.env:
            raise_first([Violation("env", "empty for an HTTP hook (it runs no process)", self.env)])
        return self

    def build(self, env: Mapping[str, str], secrets: Sequence[str]) -> Hook:
        return HttpHook(self.name, HookPhase(self.phase), self.url, timeout=float(self.timeout),
                        secrets=tuple(secrets))


@registry.HOOKS.register
class CommandHookSettings(RolloutHook):
    """Run ``argv`` (never a shell) with the payload on stdin, in a minimal environment; exit 0 passes."""

    kind: Literal["command"] = "command"
    argv: list[str] = Field(min_length=1, description="Command and arguments. Required.")
    env: list[Annotated[HookEnvSettings, BeforeValidator(_env_entry)]] = Field(
        default_factory=list,
        description="Variables the hook sees besides PATH, HOME and GANTRY_*: names passed through from "
                    "Gantry's environment, or {name, value, secret}. Default: none (a minimal environment).")

    @model_validator(mode="after")
    def _distinct(self) -> CommandHookSettings:
        names = [e.name for e in self.env]
        if len(set(names)) != len(names):
            raise_first([Violation("env", "a list of distinct variable names", names)])
        return self

    def resolved_env(self, index: int, environ: Mapping[str, str]) -> dict[str, str]:
        resolved: dict[str, str] = {}
        for e in self.env:
            value = e.value if e.value is not None else environ.get(e.name)
            if value is None:
                raise InputError(f"rollout.hooks[{index}].env.{e.name} must be set in Gantry's environment or "
                                 f"given a value, but {e.name} is unset")
            resolved[e.name] = value
        return resolved

    def secret_values(self, env: Mapping[str, str]) -> list[str]:
        return [env[e.name] for e in self.env if e.secret]

    def build(self, env: Mapping[str, str], secrets: Sequence[str]) -> Hook:
        return CommandHook(self.name, HookPhase(self.phase), list(self.argv), timeout=float(self.timeout), env=env,
                           secrets=tuple(secrets))
