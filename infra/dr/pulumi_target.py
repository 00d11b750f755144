"""``PulumiDrTarget``: failover on cloud stacks through the Automation API (config writes and ``up``).

Built by ``gantry dr`` for a cloud stack. It reuses the rollout layer's seam (``StackFactory`` /
``StackHandle``, the fake in tests) and its error translation (a live update on a stack becomes
``StackLocked``, exit 3). Scaling writes ``gantry:services.<name>.replicas`` on the standby for each of
its services and runs ``up``; the switch writes ``gantry:dr.active`` on the traffic stack and runs ``up``
(the program then renders the failover records with the standby as primary, see ``infra.dr.traffic``).
Health is probed over HTTP(S) at the URLs the health checks name; replication lag is a PromQL query.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
from pulumi import automation as auto

from infra.dr.engine import CheckResult, RegionHealth
from infra.dr.settings import DrSettings, Role
from infra.errors import InputError
from infra.rollout import automation_errors
from infra.rollout.faults import point
from infra.rollout.pulumi_target import NAMESPACE, OnOutput, StackFactory, StackHandle, select_stack

Prober = Callable[[str, float], tuple[bool, str]]
"""GET ``url`` with a timeout: (2xx?, a short detail)."""


def http_probe(url: str, timeout: float) -> tuple[bool, str]:
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        return False, type(exc).__name__
    return 200 <= response.status_code < 300, f"HTTP {response.status_code}"


class PulumiDrTarget:
    """The DR seam over the primary, standby and traffic stacks."""

    def __init__(self, settings: DrSettings, project_dir: Path, *, stack_factory: StackFactory = select_stack,
                 prober: Prober = http_probe, on_output: OnOutput | None = None) -> None:
        self.settings = settings
        self.project_dir = project_dir
        self._factory = stack_factory
        self._prober = prober
        self._on_output = on_output
        self._stacks: dict[str, StackHandle] = {}

    def _stack(self, name: str) -> StackHandle:
        if name not in self._stacks:
            self._stacks[name] = automation_errors.call(name, "select", lambda: self._factory(name, self.project_dir))
        return self._stacks[name]

    def _emit(self, line: str) -> None:
        if self._on_output is not None:
            self._on_output(line.rstrip("\n"))

    # ------------------------------------------------------------------ DrTarget

    def probe(self, role: Role) -> RegionHealth:
        results = []
        for check in self.settings.health_checks:
            url = check.primary_url if role == "primary" else check.standby_url
            if url is None:
                raise InputError(f"dr.healthChecks.{check.name}.{role}Url must be set for a cloud stack")
            ok, detail = self._prober(url, float(check.timeout))
            results.append(CheckResult(check.name, ok, detail))
        return RegionHealth(role, tuple(results))

    def _services(self, stack: StackHandle) -> list[str]:
        config = automation_errors.call(stack.name, "config", stack.get_all_config)
        raw = config.get(f"{NAMESPACE}:services")
        try:
            services = json.loads(raw.value) if raw is not None else {}
        except ValueError:
            services = None
        if not isinstance(services, dict):
            raise InputError(f"{NAMESPACE}:services of stack {stack.name} must be a mapping of services")
        return sorted(services)

    def scale(self, size: int) -> None:
        stack = self._stack(self.settings.standby)
        values = {f"{NAMESPACE}:services.{svc}.replicas": auto.ConfigValue(str(size))
                  for svc in self._services(stack)}
        automation_errors.call(stack.name, "config set", partial(stack.set_all_config, values, path=True))
        point("dr.scale.config-set")
        self._up(stack, f"gantry dr: scale the standby to {size} replicas per service")
        point("dr.scale.up")

    def switch(self, role: Role) -> None:
        stack = self._stack(self.settings.traffic)
        values = {f"{NAMESPACE}:dr.active": auto.ConfigValue(role)}
        automation_errors.call(stack.name, "config set", partial(stack.set_all_config, values, path=True))
        point("dr.switch.config-set")
        self._up(stack, f"gantry dr: send traffic to the {role}")
        point("dr.switch.up")

    def active(self) -> Role:
        stack = self._stack(self.settings.traffic)
        config = automation_errors.call(stack.name, "config", stack.get_all_config)
        raw = config.get(f"{NAMESPACE}:dr")
        try:
            value = json.loads(raw.value).get("active", "primary") if raw is not None else "primary"
        except (ValueError, AttributeError):
            value = "primary"
        return "standby" if value == "standby" else "primary"

    def replication_lag(self) -> float | None:
        cfg = self.settings.replication_lag
        if cfg is None:
            return None
        from infra.rollout.metrics.prometheus import PrometheusProvider

        provider = PrometheusProvider(cfg.url)
        try:
            values = [s.value for s in provider.vector(cfg.query) if s.value == s.value]
        finally:
            provider.close()
        return max(values) if values else None

    def _up(self, stack: StackHandle, why: str) -> None:
        self._emit(f"pulumi up ({why}) on {stack.name}")
        automation_errors.call(stack.name, "up", lambda: stack.up(message=why, on_output=self._emit))
