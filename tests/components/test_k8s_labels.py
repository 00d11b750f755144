"""Pure helpers behind the k8s components: version labels, quantities, idle replicas, promotion."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from k8s_helpers import bluegreen_specs, canary_specs, images, make_bluegreen_spec, make_service_spec

from components.k8s import router_for
from components.k8s.bluegreen import color_plans, idle_replicas, plan_bluegreen
from components.k8s.canary import plan_canary, track_plans
from components.k8s.labels import version_of
from components.spec import Color, ServiceSpec, Strategy, Tier, quantity_value

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("ghcr.io/acme/web:1.4.0", "1.4.0"),
        ("localhost:5000/web:v2_rc-1", "v2_rc-1"),
        ("ghcr.io/acme/web@sha256:" + "0f" * 32, "sha256-0f0f0f0f0f0f"),
        ("ghcr.io/acme/web:1.4.0@sha256:" + "0f" * 32, "1.4.0"),
        ("ghcr.io/acme/web:_internal_", "internal"),
    ],
)
def test_version_label_comes_from_the_tag_or_digest(image: str, version: str) -> None:
    assert version_of(image) == version


@given(images())
def test_version_label_is_always_a_valid_label_value(image: str) -> None:
    value = version_of(image)
    assert value and len(value) <= 63 and LABEL_VALUE.match(value)


@pytest.mark.parametrize(
    ("quantity", "value"),
    [("500m", "0.5"), ("2", "2"), ("1.5", "1.5"), ("128Mi", str(128 * 2**20)), ("1Gi", str(2**30)),
     ("1G", str(10**9)), ("3k", "3000"), ("2Ti", str(2 * 2**40))],
)
def test_quantity_values(quantity: str, value: str) -> None:
    assert quantity_value(quantity) == quantity_value(value) == float(value)


@pytest.mark.parametrize(("tier", "expected"), [(Tier.DEV, 0), (Tier.STAGING, 0), (Tier.PROD, 4)])
def test_idle_replicas_default_by_tier(tier: Tier, expected: int) -> None:
    assert idle_replicas(make_bluegreen_spec(replicas=4), tier) == expected
    assert idle_replicas(make_bluegreen_spec(replicas=4, idle_replicas=1), tier) == 1


def test_each_color_runs_its_own_image_and_a_candidate_runs_at_full_strength() -> None:
    # A candidate on the inactive color needs pods for smoke tests, and for a selector-only switch.
    spec = make_bluegreen_spec(green_image="ghcr.io/acme/api:3.0.0", hpa={"enabled": True})
    plans = color_plans("api", spec, Tier.DEV)
    assert plans[Color.BLUE].image == "ghcr.io/acme/api:2.0.0"
    assert plans[Color.GREEN].image == "ghcr.io/acme/api:3.0.0"
    assert plans[Color.GREEN].autoscaled and plans[Color.BLUE].autoscaled
    switched = color_plans("api", spec.model_copy(update={"active_color": Color.GREEN}), Tier.DEV)
    assert switched == plans, "the switch itself must not rescale anything"


def test_the_inactive_color_idles_once_both_colors_match() -> None:
    spec = make_bluegreen_spec(blue_image="ghcr.io/acme/api:3.0.0", green_image="ghcr.io/acme/api:3.0.0",
                               active_color=Color.GREEN)
    plans = color_plans("api", spec, Tier.DEV)
    assert (plans[Color.GREEN].replicas, plans[Color.BLUE].replicas) == (2, 0)
    assert not plans[Color.BLUE].autoscaled


def test_promotion_config_moves_the_canary_image_to_stable_and_idles_the_canary() -> None:
    during = make_service_spec(canary_image="ghcr.io/acme/web:2.0.0", canary_weight=50)
    # What the rollout engine writes on promotion: image <- canaryImage, weight 0, canary cleared.
    promoted = make_service_spec(image="ghcr.io/acme/web:2.0.0", canary_weight=0)
    stable, canary = track_plans("web", during)
    assert (stable.image, canary.image, canary.replicas) == ("ghcr.io/acme/web:1.0.0", "ghcr.io/acme/web:2.0.0", 2)
    stable, canary = track_plans("web", promoted)
    assert (stable.image, canary.replicas, canary.autoscaled) == ("ghcr.io/acme/web:2.0.0", 0, False)


DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


@settings(max_examples=150)
@given(
    name=st.from_regex(r"[a-z]([-a-z0-9]{0,38}[a-z0-9])?", fullmatch=True),
    spec=st.one_of(canary_specs(), bluegreen_specs()),
    tier=st.sampled_from(list(Tier)),
)
def test_planned_objects_have_valid_unique_names_and_labels(name: str, spec: ServiceSpec, tier: Tier) -> None:
    router = router_for(spec.router)
    plan = (plan_canary if spec.strategy is Strategy.CANARY else plan_bluegreen)(name, spec, tier, router)
    keys = [(m.kind, m.name) for m in plan.all]
    assert len(keys) == len(set(keys))
    for m in plan.all:
        # Service names are DNS-1035 labels; every other name here must fit a label too (pod names).
        assert DNS_1035.match(m.name) and len(m.name) <= 63, m.name
        for key, value in m.labels.items():
            assert len(value) <= 63 and LABEL_VALUE.match(value), (m.kind, key, value)
        assert (m.namespace is None) == (m.kind == "Namespace")
