from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.calibration import Calibration, EngineRecipe, FittedOn, calibrated_score
from app.core.catalog_records import Offer
from app.core.enums import Channel
from app.core.messages import (
    MESSAGE_ID_NAMESPACE,
    NextBestOffer,
    Trigger,
    addressed,
    message_for,
    message_id,
    stored_form,
)
from app.core.ranked import ScoredOffer

pytestmark = pytest.mark.unit

NOW = 1_714_564_800_000
TRIGGER = Trigger(event_id="ev-1", type="purchase")


def scored(offer_id: str, channels: tuple[str, ...], score: float = 1.0) -> ScoredOffer:
    parts = {"affinity": score, "value": 0.0, "popularity": 0.0, "priority": 0.0}
    offer = Offer(offer_id=offer_id, title=offer_id.upper(), channels=channels)
    return ScoredOffer(offer, score, parts, f"reason {offer_id}")


def build(
    ranked: list[ScoredOffer], channel: Channel = Channel.EMAIL, ttl_ms: int = 86_400_000
) -> NextBestOffer:
    return message_for("u-1", TRIGGER, channel, ranked, NOW, model_version="v7", dim=64,
                       ttl_ms=ttl_ms)  # fmt: skip


def test_message_id_is_a_uuid5_of_user_and_event() -> None:
    expected = uuid.uuid5(MESSAGE_ID_NAMESPACE, "u-1\x1fev-1")
    assert message_id("u-1", "ev-1") == str(expected)
    assert uuid.UUID(message_id("u-1", "ev-1")).version == 5
    assert str(MESSAGE_ID_NAMESPACE) == "a1eb603a-69a5-5742-9f87-a99147c6ff12"


def test_message_id_is_deterministic_and_differs_by_event_and_user() -> None:
    assert message_id("u-1", "ev-1") == message_id("u-1", "ev-1")
    assert message_id("u-1", "ev-1") != message_id("u-1", "ev-2")
    assert message_id("u-1", "ev-1") != message_id("u-2", "ev-1")


def test_replayed_trigger_builds_the_same_message() -> None:
    ranked = [scored("a", ("email",))]
    first, second = build(ranked), build(ranked)
    assert first == second
    assert first.to_json_bytes() == second.to_json_bytes()


def test_message_fields() -> None:
    msg = build([scored("a", ("email", "push"), 0.9), scored("b", ("email",), 0.5)])
    assert msg.schema_version == 1
    assert msg.message_id == message_id("u-1", "ev-1")
    assert msg.channel is Channel.EMAIL
    assert [(o.offer_id, o.rank) for o in msg.offers] == [("a", 1), ("b", 2)]
    assert msg.offers[0].score == 0.9
    assert msg.offers[0].reason == "reason a"
    assert set(msg.offers[0].score_parts) == {"affinity", "value", "popularity", "priority"}
    assert (msg.trigger.event_id, msg.trigger.type) == ("ev-1", "purchase")
    assert msg.generated_at == NOW
    assert msg.expires_at == NOW + 86_400_000
    assert (msg.model.vector_dim, msg.model.version) == (64, "v7")


def test_ttl_is_configurable() -> None:
    msg = build([scored("a", ("sms",))], Channel.SMS, ttl_ms=60_000)
    assert msg.expires_at == NOW + 60_000


def test_json_is_compact_and_round_trips() -> None:
    msg = build([scored("a", ("web",))], Channel.WEB)
    data = msg.to_json_bytes()
    body = json.loads(data)
    assert data == json.dumps(body, separators=(",", ":")).encode()
    assert body["channel"] == "web"
    assert body["trigger"] == {"event_id": "ev-1", "type": "purchase"}
    assert NextBestOffer.model_validate_json(data) == msg


def test_the_message_id_derives_from_the_subject_so_a_guessed_user_id_does_not_give_it() -> None:
    msg = message_for("alice@example.com", TRIGGER, Channel.EMAIL, [scored("a", ("email",))],
                      NOW, model_version="v7", dim=64, subject="5f0c2e")  # fmt: skip
    assert msg.message_id == message_id("5f0c2e", "ev-1")
    assert msg.message_id != message_id("alice@example.com", "ev-1")
    assert msg.user_id == "alice@example.com"  # the message itself addresses the person


def test_the_stored_form_names_the_subject_and_addressing_it_gives_back_the_published_bytes() -> (
    None
):
    msg = build([scored("a", ("email", "push"), 0.123456789), scored("b", ("email",), 1 / 3)])
    published = msg.to_json_bytes()

    stored = stored_form(msg, "pseudonym-1")

    assert b"u-1" not in stored and json.loads(stored)["user_id"] == "pseudonym-1"
    assert addressed(stored, "u-1") == published
    assert stored_form(msg, "u-1") == published  # not pseudonymised: stored as published
    assert addressed(published, "u-1") is published


def test_an_offer_carries_its_calibrated_match_between_0_and_100() -> None:
    recipe = EngineRecipe(
        model_version="v7", vector_dim=64, w_affinity=1.0, w_value=0.0, w_popularity=0.0,
        w_priority=0.0, w_cooccurrence=0.0, cooccurrence=False, profile_half_life_ms=1,
        recent_items=1, recency_decay=1.0,
    )  # fmt: skip
    fitted = FittedOn(source="s", period_start_ms=0, period_end_ms=1, offers=1, positives=0,
                      depth=1, horizon=1, min_bin=1)  # fmt: skip
    cal = Calibration(target="t", engine=recipe, fitted_on=fitted,
                      points=((0.0, 0.02), (1.0, 0.42)))  # fmt: skip
    offers = [scored("o1", ("email",), 0.5), scored("o2", ("email",), 3.0)]
    matched = [
        ScoredOffer(s.offer, s.score, s.parts, s.reason, m)
        for s, m in zip(offers, cal.match([calibrated_score(s) for s in offers]), strict=True)
    ]
    doc = json.loads(build(matched).to_json_bytes())
    assert [o["match"] for o in doc["offers"]] == [22.0, 42.0]
    assert all(0 <= o["match"] <= 100 for o in doc["offers"])
    assert NextBestOffer.model_validate(doc).offers[0].match == 22.0


def test_without_a_match_the_message_has_no_match_key() -> None:
    raw = build([scored("o1", ("email",))]).to_json_bytes()
    assert b'"match"' not in raw
    assert NextBestOffer.model_validate_json(raw).offers[0].match is None


@pytest.mark.parametrize("bad", [-0.1, 100.5])
def test_a_match_outside_0_to_100_is_not_a_valid_message(bad: float) -> None:
    doc = json.loads(build([scored("o1", ("email",))]).to_json_bytes())
    doc["offers"][0]["match"] = bad
    with pytest.raises(ValueError, match="match"):
        NextBestOffer.model_validate(doc)


@given(st.text(max_size=60), st.text(max_size=60))
def test_message_ids_are_rfc_4122_uuid5_of_subject_and_event(subject: str, event_id: str) -> None:
    try:
        expected = str(uuid.uuid5(MESSAGE_ID_NAMESPACE, f"{subject}\x1f{event_id}"))
    except UnicodeEncodeError:  # a lone surrogate: neither can encode it
        with pytest.raises(UnicodeEncodeError):
            message_id(subject, event_id)
        return
    assert message_id(subject, event_id) == expected
