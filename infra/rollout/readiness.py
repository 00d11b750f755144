"""Whether a stack can roll out: listed by ``gantry stacks`` (its ``rollout`` object).

The load-time checks live in the config layer (``infra.settings.checks``, run by ``GantryConfig``);
this adds what keeps a valid stack from rolling out at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from infra.settings.checks import exports_metrics, offline_only, rollout_violations, settings_violations

if TYPE_CHECKING:
    from infra.config import GantryConfig

__all__ = ["exports_metrics", "offline_only", "readiness", "rollout_violations", "settings_violations"]


def readiness(cfg: GantryConfig) -> list[str]:
    """Problems that keep a valid stack from rolling out (none for a ready stack)."""
    problems = [str(v) for v in rollout_violations(cfg)]
    for name in cfg.services:
        settings = cfg.rollout_for(name)
        problem = settings.target.local_problem(cfg, settings)
        if problem is not None:
            problems.append(f"services.{name}.rollout.{problem}")
    if not cfg.services:
        problems.append("services must name at least one service to roll out, but none was given")
    return problems
