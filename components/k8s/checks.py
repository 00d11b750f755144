"""Construction-time checks that need more than the spec: the service name, the strategy and the tier.

Called by ``BlueGreenService`` and ``CanaryService`` before they register anything. Field names are
the stack's camelCase keys; messages use the one template from ``components.validation``.
"""

from __future__ import annotations

import re

from components.spec import Delivery, ServiceSpec, Strategy, Tier, service_violations
from components.validation import Violation

MAX_NAME = 40
"""Longest service name: ``<name>-preview`` and ``<name>-canary`` must stay valid DNS labels."""

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def delivery_violations(name: str, spec: ServiceSpec, tier: Tier, strategy: Strategy) -> list[Violation]:
    """Everything wrong with delivering ``spec`` as ``name`` with ``strategy`` on a ``tier`` cluster."""
    # The spec validated itself when it was built; re-checking catches model_construct/model_copy.
    out = list(service_violations(spec))
    if not _DNS_LABEL.match(name) or len(name) > MAX_NAME:
        out.append(
            Violation("name", f"a DNS label of at most {MAX_NAME} lowercase letters, digits and '-'", name)
        )
    if spec.strategy is not strategy:
        out.append(Violation("strategy", f"{strategy.value} for this component", spec.strategy.value))
    if tier is Tier.PROD:
        # One replica cannot survive a node drain: prod services must tolerate losing a pod.
        if spec.replicas < 2:
            out.append(Violation("replicas", ">= 2 in prod", spec.replicas))
        if spec.hpa.enabled and spec.hpa.min_replicas < 2:
            out.append(Violation("hpa.minReplicas", ">= 2 in prod", spec.hpa.min_replicas))
        # A plain `pulumi up` must never send an unanalysed version to all of prod's users.
        if spec.delivery is Delivery.DIRECT:
            out.append(Violation("delivery", "progressive in prod (direct is for dev)", spec.delivery.value))
    return out
