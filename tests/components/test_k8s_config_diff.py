"""A config-only change of canaryWeight or activeColor changes only routing objects or Service selectors.

Renders the real program (``infra/``) of a temporary copy of the project twice, from two stack files
that differ in one rollout key, and diffs the resource graphs input by input.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.render import RenderResult, render_project

Edit = Callable[[dict[str, Any]], None]


def _diff(a: object, b: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return [p for k in sorted(set(a) | set(b)) for p in _diff(a.get(k), b.get(k), (*path, str(k)))]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [p for x, y in zip(a, b, strict=True) for p in _diff(x, y, (*path, "[]"))]
    return [] if a == b else [path]


def _render_with(repo: Path, root: Path, stack: str, edit: Edit) -> RenderResult:
    root.mkdir()
    shutil.copy(repo / "Pulumi.yaml", root / "Pulumi.yaml")
    shutil.copytree(repo / "infra", root / "infra", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "stacks").mkdir()
    doc = yaml.safe_load((repo / "stacks" / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
    edit(doc["config"]["gantry:services"])
    (root / "stacks" / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return render_project(root, stack)


def _graph_diff(before: RenderResult, after: RenderResult) -> dict[str, set[tuple[str, ...]]]:
    """``Kind namespace/name`` -> changed input paths, for resources whose inputs differ; the URN sets must match."""
    old = {r.urn: r for r in before.resources}
    new = {r.urn: r for r in after.resources}
    assert set(old) == set(new), "a config-only change must not add or remove resources"
    out: dict[str, set[tuple[str, ...]]] = {}
    for urn, r in old.items():
        changed = set(_diff(r.inputs, new[urn].inputs))
        # Dependency order is registration order, which async applies may vary; compare as sets.
        assert set(r.dependencies) == set(new[urn].dependencies) and r.provider == new[urn].provider, urn
        if changed:
            out[f"{r.type.rsplit(':', 1)[-1]} {r.name}"] = changed
    return out


def _set(service: str, **values: object) -> Edit:
    def edit(services: dict[str, Any]) -> None:
        services[service].update(values)

    return edit


WEIGHT = {("spec", "rules", "[]", "backendRefs", "[]", "weight")}
ISTIO_WEIGHT = {("spec", "http", "[]", "route", "[]", "weight")}
NGINX_WEIGHT = {("metadata", "annotations", "nginx.ingress.kubernetes.io/canary-weight")}
SELECTOR = {("spec", "selector", "gantry.dev/color")}


@pytest.mark.parametrize(
    ("router", "changed"),
    [
        ("gateway-api", {"HTTPRoute web/web": WEIGHT}),
        ("istio", {"VirtualService web/web": ISTIO_WEIGHT}),
        ("nginx", {"Ingress web/web-canary": NGINX_WEIGHT}),
    ],
)
def test_a_weight_step_changes_only_the_route(
    repo: Path, tmp_path: Path, router: str, changed: dict[str, set[tuple[str, ...]]]
) -> None:
    canary = {"router": router, "canaryImage": "ghcr.io/gantry-demo/web:1.5.0"}
    before = _render_with(repo, tmp_path / "before", "prod", _set("web", **canary, canaryWeight=10))
    after = _render_with(repo, tmp_path / "after", "prod", _set("web", **canary, canaryWeight=30))
    assert _graph_diff(before, after) == changed
    assert before.outputs["services"]["web"]["canaryWeight"] == 10
    assert after.outputs["services"]["web"]["canaryWeight"] == 30


def test_a_color_switch_in_prod_changes_exactly_the_service_selectors(repo: Path, tmp_path: Path) -> None:
    before = _render_with(repo, tmp_path / "before", "prod", _set("api", activeColor="blue"))
    after = _render_with(repo, tmp_path / "after", "prod", _set("api", activeColor="green"))
    assert _graph_diff(before, after) == {"Service api/api": SELECTOR, "Service api/api-preview": SELECTOR}
    active = next(r for r in after.resources if r.urn.endswith("Service::api/api"))
    assert active.inputs["spec"]["selector"]["gantry.dev/color"] == "green"
    assert after.outputs["services"]["api"]["activeColor"] == "green"


def test_a_color_switch_during_a_rollout_in_dev_changes_exactly_the_service_selectors(
    repo: Path, tmp_path: Path
) -> None:
    # The engine put a candidate on green (prepare): green runs the full count even in dev.
    candidate = {"greenImage": "ghcr.io/gantry-demo/api:2.2.0"}
    before = _render_with(repo, tmp_path / "before", "dev", _set("api", **candidate, activeColor="blue"))
    after = _render_with(repo, tmp_path / "after", "dev", _set("api", **candidate, activeColor="green"))
    assert _graph_diff(before, after) == {"Service api/api": SELECTOR, "Service api/api-preview": SELECTOR}


def test_switching_between_identical_colors_in_dev_also_moves_the_idle_pods(repo: Path, tmp_path: Path) -> None:
    # Without a candidate, the idle color runs 0 pods in dev; making it active must scale it (and its PDB).
    before = _render_with(repo, tmp_path / "before", "dev", _set("api", activeColor="blue"))
    after = _render_with(repo, tmp_path / "after", "dev", _set("api", activeColor="green"))
    replicas = {("spec", "replicas")}
    budget = {("spec", "minAvailable")}
    assert _graph_diff(before, after) == {
        "Service api/api": SELECTOR,
        "Service api/api-preview": SELECTOR,
        "Deployment api/api-blue": replicas,
        "Deployment api/api-green": replicas,
        "PodDisruptionBudget api/api-blue": budget,
        "PodDisruptionBudget api/api-green": budget,
    }
