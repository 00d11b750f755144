"""canary-stable-parity: A canary matches its stable Deployment except for the image."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from policies import k8s
from policies.model import (
    COMPLIANT,
    Resource,
    Settings,
    StackOutcome,
    fail,
)
from policies.props import maps
from policies.rule import PROD, A, Fixture, M, stack_rule

CANARY_VALUES = frozenset({"canary"})

STABLE_VALUES = frozenset({"stable", "primary", "main"})


def _track(labels: Mapping[str, str]) -> tuple[str, str] | None:
    for k, v in labels.items():
        if v in CANARY_VALUES or v in STABLE_VALUES:
            return k, v
    return None


def _app(r: Resource, labels: Mapping[str, str]) -> str:
    return labels.get("app.kubernetes.io/name") or labels.get("app") or k8s.name_of(r).rsplit("-", 1)[0]


def _shape(r: Resource) -> dict[str, object]:
    """The parts of a pod template that must not differ between stable and canary: everything but images."""
    spec = k8s.pod_spec(r.type, r.props) or {}
    shape: dict[str, object] = {}
    for key in ("serviceAccountName", "securityContext", "automountServiceAccountToken"):
        shape[key] = spec.get(key)
    for i, c in enumerate(maps(spec.get("containers"))):
        for key in ("name", "ports", "resources", "readinessProbe", "livenessProbe", "securityContext"):
            shape[f"containers[{i}].{key}"] = c.get(key)
    return shape


def canary_stable_parity(resources: Sequence[Resource], s: Settings) -> list[StackOutcome]:
    tracks: dict[tuple[str, str], dict[str, Resource]] = {}
    for r in resources:
        if r.type not in (k8s.DEPLOYMENT, k8s.STATEFULSET):
            continue
        labels = k8s.template_labels(r.type, r.props)
        track = _track(labels)
        if track is None:
            continue
        kind = "canary" if track[1] in CANARY_VALUES else "stable"
        tracks.setdefault((k8s.namespace_of(r), _app(r, labels)), {})[kind] = r
    out = []
    for (_ns, app), pair in sorted(tracks.items()):
        canary, stable = pair.get("canary"), pair.get("stable")
        if canary is None:
            continue
        if stable is None:
            out.append(StackOutcome(canary.urn, fail(f"canary of {app} has no stable Deployment to compare with")))
            continue
        a, b = _shape(stable), _shape(canary)
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        out.append(StackOutcome(canary.urn, COMPLIANT if not diff else fail(
            f"canary of {app} must match stable except for the image; differs in {', '.join(diff)}")))
    return out


def fixtures() -> list[Fixture]:
    from policies import fixtures as b
    from policies.fixtures import T_DEP, bad, ok

    r = b.res
    _stable = r(T_DEP, b.deployment("web", b.app_labels(track="stable")), name="web-stable")
    _canary = r(T_DEP, b.deployment("web-canary", b.app_labels(track="canary"), replicas=1, pod={"containers": [
        b.container(image="ghcr.io/acme/web:1.5.0")]}), name="web-canary")
    return [
        ok("image-only", _stable, _canary, subject=1),
        bad("different-resources", _stable, r(T_DEP, b.deployment(
            "web-canary", b.app_labels(track="canary"), pod={"containers": [b.container(
                resources={"limits": {"memory": "1Gi"}})]}), name="web-canary"), subject=1),
    ]


RULE = stack_rule(
    "canary-stable-parity", canary_stable_parity,
    category="delivery",
    level=A,
    tiers={PROD: M},
    description="A canary matches its stable Deployment except for the image.",
    remediation="Build both Deployments from one template (Gantry's CanaryService does).",
    fixtures=fixtures,
)
