"""The Person page's pure shaping: consent, strongest tags, offers, decision trail, the
contact history against the caps, the user id's bounds and the audit hash."""

from __future__ import annotations

import pytest

from app.console.person import (
    StorePersonSource,
    audit_subject,
    contact_rows,
    decision_rows,
    person_view,
    valid_user_id,
)
from app.core.enums import Channel
from app.policy.config import default_policy, parse_policy
from app.policy.state import UserPolicyState
from tests.console.person_data import (
    CAP_REASON_COUNT,
    EMAIL_SENDS,
    HOUR_MS,
    NOW_MS,
    OFFER_REASON,
    OFFER_TITLE,
    USER,
    catalogue,
    decisions,
    store_with_alice,
)

pytestmark = pytest.mark.unit

CAPS = """
version = "caps-test"
[caps]
global = [{ max = 2, window = "1d" }]
[caps.channels]
email = [{ max = 1, window = "1h" }, { max = 3, window = "7d" }]
push = [{ max = 5, window = "1d" }]
"""


def test_contact_history_is_counted_per_cap_window_as_the_policy_counts_it() -> None:
    policy = parse_policy(CAPS)
    state = UserPolicyState(
        contacts={Channel.EMAIL: tuple(sorted(EMAIL_SENDS)), Channel.PUSH: (NOW_MS - 2 * HOUR_MS,)}
    )
    rows = {
        (r.scope, r.window): (r.sent, r.max, r.reached) for r in contact_rows(state, policy, NOW_MS)
    }
    assert rows == {
        ("email", "1h"): (1, 1, True),
        ("email", "1w"): (3, 3, True),
        ("push", "1d"): (1, 5, False),
        # the global cap counts email and push (and sms) together: 2 emails and 1 push today
        ("all of email, push, sms", "1d"): (3, 2, True),
    }


def test_a_message_sent_exactly_one_window_ago_no_longer_counts() -> None:
    policy = parse_policy(CAPS)
    state = UserPolicyState(contacts={Channel.EMAIL: (NOW_MS - HOUR_MS,)})
    hourly = [r for r in contact_rows(state, policy, NOW_MS) if r.window == "1h"]
    assert [(r.sent, r.reached) for r in hourly] == [(0, False)]


async def test_the_page_shows_what_the_store_holds_with_the_strongest_tags_first() -> None:
    cat = catalogue()
    source = StorePersonSource(await store_with_alice(cat), cat)
    view = person_view(await source.person(USER), default_policy(), NOW_MS)
    assert view.has_data and view.n_events == 4
    assert view.tags[0][0] == "sci-fi" and all(t != "romance" for t, _ in view.tags)
    assert view.offers is not None and view.offers.channel == "email"
    assert [(o.offer_id, o.reason) for o in view.offers.offers] == [("o-space", OFFER_REASON)]
    assert view.titles == {"o-space": OFFER_TITLE}
    # the trail is newest first: the suppressed decision, then the one that sent
    assert [(d.sent, d.reason) for d in view.decisions] == [(False, "cap"), (True, None)]
    assert view.decisions[0].rejected[0] == ("consent", 12)
    assert ("cap", CAP_REASON_COUNT) in view.decisions[0].rejected
    assert view.decisions[0].held_back == (("o-weak", 1.3),)
    consent = {r.channel: (r.allowed, r.source) for r in view.consent.rows}
    assert consent["email"] == (True, "record") and consent["push"] == (False, "record")
    assert consent["sms"] == (False, "policy default") and consent["web"] == (
        True,
        "policy default",
    )
    assert view.consent.tz == "Europe/London" and not view.consent.objection
    caps = {(r.scope, r.window): r.sent for r in view.caps}
    assert caps[("email", "1d")] == 2  # the shipped policy: at most 1 per 1d, 3 per 1w
    assert view.contacts == (("email", 3, max(EMAIL_SENDS)),)


async def test_an_unknown_user_and_a_known_user_without_data_look_the_same() -> None:
    cat = catalogue()
    source = StorePersonSource(await store_with_alice(cat), cat)
    unknown = person_view(await source.person("nobody"), default_policy(), NOW_MS)
    known = person_view(await source.person("bob"), default_policy(), NOW_MS)
    assert not unknown.has_data and not known.has_data
    assert unknown == known.__class__(**{**known.__dict__, "user_id": "nobody"})


def test_a_decision_record_that_does_not_parse_is_skipped() -> None:
    rows = decision_rows([b"{not json", b"[1, 2]", *decisions()])
    assert len(rows) == 2


@pytest.mark.parametrize(
    "text", ["", "a" * 129, "alice\n", "al ice", "al/ice", "ålice", "alice\x00", "{u:x}"]
)
def test_a_user_id_is_bounded_as_the_event_schema_bounds_it(text: str) -> None:
    assert not valid_user_id(text)


def test_a_user_id_as_the_event_schema_allows_it_is_valid() -> None:
    assert valid_user_id("a" * 128) and valid_user_id("Alice.B_c:d@e-f")


def test_the_audit_log_names_a_keyed_hash_of_the_user_never_the_id() -> None:
    one = audit_subject(b"k" * 32, USER)
    assert one == audit_subject(b"k" * 32, USER)
    assert USER not in one and len(one) == 32
    assert one != audit_subject(b"x" * 32, USER) and one != audit_subject(b"k" * 32, "bob")


def test_times_are_shown_in_utc_and_a_message_that_does_not_parse_is_no_offers() -> None:
    from app.console.person import offers_view, utc_text

    assert utc_text(1_795_000_000_000) == "2026-11-18 11:06:40 UTC"
    assert utc_text(None) == utc_text(0) == "-"
    assert (
        offers_view(b"{broken") is None and offers_view(b"[]") is None and offers_view(None) is None
    )
