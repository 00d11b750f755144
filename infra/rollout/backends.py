"""What a rollout backend contributes, typed: the base classes each backend module's settings model extends.

A backend is one module: its settings model extends one of these (itself a config-layer base from
``infra.settings.rollout``), declares ``kind: Literal["<name>"]`` and its own fields, implements the
methods below, and registers once with ``@registry.METRICS.register`` (or TARGETS, NOTIFIERS, HOOKS).
The factory only calls these methods; it never branches on a backend's name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

from components.spec import Color, Strategy
from infra.config import GantryConfig, ServiceConfig
from infra.rollout.seams import Analysis, Hook, JSONValue, MetricQuery, MetricsProvider, Notifier, StackName, Target
from infra.settings.rollout import HookBackend, MetricsBackend, NotifierBackend, RolloutSettings, TargetBackend

if TYPE_CHECKING:
    from infra.rollout.analysis import TrafficSource

OnOutput = Callable[[str], None]
T = TypeVar("T")


@runtime_checkable
class StackOutputs(Protocol):
    """A target that can read its stack's outputs (the Pulumi target): where metrics and kubeconfig live."""

    def stack_output(self, name: str) -> JSONValue | None: ...


@runtime_checkable
class RestartSource(Protocol):
    """A target that counts the new version's restarts itself (the sandbox's supervisor)."""

    def restart_counter(self, image: str) -> tuple[MetricsProvider, MetricQuery]: ...


@dataclass(frozen=True, slots=True)
class MetricsEndpoint:
    """Where health queries go and how they authenticate, with where that came from (for `rollout plan`)."""

    url: str | None
    auth: str
    region: str | None
    source: str


@dataclass(frozen=True, slots=True)
class TargetContext:
    project: Path
    stack: StackName
    service: str
    config: GantryConfig
    strategy: Strategy
    on_output: OnOutput | None = None


@dataclass(frozen=True, slots=True)
class MetricsContext:
    """What a metrics backend may use to build its provider and its per-version traffic."""

    settings: RolloutSettings
    project: Path
    config: GantryConfig | None = None
    outputs: StackOutputs | None = None
    endpoint: MetricsEndpoint | None = None
    kubeconfig: str | None = None
    namespace: str | None = None
    service: str | None = None
    svc: ServiceConfig | None = None
    image: str = ""
    baseline_image: str = ""
    new_color: Color | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    """Where secrets named by the settings (``apiKeyEnv``) are read from."""


class RolloutTarget(TargetBackend):
    """A rollout target backend: builds the ``Target`` seam for one service of one stack."""

    def build(self, ctx: TargetContext) -> Target:
        raise NotImplementedError

    def describe(self, stack: str, service: str) -> str:
        """How ``rollout plan`` names what is shifted."""
        return self.kind

    def restarts_plan(self, service: str, svc: ServiceConfig, strategy: Strategy, new_color: Color | None,
                      settings: RolloutSettings) -> tuple[str, str] | None:
        """How ``rollout plan`` shows the restarts gate on this target: (query, note), or None for none."""
        return None


class MetricsSource(MetricsBackend):
    """A metrics backend: resolves its endpoint, builds the provider, and (if it can) per-version traffic."""

    def endpoint(self, ctx: MetricsContext) -> MetricsEndpoint:
        return MetricsEndpoint(None, "none", None, "none")

    def build(self, ctx: MetricsContext) -> MetricsProvider:
        raise NotImplementedError

    def traffic(self, ctx: MetricsContext, provider: MetricsProvider) -> TrafficSource | None:
        """Per-version request and error counts (None: the backend offers none, gates judge alone)."""
        return None

    def without_metrics(self) -> Analysis | None:
        """The analysis when there is neither traffic nor a gate (None: that is a configuration error)."""
        return None

    def plan_source(self, config: GantryConfig) -> dict[str, JSONValue]:
        """Where the endpoint will come from, for ``rollout plan`` (nothing remote is read)."""
        return {"provider": self.kind, "url": None, "source": "none", "auth": "none", "region": None}

    def plan_queries(self, ctx: MetricsContext, window: float) -> PlannedQueries | None:
        """The per-version queries the analysis will send, rendered for ``rollout plan`` (None: no traffic)."""
        return None


@dataclass(frozen=True, slots=True)
class PlannedQueries:
    """Rendered per-track queries: ``error_rate``, ``p95`` and ``buckets`` (the baseline has no p95)."""

    plane: str
    canary: Mapping[str, str]
    baseline: Mapping[str, str]


class RolloutNotifier(NotifierBackend):
    """A notifier backend: builds the ``Notifier`` seam, masking ``secrets`` in what it sends and logs."""

    def build(self, index: int, environ: Mapping[str, str], secrets: Sequence[str]) -> Notifier:
        raise NotImplementedError


class RolloutHook(HookBackend):
    """A hook backend: builds the ``Hook`` seam with its resolved environment."""

    def build(self, env: Mapping[str, str], secrets: Sequence[str]) -> Hook:
        raise NotImplementedError


def as_target(settings: TargetBackend) -> RolloutTarget:
    return _checked(settings, RolloutTarget)


def as_metrics(settings: MetricsBackend) -> MetricsSource:
    return _checked(settings, MetricsSource)


def as_notifier(settings: NotifierBackend) -> RolloutNotifier:
    return _checked(settings, RolloutNotifier)


def as_hook(settings: HookBackend) -> RolloutHook:
    return _checked(settings, RolloutHook)


def _checked(settings: object, cls: type[T]) -> T:
    if not isinstance(settings, cls):
        raise TypeError(f"{type(settings).__name__} is registered but does not extend {cls.__name__}")
    return settings
