"""Builds a rollout's parts (target, analysis, hooks, notifier, plan) from a stack's config, by backend name.

Called by ``gantry rollout`` and ``gantry rollback``. Backends are imported lazily, so a canary on the
sandbox never loads the Automation API and vice versa. An unknown backend name raises an
``InputError`` listing the valid ones; nothing ever falls back silently.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from components.spec import Cloud, Color, Strategy
from infra.config import GantryConfig, SecretValue, ServiceConfig
from infra.errors import InputError
from infra.rollout.scheduler import Plan, bluegreen_plan, canary_plan
from infra.rollout.seams import (
    Analysis,
    Hook,
    HookPhase,
    JSONValue,
    MetricQuery,
    MetricsProvider,
    Notifier,
    StackName,
    Target,
)
from infra.rollout.settings import RolloutSettings, parse_duration

TARGETS: tuple[str, ...] = ("pulumi", "haproxy", "file")
NOTIFIERS: tuple[str, ...] = ("slack", "webhook")

if TYPE_CHECKING:
    from infra.rollout import analysis as judges

OnOutput = Callable[[str], None]


def unknown(kind: str, name: str, valid: Sequence[str]) -> InputError:
    return InputError(f"{kind} must be one of {', '.join(valid)}, but {name!r} was given")


def file_target_path(project: Path, stack: str, service: str) -> Path:
    return project / ".gantry" / "targets" / f"{stack}-{service}.json"


def make_target(name: str, *, project: Path, stack: StackName, service: str, config: GantryConfig,
                strategy: Strategy, on_output: OnOutput | None = None) -> Target:
    """The target backend ``name`` for one service of one stack."""
    if name == "pulumi":
        from infra.rollout.pulumi_target import PulumiStackTarget

        return PulumiStackTarget(stack, service, project, strategy, on_output=on_output)
    if name == "haproxy":
        from infra.sandbox.target import HaproxyTarget

        return HaproxyTarget(project, config, service)
    if name == "file":
        from infra.rollout.fakes import JsonFileTarget

        svc = config.services[service]
        path = file_target_path(project, stack, service)
        path.parent.mkdir(parents=True, exist_ok=True)
        return JsonFileTarget(path, strategy, svc.image, color=svc.active_color)
    raise unknown("rollout.target", name, TARGETS)


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


def metrics_endpoint(settings: RolloutSettings, config: GantryConfig,
                     outputs: StackOutputs | None) -> MetricsEndpoint:
    """``rollout.metrics.url`` wins; else the cluster's exported managed Prometheus (output ``metrics``)."""
    m = settings.metrics
    region = m.region or (config.region if config.cloud is Cloud.AWS else None)
    if m.url is not None:
        return MetricsEndpoint(m.url, m.auth or "none", region, "config rollout.metrics.url")
    exported = outputs.stack_output("metrics") if outputs is not None else None
    if isinstance(exported, Mapping) and isinstance(exported.get("url"), str) and exported["url"]:
        return MetricsEndpoint(str(exported["url"]), m.auth or str(exported.get("auth") or "none"),
                               m.region or (str(exported["region"]) if exported.get("region") else region),
                               "stack output metrics.url (the cluster's managed Prometheus)")
    return MetricsEndpoint(None, m.auth or "none", region, "none")


def on_sandbox(settings: RolloutSettings) -> bool:
    """Metrics come from the local sandbox's Prometheus: the haproxy target, or ``metrics.url: sandbox``
    (the engine-driven sandbox stack local-engine, whose target is pulumi, judges the same series)."""
    from infra.sandbox.settings import PROMETHEUS_SENTINEL

    return settings.target == "haproxy" or settings.metrics.url == PROMETHEUS_SENTINEL


