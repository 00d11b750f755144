"""The ``noop`` metrics backend (Flagger's no-op provider): no metrics at all, so webhooks and gates decide.

A rollout with ``metrics: {kind: noop}`` has no per-version traffic; its gates (if any) always report no
data, which fails safe, so it is meant for rollouts judged by hooks (``confirm-promotion`` / ``step``).
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from components.validation import Violation
from infra import registry
from infra.config import GantryConfig
from infra.rollout.backends import MetricsContext, MetricsSource
from infra.rollout.seams import MetricQuery, MetricsProvider, Sample
from infra.settings.rollout import RolloutSettings


class NoopProvider:
    """Answers every query with no data (count 0), which every gate treats as a failure; always online."""

    name = "noop"

    def query(self, query: MetricQuery) -> Sample:
        return Sample(value=math.nan, count=0)

    def is_online(self) -> bool:
        return True


@registry.METRICS.register
class NoopSettings(MetricsSource):
    """``rollout.metrics`` that reads nothing."""

    kind: Literal["noop"] = "noop"

    requires_gates: ClassVar[bool] = False

    def violations(self, cfg: GantryConfig, settings: RolloutSettings, prefix: str) -> list[Violation]:
        if not any(h.phase in ("step", "confirm-promotion") for h in settings.hooks):
            return [Violation(f"{prefix}hooks", "a step or confirm-promotion hook when metrics.kind is noop "
                              "(nothing else judges the rollout)", [h.name for h in settings.hooks])]
        return []

    def build(self, ctx: MetricsContext) -> MetricsProvider:
        return NoopProvider()
