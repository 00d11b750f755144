"""Builds a rollout's parts (target, analysis, hooks, notifier, plan) from a stack's config.

Called by ``gantry rollout`` and ``gantry rollback``. Every part comes from the backend the stack's
validated settings name (``infra.registry``; the settings object *is* the registered backend), so this
module never branches on a backend's name: a new target, metrics provider, notifier or hook adds a
module, not a case here. Backends import their heavy libraries lazily, so a canary on the sandbox never
loads the Automation API and vice versa.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from components.spec import Color, Strategy
from infra.config import GantryConfig, ServiceConfig
from infra.errors import InputError
from infra.rollout.backends import (
    MetricsContext,
    MetricsEndpoint,
    OnOutput,
    RestartSource,
    StackOutputs,
    TargetContext,
    as_hook,
    as_metrics,
    as_notifier,
    as_target,
)
from infra.rollout.scheduler import Plan, bluegreen_plan, canary_plan
from infra.rollout.seams import Analysis, Hook, HookPhase, MetricQuery, MetricsProvider, Notifier, StackName, Target
from infra.settings.rollout import RolloutSettings

if TYPE_CHECKING:
    from infra.rollout import analysis as judges

__all__ = ["MetricsEndpoint", "OnOutput", "Parts", "RestartSource", "StackOutputs", "build", "known_secrets",
           "make_analysis", "make_hooks", "make_metrics", "make_notifier", "make_plan", "make_target",
           "metrics_endpoint", "traffic_source"]


def make_target(settings: RolloutSettings, *, project: Path, stack: StackName, service: str, config: GantryConfig,
                strategy: Strategy, on_output: OnOutput | None = None) -> Target:
    """The target backend the settings name, for one service of one stack."""
    return as_target(settings.target).build(TargetContext(project, stack, service, config, strategy, on_output))


def metrics_endpoint(settings: RolloutSettings, config: GantryConfig,
                     outputs: StackOutputs | None) -> MetricsEndpoint:
    """Where the metrics backend's queries go (its own settings first, else what the stack exports)."""
    return as_metrics(settings.metrics).endpoint(MetricsContext(settings, Path("."), config=config, outputs=outputs))


def make_metrics(settings: RolloutSettings, project: Path, endpoint: MetricsEndpoint | None = None, *,
                 kubeconfig: str | None = None, namespace: str | None = None) -> MetricsProvider:
    """The stack's metrics provider, at the resolved endpoint and with the resolved auth."""
    return as_metrics(settings.metrics).build(MetricsContext(settings, project, endpoint=endpoint,
                                                             kubeconfig=kubeconfig, namespace=namespace))


def traffic_source(settings: RolloutSettings, provider: MetricsProvider, *, service: str | None,
                   svc: ServiceConfig | None, image: str, baseline_image: str, project: Path = Path("."),
                   new_color: Color | None = None) -> judges.TrafficSource | None:
    """Per-track traffic, if the metrics backend offers it (its health-query template, or its own series)."""
    ctx = MetricsContext(settings, project, service=service, svc=svc, image=image, baseline_image=baseline_image,
                         new_color=new_color)
    return as_metrics(settings.metrics).traffic(ctx, provider)


def kubeconfig_path(settings: RolloutSettings, project: Path, stack: str, outputs: StackOutputs | None) -> str | None:
    """``rollout.restarts.kubeconfig``, else the stack's kubeconfig output written 0600 under ``.gantry/``."""
    if settings.restarts.kubeconfig is not None:
        return settings.restarts.kubeconfig
    value = outputs.stack_output("kubeconfig") if outputs is not None else None
    if not isinstance(value, str) or not value:
        return None
    path = project / ".gantry" / "kube" / f"{stack}.kubeconfig"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value)
    return str(path)


def restarts_selector(service: str, strategy: Strategy, new_color: Color | None = None) -> str:
    """The new version's pods, by the labels the delivery components set (``components.k8s.labels``)."""
    from components.k8s import labels as lbl

    if strategy is Strategy.CANARY:
        return f"{lbl.NAME}={service},{lbl.TRACK}={lbl.Track.CANARY.value}"
    return f"{lbl.NAME}={service},{lbl.COLOR}={(new_color or Color.GREEN).value}"


def restarts_gate(settings: RolloutSettings, *, project: Path, stack: str, service: str, svc: ServiceConfig,
                  outputs: StackOutputs | None, new_color: Color | None = None) -> judges.MetricGate | None:
    """The seed's restarts gate (more than ``maxRestarts`` container restarts of the new pods rolls back)."""
    path = kubeconfig_path(settings, project, stack, outputs)
    if path is None:
        return None
    from infra.rollout import analysis as judges
    from infra.rollout.metrics.kubernetes import KubernetesProvider

    provider = KubernetesProvider(kubeconfig=path, context=settings.restarts.context, namespace=svc.namespace)
    return judges.restarts_gate(provider, restarts_selector(service, svc.strategy, new_color), svc.namespace,
                                settings.max_restarts)


