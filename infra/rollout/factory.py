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

from components.spec import Strategy
from infra.config import GantryConfig, SecretValue
from infra.errors import InputError
from infra.rollout.scheduler import Plan, bluegreen_plan, canary_plan
from infra.rollout.seams import (
    Analysis,
    Hook,
    HookPhase,
    MetricQuery,
    MetricsProvider,
    Notifier,
    StackName,
    Target,
    Track,
)
from infra.rollout.settings import RolloutSettings, parse_duration

TARGETS: tuple[str, ...] = ("pulumi", "haproxy", "file")
NOTIFIERS: tuple[str, ...] = ("slack", "webhook")

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


def make_metrics(settings: RolloutSettings, project: Path) -> MetricsProvider:
    """The stack's metrics provider (part B's factory), with the sandbox's Prometheus URL resolved."""
    from infra.rollout.metrics import make_provider

    m = settings.metrics
    options: dict[str, object] = {}
    if m.provider in ("prometheus", "http") and m.url is not None:
        url = m.url
        if m.provider == "prometheus" and settings.target == "haproxy":
            from infra.sandbox.state import resolve_prometheus_url

            url = resolve_prometheus_url(url, project)
        options["url"] = url
    return make_provider(m.provider, **options)


def make_analysis(settings: RolloutSettings, *, project: Path, image: str, baseline_image: str,
                  provider: MetricsProvider | None = None, service: str | None = None) -> Analysis:
    """The judge ``settings.judge`` names, fed by the stack's provider and extra gates."""
    from infra.rollout import analysis as judges

    provider = provider or make_metrics(settings, project)
    gates = [judges.MetricGate(g.name, provider, MetricQuery(name=g.name, expr=g.expr), g.max, g.min_count)
             for g in settings.gates]
    traffic: judges.TrafficSource | None = None
    if settings.metrics.provider == "prometheus":
        from infra.rollout.metrics.prometheus import PrometheusProvider, PrometheusTraffic

        if isinstance(provider, PrometheusProvider):
            versions: Mapping[Track, str] = {Track.CANARY: "canary", Track.BASELINE: "stable"}
            if settings.target == "haproxy":
                # The sandbox labels series by demo version and status, scoped to the service's scrape targets.
                from infra.sandbox.target import sandbox_traffic

                traffic = sandbox_traffic(provider, service, image, baseline_image)
            else:
                traffic = PrometheusTraffic(provider, versions=versions)
    if traffic is None and not gates:
        raise InputError(f"rollout.gates must be non-empty when metrics.provider is {settings.metrics.provider} "
                         "(it gives no per-version traffic), but [] was given")
    judge = settings.judge if traffic is not None else "threshold"
    return judges.make_analysis(settings.model_copy(update={"judge": judge}), traffic, gates)


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
    baseline = target.current().stable_image
    hooks = tuple(make_hooks(settings, secrets=secrets))
    return Parts(
        target=target,
        analysis=make_analysis(settings, project=project, image=image, baseline_image=baseline, service=service),
        hooks=hooks,
        notifier=make_notifier(settings, secrets=secrets),
        plan=make_plan(settings, strategy, sorted({h.phase for h in hooks})),
        secrets=secrets,
    )
