"""Builders for the DR tests: settings, an in-memory region pair that records every effect."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from infra.dr.engine import CheckResult, DrEngine, RegionHealth
from infra.dr.settings import DrSettings, Role
from infra.rollout.clock import FakeClock
from infra.rollout.journal import SqliteJournal
from infra.rollout.lock import SqliteLock


def make_settings(**overrides: object) -> DrSettings:
    values: dict[str, object] = {
        "primary": "prod", "standby": "prod-dr", "warmSize": 1, "activeSize": 3, "rto": "5m",
        "healthChecks": [{"name": "web", "primaryUrl": "https://web-use1.example.com/healthz",
                          "standbyUrl": "https://web-usw2.example.com/healthz"}],
        "replicationLag": {"url": "http://127.0.0.1:9", "query": "max(lag)", "max": 30},
    }
    values.update(overrides)
    return DrSettings.model_validate(values)


@dataclass
class Regions:
    """Two regions whose health the test scripts; every effect is recorded in ``effects``."""

    up: dict[str, bool] = field(default_factory=lambda: {"primary": False, "standby": True})
    live: Role = "primary"
    size: int = 1
    lag: float | None = 2.0
    lag_error: Exception | None = None
    effects: list[str] = field(default_factory=list)
    probes: list[str] = field(default_factory=list)
    standby_healthy_after: int = 0
    """The standby fails this many probes after a scale-up (it is still starting)."""
    clock: FakeClock | None = None
    heal_primary_after: int | None = None

    def probe(self, role: Role) -> RegionHealth:
        self.probes.append(role)
        ok = self.up[role]
        if role == "standby" and self.standby_healthy_after > 0:
            self.standby_healthy_after -= 1
            ok = False
        return RegionHealth(role, (CheckResult("web", ok, "HTTP 200" if ok else "timeout"),))

    def scale(self, size: int) -> None:
        self.effects.append(f"scale {size}")
        self.size = size

    def switch(self, role: Role) -> None:
        self.effects.append(f"switch {role}")
        self.live = role

    def active(self) -> Role:
        return self.live

    def replication_lag(self) -> float | None:
        if self.lag_error is not None:
            raise self.lag_error
        return self.lag


def make_engine(tmp_path: Path, regions: Regions, settings: DrSettings | None = None,
                clock: FakeClock | None = None, pid: int | None = None) -> DrEngine:
    clock = clock or FakeClock()
    journal = SqliteJournal(tmp_path / "journal.db")
    lock = SqliteLock(journal.path, clock, pid=pid)
    return DrEngine(settings or make_settings(), regions, journal, lock, clock)
