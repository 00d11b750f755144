"""The ``pulumi`` rollout target backend: its settings, its constructor and its registration.

The target itself is ``infra.rollout.pulumi_target.PulumiStackTarget`` (the Automation API); it is imported
only when a rollout builds it, so registering costs nothing and a sandbox canary never loads the
Automation API (importing it takes about a second).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from components.spec import Cloud, Color, Strategy
from infra import registry
from infra.config import GantryConfig, ServiceConfig
from infra.rollout.backends import RolloutTarget, TargetContext
from infra.rollout.seams import Target
from infra.settings.rollout import RolloutSettings


@registry.TARGETS.register
class PulumiTargetSettings(RolloutTarget):
    """Shift traffic through the stack's own Pulumi program: config ``gantry:services.<svc>.*``, then ``up``."""

    kind: Literal["pulumi"] = "pulumi"

    program_routes: ClassVar[bool] = True

    def build(self, ctx: TargetContext) -> Target:
        from infra.rollout.pulumi_target import PulumiStackTarget

        return PulumiStackTarget(ctx.stack, ctx.service, ctx.project, ctx.strategy, on_output=ctx.on_output)

    def local_problem(self, cfg: GantryConfig, settings: RolloutSettings) -> str | None:
        # A local stack's program has no cluster; only the engine-driven sandbox (its metrics are the
        # sandbox's) has routing to shift.
        if cfg.cloud is Cloud.LOCAL and not settings.metrics.local:
            return ("target must be haproxy (the sandbox) on a local stack, or pulumi with metrics.url sandbox "
                    "(the engine-driven sandbox), but 'pulumi' was given")
        return None

    def describe(self, stack: str, service: str) -> str:
        return f"Pulumi stack {stack} (Automation API: config gantry:services.{service}.*, then up)"

    def restarts_plan(self, service: str, svc: ServiceConfig, strategy: Strategy, new_color: Color | None,
                      settings: RolloutSettings) -> tuple[str, str] | None:
        from infra.rollout.factory import restarts_selector

        selector = restarts_selector(service, strategy, new_color)
        kube = settings.restarts.kubeconfig or "the stack's kubeconfig output"
        return (f"kubernetes: sum of restartCount over pods {selector} in namespace {svc.namespace}",
                f"via {kube}")
