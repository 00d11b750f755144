"""``Spec.with_overrides``: a flag override is validated by the settings model, as the stack file's value would be."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infra.config import problems
from infra.settings.rollout import RolloutSettings


def test_an_override_is_applied_and_unset_fields_stay_unset() -> None:
    base = RolloutSettings.model_validate({"threshold": 3, "steps": [20, 60, 100]})
    over = base.with_overrides(interval="5s", threshold=1)
    assert (over.interval.text, over.interval, over.threshold, over.steps) == ("5s", 5.0, 1, [20, 60, 100])
    assert over.model_fields_set == {"threshold", "steps", "interval"}
    assert base.threshold == 3, "the original is untouched (frozen)"


@pytest.mark.parametrize(("changes", "line"), [
    ({"threshold": 0}, "gantry:threshold must be >= 1, but 0 was given"),
    ({"interval": "5"}, "gantry:interval must be a number with a unit"),
    ({"steps": [50, 10]}, "gantry:steps must be strictly increasing, but [50, 10] was given"),
    ({"step_weight": 30, "max_weight": 20}, "gantry:maxWeight must be within stepWeight (30)..100, but 20"),
    ({"no_such_field": 1}, "gantry:no_such_field"),
])
def test_a_bad_override_fails_like_the_stack_file(changes: dict[str, object], line: str) -> None:
    base = RolloutSettings()
    if "no_such_field" not in changes:
        # The trap this replaces: model_copy(update=...) takes the bad value without a word.
        copied = base.model_copy(update=changes)
        assert all(getattr(copied, k) == v for k, v in changes.items())
    with pytest.raises(ValidationError) as info:
        base.with_overrides(**changes)
    assert problems(info.value)[0].startswith(line)
