"""The msgspec fast path decodes exactly what the pydantic model decodes, to the same event.

Differential: every record, hand-picked or generated, goes through :func:`decode_event` (fast
path first) and through the model alone; both must accept it with equal events or reject it
with the same reason and message.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.decoding import decode_model
from app.core.errors import EventRejected
from app.core.events import UserEvent, decode_event
from app.core.fast_events import decode_common

pytestmark = pytest.mark.unit

BASE: dict[str, Any] = {
    "event_id": "ev-1",
    "user_id": "user-1",
    "type": "click",
    "item_id": "item-1",
    "ts": 1_700_000_000_000,
    "context": {"page": "/shop/item-1?pos=3", "device": "ios", "n": 3, "x": 1.5, "b": True},
}


def outcome(decode: Any, raw: bytes) -> tuple[str, Any]:
    try:
        event = decode(raw)
    except EventRejected as exc:
        return "rejected", (exc.reason_class, exc.message)
    return "accepted", (
        event,
        repr(event),
        event.model_fields_set,
        event.__pydantic_extra__,
        event.__pydantic_private__,
        event.to_json_bytes(),
    )


def assert_same(raw: bytes) -> None:
    fast = outcome(decode_event, raw)
    model = outcome(lambda r: decode_model(UserEvent, r), raw)
    assert fast == model, raw


def dumps(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def test_a_common_record_takes_the_fast_path_and_equals_the_model() -> None:
    for raw in (dumps(BASE), json.dumps(BASE).encode()):  # spaces after ":" and ","
        assert decode_common(raw) is not None
        assert_same(raw)
    assert decode_event(raw).context == {**BASE["context"]}


@pytest.mark.parametrize(
    "raw",
    [
        dumps({**BASE, "surprise": 1}),  # unknown field
        b'{"event_id":"a","event_id":"b","user_id":"u","type":"view","item_id":"i","ts":1}',
        b'{"event_id":"a","user_id":"u","type":"view","item_id":"i","ts":1,"context":{"k":1,"k":2}}',
        b'{"event_id":"a","event_id":"b","user_id":"u","type":"view","item_id":"i","ts":1,"x" :1}',
        dumps({**BASE, "event_id": 'quote"d'}),  # an escape
        json.dumps(BASE, separators=(",", " : ")).encode(),  # whitespace after quotes
        dumps({**BASE, "ts": "2024-05-01T12:00:00Z"}),
        dumps({**BASE, "schema_version": 2}),
        dumps({**BASE, "item_id": None}),
        dumps({**BASE, "type": "rating"}),
        dumps({**BASE, "type": "offer_click"}),
        dumps({**BASE, "type": "decision_request"}),
        b'{"event_id":"a","user_id":"u","type":"view","item_id":"i","ts":1,"context":{"i":1e999}}',
        dumps({**BASE, "user_id": "alice\n"}),
        dumps({**BASE, "value": -1}),
        dumps({**BASE, "rating": True}),
        dumps({**BASE, "ts": 1.0}),
        dumps({**BASE, "ts": True}),
        b"\xff\xfe" + dumps(BASE),
    ],
    ids=[
        "unknown-field", "duplicate-key", "duplicate-context-key", "duplicate-hidden-by-space",
        "escape", "space-before-colon", "rfc3339-ts", "schema-2", "null-item",
        "rating-without-rating", "offer-event-without-offer", "request-without-channel",
        "context-infinity", "user-id-newline", "negative-value",
        "boolean-rating", "float-ts", "boolean-ts", "not-utf8",
    ],
)  # fmt: skip
def test_a_record_the_fast_path_cannot_prove_goes_to_the_model(raw: bytes) -> None:
    assert decode_common(raw) is None
    assert_same(raw)


@pytest.mark.parametrize(
    "doc",
    [
        {**BASE, "tags": None},
        {**BASE, "tags": ["a", "B c"]},
        {**BASE, "tags": ["x" * 100] * 32},
        {**BASE, "tags": ["x" * 101]},
        {**BASE, "tags": ["t"] * 33},
        {**BASE, "context": None},
        {**BASE, "context": {}},
        {**BASE, "context": {f"k{i}": i for i in range(33)}},
        {**BASE, "context": {"nested": {"a": 1}}},
        {**BASE, "context": {"list": [1]}},
        {**BASE, "context": {"null": None}},
        {**BASE, "context": {"big": 1e300, "int": 10**30, "neg": -(10**30)}},
        {**BASE, "type": "rating", "rating": 4},
        {**BASE, "type": "rating", "rating": 0.4},
        {**BASE, "type": "rating", "rating": 5.0000001},
        {**BASE, "type": "purchase", "value": 1e9},
        {**BASE, "type": "purchase", "value": 1e9 + 1},
        {**BASE, "type": "purchase", "value": -0.0},
        {**BASE, "type": "offer_click", "offer_id": "o1", "item_id": None},
        {**BASE, "type": "decision_request", "channel": "push"},
        {**BASE, "type": "decision_request", "channel": "fax"},
        {**BASE, "type": "VIEW"},
        {**BASE, "event_id": ""},
        {**BASE, "event_id": "\U0001f600" * 128},
        {**BASE, "event_id": "\U0001f600" * 129},
        {**BASE, "user_id": "u" * 128},
        {**BASE, "user_id": "u" * 129},
        {**BASE, "user_id": "\u00e9"},
        {**BASE, "ts": -1},
        {**BASE, "ts": 253_402_300_799_999},
        {**BASE, "ts": 253_402_300_800_000},
        {**BASE, "ts": 2**70},
        {**BASE, "schema_version": 1},
        {**BASE, "schema_version": True},
        {**BASE, "schema_version": "1"},
        {**BASE, "event_id": 7},
        {**BASE, "offer_id": None},
        {**BASE, "channel": None},
        {**BASE, "rating": None, "value": None},
        [BASE],
        "event",
        None,
    ],
)
def test_hand_picked_records_decode_as_the_model_decodes_them(doc: object) -> None:
    assert_same(dumps(doc))


TEXT = st.characters(min_codepoint=32, exclude_characters='"\\')
"""Characters JSON writes unescaped (when not forced to ASCII)."""
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=140),
)
CONTEXT_VALUES = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**65), max_value=2**65),
    st.floats(),
    st.text(TEXT, max_size=8),
)
VALID = {  # what a producer should send, with values at and near the limits
    "schema_version": st.just(1),
    "event_id": st.text(TEXT, min_size=1, max_size=130),
    "user_id": st.from_regex(r"\A[A-Za-z0-9._:@-]{1,130}\Z"),
    "type": st.sampled_from(
        [
            "view",
            "click",
            "rating",
            "purchase",
            "offer_click",
            "offer_impression",
            "decision_request",
            "add_to_cart",
        ]
    ),
    "item_id": st.text(TEXT, min_size=1, max_size=5),
    "offer_id": st.text(TEXT, min_size=1, max_size=5),
    "rating": st.floats(min_value=0.4, max_value=5.1),
    "value": st.floats(min_value=-1, max_value=1.1e9),
    "channel": st.sampled_from(["web", "push", "sms", "fax"]),
    "ts": st.integers(min_value=-5, max_value=253_402_300_800_005),
    "tags": st.lists(st.text(TEXT, max_size=102), max_size=34),
    "context": st.one_of(
        st.dictionaries(st.text(TEXT, max_size=5), CONTEXT_VALUES, max_size=34),
        st.dictionaries(st.text(max_size=3), st.lists(SCALARS, max_size=2), max_size=2),
    ),
    "extra": SCALARS,
}
REQUIRED = ("event_id", "user_id", "type", "ts")


@st.composite
def records(draw: st.DrawFn) -> bytes:
    """A JSON object, mostly well-formed: each field present (required ones nearly always),
    its value mostly of the right kind, sometimes any JSON scalar, sometimes a key twice."""
    doc: dict[str, object] = {}
    for name, valid in VALID.items():
        if draw(st.integers(0, 19)) <= (0 if name in REQUIRED else 16 if name == "extra" else 8):
            continue
        doc[name] = draw(valid) if draw(st.integers(0, 19)) else draw(SCALARS)
    if draw(st.booleans()):  # give the fields the type requires, so more records are valid
        needs = {"rating": ("item_id", "rating"), "decision_request": ("channel",)}
        kind = doc.get("type")
        for name in needs.get(
            kind, ("offer_id",) if str(kind).startswith("offer") else ("item_id",)
        ):  # type: ignore[arg-type]
            doc[name] = draw(VALID[name])
    separators = draw(st.sampled_from([(",", ":"), (",", ":"), (", ", ": ")]))
    raw = json.dumps(doc, separators=separators, ensure_ascii=draw(st.integers(0, 4)) == 0)
    if doc and draw(st.integers(0, 4)) == 0:  # repeat one key with another value
        name = draw(st.sampled_from(sorted(doc)))
        again = draw(VALID[name]) if draw(st.booleans()) else draw(SCALARS)
        raw = raw[:-1] + f",{json.dumps(name)}:{json.dumps(again)}}}"
    return raw.encode("utf-8", "surrogatepass")  # a lone surrogate: invalid UTF-8


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_generated_records_decode_as_the_model_decodes_them(raw: bytes) -> None:
    assert_same(raw)


def test_generation_reaches_the_fast_path() -> None:
    """The generator above is not only testing the fallback: well-formed records it can
    produce are taken by the fast path."""
    raw = dumps({**BASE, "type": "rating", "rating": 3.5, "tags": ["a"], "schema_version": 1})
    assert decode_common(raw) is not None
    assert_same(raw)
