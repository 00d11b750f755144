"""Metrics providers behind the ``MetricsProvider`` seam, and the factory that builds one by name.

Called by the rollout factory and the sandbox; each backend lives in its own module and is imported
lazily so that, e.g., the command provider never pays for boto3 or the kubernetes client.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence

from infra.errors import InputError
from infra.rollout.seams import MetricsProvider, Sample

PROVIDERS: dict[str, tuple[str, str]] = {
    "http": ("infra.rollout.metrics.http", "HttpProvider"),
    "prometheus": ("infra.rollout.metrics.prometheus", "PrometheusProvider"),
    "cloudwatch": ("infra.rollout.metrics.cloudwatch", "CloudWatchProvider"),
    "kubernetes": ("infra.rollout.metrics.kubernetes", "KubernetesProvider"),
    "command": ("infra.rollout.metrics.command", "CommandProvider"),
}


def make_provider(name: str, **settings: object) -> MetricsProvider:
    """Build the provider called ``name``; an unknown name is an input error listing the valid ones."""
    if name not in PROVIDERS:
        valid = ", ".join(sorted(PROVIDERS))
        raise InputError(f"metrics.provider must be one of {valid}, but {name!r} was given")
    module_name, class_name = PROVIDERS[name]
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        provider: MetricsProvider = cls(**settings)
    except TypeError as exc:
        raise InputError(f"metrics settings for {name} must match its options, but {exc} ") from exc
    return provider


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


__all__ = ["PROVIDERS", "as_sample", "make_provider", "percentile"]
