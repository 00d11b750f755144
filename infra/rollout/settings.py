"""Typed rollout settings: stack-wide defaults under ``gantry:rollout`` and per-service overrides.

Loaded by ``infra.config``; read by the rollout engine and the CLI.
"""

from __future__ import annotations

import itertools
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from components.spec import Spec
from components.validation import Violation, raise_first

_DURATION = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """'30s' -> 30.0, '500ms' -> 0.5, '2m' -> 120.0. Raises ValueError in the shared template."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"duration must be a number with a unit ms, s, m or h (e.g. 30s), but {text!r} was given")
    return float(match["n"]) * _UNIT_SECONDS[match["unit"]]


def _duration(text: str) -> str:
    parse_duration(text)
    return text


Duration = Annotated[str, AfterValidator(_duration)]


def steps_violations(steps: list[int], field: str = "steps") -> list[Violation]:
    """Steps are strictly increasing weights within 1..100."""
    out: list[Violation] = []
    if not steps:
        return [Violation(field, "a non-empty list of weights", steps)]
    for i, w in enumerate(steps):
        if not 1 <= w <= 100:
            out.append(Violation(f"{field}[{i}]", "within 1..100", w))
    if any(b <= a for a, b in itertools.pairwise(steps)):
        out.append(Violation(field, "strictly increasing", steps))
    return out


class MetricsSettings(Spec):
    """Where analysis metrics come from."""

    provider: Literal["prometheus", "http", "cloudwatch", "kubernetes", "command"] = Field(
        default="prometheus", description="Metrics backend. Default: prometheus."
    )
    url: str | None = Field(default=None, description="Prometheus base URL or probe URL. Default: none.")


class RolloutSettings(Spec):
    """How a rollout proceeds and when it is judged failed. Defaults follow Flagger and the seed rules."""

    steps: list[int] = Field(default_factory=lambda: [10, 25, 50, 100], description="Default: 10,25,50,100.")
    interval: Duration = Field(default="30s", description="Wait before each analysis. Default: 30s.")
    threshold: int = Field(default=2, ge=1, le=100, description="Failed analyses before rollback. Default: 2.")
    max_error_rate: float = Field(default=0.05, ge=0, le=1, description="Error-rate limit. Default: 0.05.")
    max_p95_ms: float = Field(default=2000, gt=0, description="p95 latency limit in ms. Default: 2000.")
    max_restarts: int = Field(default=5, ge=0, description="Container restarts limit. Default: 5.")
    judge: Literal["sprt", "threshold"] = Field(default="sprt", description="Analysis judge. Default: sprt.")
    min_samples: int = Field(default=50, ge=1, description="Requests needed for a verdict. Default: 50.")
    post_promotion_window: Duration = Field(default="60s", description="Blue/green watch window. Default: 60s.")
    scale_down_delay: Duration = Field(default="30s", description="Before the old color idles. Default: 30s.")
    target: Literal["pulumi", "haproxy"] = Field(default="pulumi", description="What is shifted. Default: pulumi.")
    metrics: MetricsSettings = Field(default_factory=MetricsSettings, description="Default: prometheus.")

    @model_validator(mode="after")
    def _check(self) -> RolloutSettings:
        raise_first(steps_violations(self.steps))
        return self
