"""Progressive-delivery rules: selectors, one color per Service, canary weights and parity, safe strategies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from policies import k8s
from policies.model import (
    COMPLIANT,
    NOT_APPLICABLE,
    Outcome,
    Resource,
    Settings,
    StackOutcome,
    fail,
    fail_all,
)
from policies.props import get, integer, mapping, maps, text

COLORS = frozenset({"blue", "green"})
CANARY_VALUES = frozenset({"canary"})
STABLE_VALUES = frozenset({"stable", "primary", "main"})
SELECTED_KINDS = frozenset({k8s.DEPLOYMENT, k8s.STATEFULSET, k8s.REPLICASET, k8s.DAEMONSET})


def deployment_selector_matches_template(r: Resource, s: Settings) -> Outcome:
    if r.type not in SELECTED_KINDS:
        return NOT_APPLICABLE
    selector = k8s.match_labels(r.props)
    labels = k8s.template_labels(r.type, r.props)
    if not selector:
        return fail("spec.selector.matchLabels must be set (non-empty)")
    wrong = sorted(k for k, v in selector.items() if labels.get(k) != v)
    if wrong:
        return fail(f"spec.selector.matchLabels {', '.join(f'{k}={selector[k]}' for k in wrong)} must match "
                    "spec.template.metadata.labels")
    return COMPLIANT


def service_selects_one_color(resources: Sequence[Resource], s: Settings) -> list[StackOutcome]:
    """A Service whose selector reaches pods of both colors sends live traffic to the idle color."""
    workloads = [r for r in resources if r.type in SELECTED_KINDS]
    out = []
    for svc in resources:
        if svc.type != k8s.SERVICE:
            continue
        selector = k8s.match_labels(svc.props, "spec.selector")
        ns = k8s.namespace_of(svc)
        colors: set[str] = set()
        matched = False
        for w in workloads:
            labels = k8s.template_labels(w.type, w.props)
            if k8s.namespace_of(w) == ns and k8s.selects(selector, labels):
                matched = True
                colors.update(v for v in labels.values() if v in COLORS)
        if not matched or not colors:
            continue
        out.append(StackOutcome(svc.urn, COMPLIANT if len(colors) == 1 else fail(
            f"spec.selector {selector} selects pods of {' and '.join(sorted(colors))}; add the color label "
            "so it selects exactly one")))
    return out


def canary_weights_valid(r: Resource, s: Settings) -> Outcome:
    if r.type in k8s.HTTPROUTE_TYPES:
        out = []
        for i, rule in enumerate(maps(get(r.props, "spec.rules"))):
            out += _weights(f"spec.rules[{i}].backendRefs", maps(rule.get("backendRefs")), require_100=False)
        return fail_all(out)
    if r.type in k8s.VIRTUALSERVICE_TYPES:
        out = []
        for i, route in enumerate(maps(get(r.props, "spec.http"))):
            out += _weights(f"spec.http[{i}].route", maps(route.get("route")), require_100=True)
        return fail_all(out)
    if r.type == k8s.INGRESS:
        annotations = mapping(get(r.props, "metadata.annotations"))
        if str(annotations.get("nginx.ingress.kubernetes.io/canary")).lower() != "true":
            return NOT_APPLICABLE
        weight = integer(annotations.get("nginx.ingress.kubernetes.io/canary-weight"))
        if weight is None or not 0 <= weight <= 100:
            return fail("nginx.ingress.kubernetes.io/canary-weight must be an integer from 0 to 100, but "
                        f"{annotations.get('nginx.ingress.kubernetes.io/canary-weight')!r} was given")
        return COMPLIANT
    return NOT_APPLICABLE


def _weights(path: str, backends: list[Mapping[str, object]], *, require_100: bool) -> list[str]:
    if len(backends) < 2:
        return []
    raw = [b.get("weight") for b in backends]
    weights = [integer(w) for w in raw]
    out = []
    for i, (w, given) in enumerate(zip(weights, raw, strict=True)):
        if given is not None and (w is None or not 0 <= w <= 100):
            out.append(f"{path}[{i}].weight must be an integer from 0 to 100, but {given!r} was given")
    if out:
        return out
    explicit = [w for w in weights if w is not None]
    if len(explicit) == len(weights) or require_100:
        total = sum(w if w is not None else 0 for w in weights)
        if total != 100:
            out.append(f"{path} weights must sum to 100, but they sum to {total}")
    return out


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


def rollout_strategy_safe(r: Resource, s: Settings) -> Outcome:
    if r.type not in (k8s.DEPLOYMENT, k8s.STATEFULSET):
        return NOT_APPLICABLE
    strategy = mapping(get(r.props, "spec.strategy"))
    out = []
    if text(strategy.get("type")) == "Recreate":
        out.append("spec.strategy.type must be RollingUpdate; Recreate takes every pod down at once")
    rolling = mapping(strategy.get("rollingUpdate"))
    unavailable = rolling.get("maxUnavailable")
    n = k8s.replicas(r.props)
    count = None if isinstance(unavailable, str) else integer(unavailable)
    if unavailable == "100%" or (count is not None and n is not None and n > 1 and count >= n):
        out.append(f"spec.strategy.rollingUpdate.maxUnavailable must leave pods serving, but {unavailable!r} "
                   "was given")
    if integer(rolling.get("maxSurge")) == 0 and integer(unavailable) == 0:
        out.append("maxSurge and maxUnavailable cannot both be 0")
    history = integer(get(r.props, "spec.revisionHistoryLimit"))
    if history == 0:
        out.append("spec.revisionHistoryLimit must be >= 1 so a rollout can be undone")
    return fail_all(out)
