"""The ``noop`` metrics backend (Flagger's no-op provider): no metrics at all, so the hooks decide.

A rollout with ``metrics: {kind: noop}`` has no per-version traffic and needs a ``step`` or
``confirm-promotion`` hook (checked at load); each analysis passes with that said in its detail, and the
hooks pass or fail the step. Gates on it (if any) always report no data, which fails safe.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from components.validation import Violation
from infra import registry
from infra.config import GantryConfig
from infra.rollout.backends import MetricsContext, MetricsSource
from infra.rollout.seams import (
    Analysis,
    AnalysisContext,
    AnalysisResult,
    CheckResult,
    MetricQuery,
    MetricsProvider,
    Sample,
    Verdict,
)
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

    def without_metrics(self) -> Analysis | None:
        return HooksJudge()


class HooksJudge:
    """The analysis of a rollout with no metrics: every step passes here, and its hooks judge it."""

    def analyse(self, ctx: AnalysisContext) -> AnalysisResult:
        return AnalysisResult(Verdict.PASS, (CheckResult(
            "no-metrics", Verdict.PASS, None, None, "metrics kind noop: the step and confirm-promotion hooks "
                                                     "judge this rollout"),))