def make_analysis(settings: RolloutSettings, *, project: Path, image: str, baseline_image: str,
                  provider: MetricsProvider | None = None, service: str | None = None,
                  svc: ServiceConfig | None = None, endpoint: MetricsEndpoint | None = None,
                  extra_gates: Sequence[judges.MetricGate] = (), new_color: Color | None = None,
                  kubeconfig: str | None = None,
                  strategy: Strategy = Strategy.CANARY) -> Analysis:
    """The judge ``settings.judge`` names, fed by the stack's provider, its template and every gate."""
    from infra.rollout import analysis as judges

    provider = provider or make_metrics(settings, project, endpoint, kubeconfig=kubeconfig,
                                        namespace=svc.namespace if svc is not None else None)
    gates = [judges.MetricGate(g.name, provider, MetricQuery(name=g.name, expr=g.expr), g.max, g.min_count)
             for g in settings.gates]
    gates.extend(extra_gates)
    traffic = traffic_source(settings, provider, service=service, svc=svc, image=image, project=project,
                             baseline_image=baseline_image, new_color=new_color)
    fallback = as_metrics(settings.metrics).without_metrics() if traffic is None and not gates else None
    if fallback is not None:
        return fallback
    if traffic is None and not gates:
        raise InputError(f"rollout.gates must be non-empty when metrics.kind is {settings.metrics.kind} "
                         "(it gives no per-version traffic), but [] was given")
    judge = settings.judge if traffic is not None else "threshold"
    return judges.make_analysis(settings.model_copy(update={"judge": judge}), traffic, gates,
                                strategy=strategy.value)


def hook_env(settings: RolloutSettings, environ: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """Each hook's allow-listed variables, resolved: a literal ``value``, else Gantry's own (which must be set)."""
    environ = os.environ if environ is None else environ
    return [h.resolved_env(i, environ) for i, h in enumerate(settings.hooks)]


def known_secrets(settings: RolloutSettings, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Every secret the rollout's config makes Gantry hold: notifier URLs and hook env values marked secret.

    (and the metrics backend's keys, e.g. Datadog's).
    These are masked in every sink: the journal, logs, ``--json`` stdout, the console and hook details.
    """
    environ = os.environ if environ is None else environ
    secrets: list[str] = list(settings.metrics.secret_values(environ))
    for i, n in enumerate(settings.notifications):
        secrets += n.secret_values(i, environ)
    for h, env in zip(settings.hooks, hook_env(settings, environ), strict=True):
        secrets += h.secret_values(env)
    return tuple(dict.fromkeys(secrets))


def make_hooks(settings: RolloutSettings, *, secrets: Sequence[str] = (),
               environ: Mapping[str, str] | None = None) -> list[Hook]:
    """The configured hooks; each masks ``secrets`` (all the rollout's, not only its own) in its detail."""
    return [as_hook(h).build(env, tuple(secrets))
            for h, env in zip(settings.hooks, hook_env(settings, environ), strict=True)]


def make_notifier(settings: RolloutSettings, *, secrets: Sequence[str] = (),
                  environ: Mapping[str, str] | None = None) -> Notifier | None:
    """Every configured notifier behind one fan-out (None when the stack configures none)."""
    if not settings.notifications:
        return None
    from infra.rollout.notify import FanOut

    environ = os.environ if environ is None else environ
    return FanOut([as_notifier(n).build(i, environ, tuple(secrets)) for i, n in enumerate(settings.notifications)],
                  secrets=secrets)


def make_plan(settings: RolloutSettings, strategy: Strategy, hook_phases: Sequence[HookPhase] = ()) -> Plan:
    if strategy is Strategy.CANARY:
        return canary_plan(settings.weights(), interval=float(settings.interval), threshold=settings.threshold,
                           max_holds=settings.max_holds, hook_phases=hook_phases)
    return bluegreen_plan(interval=float(settings.interval),
                          post_promotion_window=float(settings.post_promotion_window),
                          threshold=settings.threshold, scale_down_delay=float(settings.scale_down_delay),
                          max_holds=settings.max_holds, hook_phases=hook_phases)


@dataclass(frozen=True, slots=True)
class Parts:
    """Everything the engine needs for one rollout, apart from the journal, the lock and the clock."""

    target: Target
    analysis: Analysis
    hooks: tuple[Hook, ...]
    notifier: Notifier | None
    plan: Plan
    secrets: tuple[str, ...] = ()
    """Every secret the config made Gantry hold; the CLI masks them in every sink."""


def build(*, project: Path, stack: StackName, service: str, config: GantryConfig, settings: RolloutSettings,
          strategy: Strategy, image: str, on_output: OnOutput | None = None) -> Parts:
    """Build every part from config; the target's current stable image is the analysis baseline."""
    # Resolved first: a missing variable is an input error before the target is touched.
    secrets = known_secrets(settings)
    target = make_target(settings, project=project, stack=stack, service=service, config=config,
                         strategy=strategy, on_output=on_output)
    current = target.current()
    baseline = current.stable_image
    hooks = tuple(make_hooks(settings, secrets=secrets))
    outputs = target if isinstance(target, StackOutputs) else None
    svc = config.services[service]
    new_color = (current.active_color or svc.active_color).other if strategy is Strategy.BLUEGREEN else None
    extra: list[judges.MetricGate] = []
    kube = kubeconfig_path(settings, project, stack, outputs) if settings.metrics.needs_kubeconfig else None
    if isinstance(target, RestartSource):
        from infra.rollout.analysis import MetricGate

        counter, query = target.restart_counter(image)
        extra.append(MetricGate("restarts", counter, query, float(settings.max_restarts)))
    elif outputs is not None:
        gate = restarts_gate(settings, project=project, stack=stack, service=service, svc=svc, outputs=outputs,
                             new_color=new_color)
        if gate is not None:
            extra.append(gate)
    return Parts(
        target=target,
        analysis=make_analysis(settings, project=project, image=image, baseline_image=baseline, service=service,
                               svc=svc, endpoint=metrics_endpoint(settings, config, outputs), extra_gates=extra,
                               new_color=new_color, kubeconfig=kube, strategy=strategy),
        hooks=hooks,
        notifier=make_notifier(settings, secrets=secrets),
        plan=make_plan(settings, strategy, sorted({h.phase for h in hooks})),
        secrets=secrets,
    )
