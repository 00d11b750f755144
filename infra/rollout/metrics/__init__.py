"""Metrics providers behind the ``MetricsProvider`` seam: one module per backend, each registering itself.

A backend module declares its settings model (``kind: Literal["<name>"]`` plus its own fields) and how
to build its provider, and registers in ``infra.registry.METRICS``; ``infra.plugins`` imports them.
Heavy client libraries (boto3, the kubernetes client, httpx) load only when a provider is built.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from infra.rollout.seams import Sample


def as_sample(value: float | Sample) -> Sample:
    """Normalise a provider answer; NaN or infinity is no data (count 0), which fails safe."""
    sample = value if isinstance(value, Sample) else Sample(value=float(value))
    if math.isnan(sample.value) or math.isinf(sample.value):
        return Sample(value=math.nan, count=0, observations=sample.observations)
    return sample


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence, as Prometheus summaries report it."""
    if not values:
        raise ValueError("percentile needs at least one value")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


__all__ = ["as_sample", "percentile"]
