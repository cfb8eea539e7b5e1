"""The Simulate page's pure parts: the form's bounds and validation (the workers' policy
loader), the candidate it names, and the report as rows."""

from __future__ import annotations

import pytest

from app.console.simulate import (
    MAX_POLICY_CHARS,
    MemorySimulationSource,
    SimulationRequest,
    candidate_of,
    parse_form,
    report_rows,
    top_offer_rows,
)
from app.policy.config import parse_policy
from tests.simulation.test_replay import (
    ITEMS,
    OFFERS,
    consent,
    policy_with_push_cap,
    push_requests,
)

pytestmark = pytest.mark.unit

WEIGHTS = {"w_affinity": 0.7, "w_value": 0.2, "w_popularity": 0.1}
TIGHT = """
version = "push-1"
[caps.channels]
push = [{ max = 1, window = "1h" }]
[consent_defaults]
push = false
"""


def form(**fields: str) -> dict[str, str]:
    base = {name: repr(value) for name, value in WEIGHTS.items()}
    return {**base, "hours": "24", "max_events": "1000", "seed": "3", "policy": "", **fields}


def parse(**fields: str) -> tuple[SimulationRequest | None, tuple[str, ...]]:
    result = parse_form(form(**fields), WEIGHTS, max_hours=48, max_events=5000)
    return result.request, result.errors


def test_a_candidate_policy_is_validated_by_the_workers_loader() -> None:
    request, errors = parse(policy=TIGHT)
    assert errors == () and request is not None
    assert request.policy == parse_policy(TIGHT) and request.weights == {}
    assert (request.hours, request.max_events, request.seed) == (24.0, 1000, 3)


@pytest.mark.parametrize(
    ("policy", "named"),
    [
        ('version = "x"\n[caps]\nglobal = [{ max = 1, window = "soon" }]', "invalid duration"),
        ("version = ", "invalid TOML"),
        ('version = "x"\nno_such_setting = 1', "no_such_setting"),
    ],
)
def test_a_policy_the_workers_would_refuse_is_named_not_run(policy: str, named: str) -> None:
    request, errors = parse(policy=policy)
    assert request is None and any(named in e and "candidate policy" in e for e in errors)


def test_only_changed_weights_are_a_candidate_and_nothing_changed_is_refused() -> None:
    request, errors = parse(w_value="0.3")
    assert errors == () and request is not None and request.weights == {"w_value": 0.3}
    request, errors = parse()
    assert request is None and errors == (
        "nothing to compare: give a candidate policy and/or change a weight",
    )


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("w_value", "nan", "w_value"),
        ("w_value", "inf", "w_value"),
        ("w_value", "0." + "1" * 40, "w_value"),
        ("hours", "0", "hours"),
        ("hours", "49", "hours"),
        ("hours", "", "hours"),
        ("max_events", "5001", "events"),
        ("max_events", "2.5", "events"),
        ("seed", "-1", "seed"),
        ("policy", "#" * (MAX_POLICY_CHARS + 1), "policy"),
    ],
)
def test_every_field_is_bounded(field: str, value: str, named: str) -> None:
    request, errors = parse(**{"policy": TIGHT, field: value})
    assert request is None and any(e.startswith(named) for e in errors), errors


def test_the_candidate_is_the_configuration_in_force_with_the_form_s_policy_and_weights() -> None:
    current = policy_with_push_cap(3)
    request = SimulationRequest(24, 100, 0, parse_policy(TIGHT), {"w_value": 0.5})
    candidate = candidate_of(current, request)
    assert candidate.policy.version == "push-1" and candidate.scoring.w_value == 0.5
    assert candidate.scoring.w_affinity == current.scoring.w_affinity
    assert current.policy.version == "push-3"


def test_the_report_is_shown_side_by_side_with_the_difference() -> None:
    source = MemorySimulationSource(
        push_requests(), ITEMS, OFFERS, policy_with_push_cap(3), consent("u1")
    )
    report = source.run(SimulationRequest(24, 100, 0, parse_policy(TIGHT)))
    rows = {r.name: (r.current, r.candidate, r.difference) for r in report_rows(report)}
    # 5 push requests 10 minutes apart; the first is the warm-up (sent in both runs): then
    # a cap of 3 an hour sends 2 more, a cap of 1 none
    assert rows["messages"] == ("2", "0", "-2")
    assert rows["suppressed: cap"] == ("2", "4", "+2")
    assert (report.current_label, report.candidate_label) == ("push-3", "push-1")
    assert top_offer_rows(report)[0][1:] == (2, 0)
