"""Every rule against its compliant and non-compliant fixtures (raw provider resources)."""

from __future__ import annotations

import pytest
from policy_cases import CASES, Case

from policies.model import State
from policies.pack import BY_ID


def outcomes_for(case: Case) -> list[State]:
    rule = BY_ID[case.policy]
    if rule.resource is not None:
        subject = next(r for r in case.resources if r.urn == case.subject)
        return [rule.resource(subject, case.settings).state]
    assert rule.stack is not None
    return [o.outcome.state for o in rule.stack(list(case.resources), case.settings) if o.urn == case.subject]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_decides_fixture(case: Case) -> None:
    states = outcomes_for(case)
    if case.compliant:
        # Compliant means judged and passed, not merely "not applicable".
        assert states and all(s is State.COMPLIANT for s in states), states
    else:
        assert State.NON_COMPLIANT in states, states


@pytest.mark.parametrize("case", [c for c in CASES if not c.compliant], ids=lambda c: c.id)
def test_failure_messages_are_specific(case: Case) -> None:
    rule = BY_ID[case.policy]
    if rule.resource is not None:
        subject = next(r for r in case.resources if r.urn == case.subject)
        message = rule.resource(subject, case.settings).message
    else:
        assert rule.stack is not None
        message = next(o.outcome.message for o in rule.stack(list(case.resources), case.settings)
                       if o.urn == case.subject and o.outcome.failed)
    # Specific: long enough to name the field and what is wrong, and starting with a word (a field name,
    # "container", "no ..."), never punctuation or a bare value.
    assert len(message) > 20, message
    assert message[0].isalpha(), message


def test_unrelated_types_are_not_applicable() -> None:
    from policies.fixtures import res

    other = res("random:index/randomPet:RandomPet", {"length": 2})
    for rule in BY_ID.values():
        if rule.resource is not None:
            assert rule.resource(other, CASES[0].settings).state is State.NOT_APPLICABLE, rule.id
