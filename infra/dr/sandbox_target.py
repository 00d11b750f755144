"""``SandboxDrTarget``: the DR seam over the local sandbox's two regions (``gantry sandbox up --regions 2``).

Built by ``gantry dr`` for a ``cloud: local`` stack and by the drill. Probes go straight to each region's
demo processes (``/healthz``, the check's timeout), as an outside health checker would; a service is
healthy in a region when one of its processes answers 2xx. Scaling, the switch and the live region come
from ``infra.sandbox.regions``; replication lag is the configured PromQL on the sandbox's Prometheus
(the demo app's stand-in gauge, see ``infra.sandbox.demoapp``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from infra.dr.engine import CheckResult, RegionHealth
from infra.dr.pulumi_target import Prober, http_probe
from infra.dr.settings import DrSettings, Role
from infra.rollout.faults import point
from infra.sandbox import regions
from infra.sandbox.procs import SandboxError
from infra.sandbox.state import require, resolve_prometheus_url, sandbox_dir


class SandboxDrTarget:
    """Failover between the sandbox's primary and standby regions."""

    def __init__(self, settings: DrSettings, project_dir: Path, *, prober: Prober = http_probe) -> None:
        self.settings = settings
        self.project_dir = project_dir
        self._prober = prober
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dr-probe")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def probe(self, role: Role) -> RegionHealth:
        st = require(sandbox_dir(self.project_dir))
        ports = regions.region_ports(st, role) if st.regions == 2 else {}
        if st.regions != 2:
            raise SandboxError("the sandbox has one region; start it with: gantry sandbox up --regions 2")
        jobs = []
        for check in self.settings.health_checks:
            timeout = float(check.timeout)
            futures = [self._pool.submit(self._prober, f"http://127.0.0.1:{p}/healthz", timeout)
                       for p in ports.get(check.name, [])]
            jobs.append((check.name, futures))
        results = []
        for name, futures in jobs:
            answers = [f.result() for f in futures]
            ok = any(a[0] for a in answers)
            detail = (f"{sum(a[0] for a in answers)}/{len(answers)} process(es) healthy" if answers
                      else "no process")
            results.append(CheckResult(name, ok, detail))
        return RegionHealth(role, tuple(results))

    def scale(self, size: int) -> None:
        regions.scale(self.project_dir, size)
        point("dr.scale.up")

    def switch(self, role: Role) -> None:
        regions.switch(self.project_dir, role)
        point("dr.switch.up")

    def active(self) -> Role:
        return "standby" if regions.active(self.project_dir) == "standby" else "primary"

    def replication_lag(self) -> float | None:
        cfg = self.settings.replication_lag
        if cfg is None:
            return None
        from infra.rollout.metrics.prometheus import PrometheusProvider

        provider = PrometheusProvider(resolve_prometheus_url(cfg.url, self.project_dir))
        try:
            values = [s.value for s in provider.vector(cfg.query) if s.value == s.value]
        finally:
            provider.close()
        return max(values) if values else None