def make_metrics(settings: RolloutSettings, project: Path, endpoint: MetricsEndpoint | None = None, *,
                 kubeconfig: str | None = None, namespace: str | None = None) -> MetricsProvider:
    """The stack's metrics provider, at the resolved endpoint and with the resolved auth."""
    from infra.rollout.metrics import make_provider

    m = settings.metrics
    endpoint = endpoint or MetricsEndpoint(m.url, m.auth or "none", m.region, "config")
    options: dict[str, object] = {}
    if m.provider in ("prometheus", "http"):
        if endpoint.url is None:
            raise InputError("rollout.metrics.url must be set, or exported by the cluster stack as output "
                             "metrics.url (run `pulumi up` first), but neither was found")
        url = endpoint.url
        if m.provider == "prometheus" and on_sandbox(settings):
            from infra.sandbox.state import resolve_prometheus_url

            url = resolve_prometheus_url(url, project)
        options["url"] = url
        if m.provider == "prometheus" and endpoint.auth != "none":
            from infra.rollout.metrics.auth import make_auth

            options["auth"] = make_auth(endpoint.auth, region=endpoint.region)
    if m.provider == "cloudwatch" and endpoint.region is not None:
        options["region"] = endpoint.region
    if m.provider == "kubernetes":
        options.update(kubeconfig=m.kubeconfig or kubeconfig, context=m.context)
        if m.namespace or namespace:
            options["namespace"] = m.namespace or namespace
    return make_provider(m.provider, **options)


def traffic_source(settings: RolloutSettings, provider: MetricsProvider, *, service: str | None,
                   svc: ServiceConfig | None, image: str, baseline_image: str,
                   new_color: Color | None = None) -> judges.TrafficSource | None:
    """Per-track traffic: the sandbox's own series, or the router's (or app's) health-query template."""
    from infra.rollout.metrics.prometheus import PrometheusProvider

    if settings.metrics.provider != "prometheus" or not isinstance(provider, PrometheusProvider):
        return None
    if on_sandbox(settings):
        # The sandbox labels series by demo version and status, scoped to the service's scrape targets.
        from infra.sandbox.target import sandbox_traffic

        return sandbox_traffic(provider, service, image, baseline_image)
    if svc is None or service is None:
        raise InputError("service must be given to pick its health-query template, but none was given")
    from infra.rollout.metrics.templates import (
        TEMPLATES,
        DataPlane,
        GatewayImplementation,
        TemplatedTraffic,
        plane_for,
        track_ids,
    )

    plane = (DataPlane.APP if settings.metrics.queries == "app"
             else plane_for(svc.router, GatewayImplementation(settings.metrics.gateway)))
    ids = track_ids(service, svc.namespace, svc.service_port, svc.strategy, new_color)
    return TemplatedTraffic(provider, TEMPLATES[plane], ids)


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
    from infra.rollout.metrics import make_provider

    provider = make_provider("kubernetes", kubeconfig=path, context=settings.restarts.context,
                             namespace=svc.namespace)
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
    traffic = traffic_source(settings, provider, service=service, svc=svc, image=image,
                             baseline_image=baseline_image, new_color=new_color)
    if traffic is None and not gates:
        raise InputError(f"rollout.gates must be non-empty when metrics.provider is {settings.metrics.provider} "
                         "(it gives no per-version traffic), but [] was given")
    judge = settings.judge if traffic is not None else "threshold"
    return judges.make_analysis(settings.model_copy(update={"judge": judge}), traffic, gates,
                                strategy=strategy.value)


def hook_env(settings: RolloutSettings, environ: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """Each hook's allow-listed variables, resolved: a literal ``value``, else Gantry's own (which must be set)."""
    environ = os.environ if environ is None else environ
    out: list[dict[str, str]] = []
    for i, h in enumerate(settings.hooks):
        resolved: dict[str, str] = {}
        for e in h.env:
            value = e.value if e.value is not None else environ.get(e.name)
            if value is None:
                raise InputError(f"rollout.hooks[{i}].env.{e.name} must be set in Gantry's environment or given a "
                                 f"value, but {e.name} is unset")
            resolved[e.name] = value
        out.append(resolved)
    return out


def notifier_urls(settings: RolloutSettings, environ: Mapping[str, str] | None = None) -> list[str]:
    """Each notification's URL, from the stack or from ``urlEnv``; every one of them is a secret."""
    environ = os.environ if environ is None else environ
    urls: list[str] = []
    for i, n in enumerate(settings.notifications):
        url = n.url
        if n.url_env is not None:
            url = environ.get(n.url_env)
            if not url:
                raise InputError(f"rollout.notifications[{i}].urlEnv must name a set environment variable, "
                                 f"but {n.url_env} is unset or empty")
        if url is None or isinstance(url, SecretValue):
            # A `secure:` value can only be decrypted by the Pulumi CLI; don't post to a placeholder.
            raise InputError(f"rollout.notifications[{i}].url must be a plain value, but a secure: value was given; "
                             "Gantry cannot decrypt it offline: put the URL in the pipeline's secret store and set "
                             "urlEnv to the variable's name")
        urls.append(url)
    return urls


def known_secrets(settings: RolloutSettings, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Every secret the rollout's config makes Gantry hold: notifier URLs and hook env values marked secret.

    These are masked in every sink: the journal, logs, ``--json`` stdout, the console and hook details.
    """
    secrets = list(notifier_urls(settings, environ))
    for h, env in zip(settings.hooks, hook_env(settings, environ), strict=True):
        secrets += [env[e.name] for e in h.env if e.secret]
    return tuple(dict.fromkeys(secrets))


def make_hooks(settings: RolloutSettings, *, secrets: Sequence[str] = (),
               environ: Mapping[str, str] | None = None) -> list[Hook]:
    """The configured hooks; each masks ``secrets`` (all the rollout's, not only its own) in its detail."""
    from infra.rollout.hooks import CommandHook, HttpHook

    hooks: list[Hook] = []
    for h, env in zip(settings.hooks, hook_env(settings, environ), strict=True):
        phase = HookPhase(h.phase)
        timeout = parse_duration(h.timeout)
        if h.url is not None:
            hooks.append(HttpHook(h.name, phase, h.url, timeout=timeout, secrets=tuple(secrets)))
        elif h.argv is not None:
            hooks.append(CommandHook(h.name, phase, list(h.argv), timeout=timeout, env=env, secrets=tuple(secrets)))
    return hooks


def make_notifier(settings: RolloutSettings, *, secrets: Sequence[str] = (),
                  environ: Mapping[str, str] | None = None) -> Notifier | None:
    if not settings.notifications:
        return None
    from infra.rollout.notify import FanOut, SlackNotifier, WebhookNotifier

    notifiers: list[Notifier] = []
    for n, url in zip(settings.notifications, notifier_urls(settings, environ), strict=True):
        if n.kind == "slack":
            notifiers.append(SlackNotifier(url, secrets=secrets))
        elif n.kind == "webhook":
            notifiers.append(WebhookNotifier(url, secrets=secrets))
        else:  # pragma: no cover - the settings Literal already refuses it
            raise unknown("notifications.kind", n.kind, NOTIFIERS)
    return FanOut(notifiers)


def make_plan(settings: RolloutSettings, strategy: Strategy, hook_phases: Sequence[HookPhase] = ()) -> Plan:
    interval = parse_duration(settings.interval)
    if strategy is Strategy.CANARY:
        return canary_plan(settings.weights(), interval=interval, threshold=settings.threshold,
                           max_holds=settings.max_holds, hook_phases=hook_phases)
    return bluegreen_plan(interval=interval, post_promotion_window=parse_duration(settings.post_promotion_window),
                          threshold=settings.threshold, scale_down_delay=parse_duration(settings.scale_down_delay),
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
    if settings.target not in TARGETS:
        raise unknown("rollout.target", settings.target, TARGETS)
    # Resolved first: a missing variable is an input error before the target is touched.
    secrets = known_secrets(settings)
    target = make_target(settings.target, project=project, stack=stack, service=service, config=config,
                         strategy=strategy, on_output=on_output)
    current = target.current()
    baseline = current.stable_image
    hooks = tuple(make_hooks(settings, secrets=secrets))
    outputs = target if isinstance(target, StackOutputs) else None
    svc = config.services[service]
    new_color = (current.active_color or svc.active_color).other if strategy is Strategy.BLUEGREEN else None
    extra: list[judges.MetricGate] = []
    kube = kubeconfig_path(settings, project, stack, outputs) if settings.metrics.provider == "kubernetes" else None
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
