"""A user written into the in-memory store as a worker would leave one: a profile leaning
to ``sci-fi``, a current message, two decision records (one sent, one suppressed by caps),
email contacts, and a consent record. Shared by the Person page's tests."""

from __future__ import annotations

import json

import numpy as np

from app.core.catalog import Catalogue
from app.core.catalog_records import Item, Offer
from app.core.enums import Channel
from app.core.profile import Profile
from app.policy.consent import ConsentRecord
from app.policy.state import UserPolicyState
from app.ports import UserWrite
from app.storage.memory_store import MemoryProfileStore

USER = "alice@example.com"
NOW_MS = 1_795_000_000_000
HOUR_MS = 3_600_000
EMAIL_SENDS = (NOW_MS - 30 * 60_000, NOW_MS - 5 * HOUR_MS, NOW_MS - 30 * HOUR_MS)
"""Within 1 h: one; within 1 d: two; within 7 d: three."""
OFFER_REASON = "Matches your interest in sci-fi"
CAP_REASON_COUNT = 7
OFFER_TITLE = "Space Odyssey weekend"


def catalogue() -> Catalogue:
    cat = Catalogue()
    cat.upsert_item(Item(item_id="alien", tags=["sci-fi", "horror"]))
    cat.upsert_item(Item(item_id="amelie", tags=["romance", "comedy"]))
    cat.upsert_offer(
        Offer(offer_id="o-space", title=OFFER_TITLE, item_ids=("alien",), tags=("sci-fi",),
              channels=("email", "in_app"))
    )  # fmt: skip
    return cat


def message() -> bytes:
    return json.dumps(
        {
            "schema_version": 1,
            "message_id": "m1",
            "user_id": USER,
            "channel": "email",
            "offers": [
                {
                    "offer_id": "o-space",
                    "rank": 1,
                    "score": 0.87,
                    "score_parts": {"affinity": 0.7},
                    "reason": OFFER_REASON,
                    "match": 12.4,
                }
            ],
            "trigger": {"event_id": "e42", "type": "like"},
            "generated_at": NOW_MS - 30 * 60_000,
            "expires_at": NOW_MS + 20 * HOUR_MS,
            "model": {"vector_dim": 64, "version": "tags-v1"},
            "group": "personalised",
        }
    ).encode()


def decisions() -> list[bytes]:
    """Oldest first, as a write pushes them."""
    sent = {
        "schema_version": 1,
        "decision_id": "d1",
        "user_id": USER,
        "trigger": {"event_id": "e42", "type": "like"},
        "group": "personalised",
        "decided_at": NOW_MS - 30 * 60_000,
        "policy_version": "default-2025.2",
        "candidate_count": 20,
        "rejected": {"consent": 12},
        "sent": True,
        "reason": None,
        "channel": "email",
        "offers": [{"offer_id": "o-space", "rank": 1, "reason": OFFER_REASON}],
    }
    suppressed = {
        **sent,
        "decision_id": "d2",
        "trigger": {"event_id": "e43", "type": "view"},
        "decided_at": NOW_MS - 10 * 60_000,
        "rejected": {"cap": CAP_REASON_COUNT, "consent": 12, "below_match": 1},
        "held_back": [{"offer_id": "o-weak", "rank": 4, "match": 1.3}],
        "sent": False,
        "reason": "cap",
        "channel": None,
        "offers": [],
    }
    return [json.dumps(sent).encode(), json.dumps(suppressed).encode()]


def consent() -> ConsentRecord:
    return ConsentRecord.model_validate(
        {
            "user_id": USER,
            "channels": {"email": True, "push": False},
            "ts": NOW_MS - 86_400_000,
            "tz": "Europe/London",
            "source": "app-settings",
        }
    )


async def store_with_alice(cat: Catalogue) -> MemoryProfileStore:
    """The store with :data:`USER` as described in the module doc, and ``bob``, who is known
    but has no data left (every key but the consent expired; he never gave consent)."""
    store = MemoryProfileStore()
    store.set_consent(consent())
    vec = cat.tag_vector("sci-fi")
    assert vec is not None
    profile = Profile(vec=np.asarray(vec, dtype=np.float32) * 3, t_ref_ms=NOW_MS, n_events=4,
                      updated_at_ms=NOW_MS - 60_000)  # fmt: skip
    policy = UserPolicyState(contacts={Channel.EMAIL: tuple(sorted(EMAIL_SENDS))})
    stored = (await store.load([USER]))[USER]
    outcome = await store.commit(
        [
            UserWrite(
                USER,
                stored.version,
                profile,
                offers_json=message(),
                policy_json=policy.to_json(),
                decisions=decisions(),
                consent_tag=stored.consent_tag,
            )
        ]
    )
    assert USER in outcome.versions
    await store.commit([UserWrite("bob", 0, Profile.empty())])
    store.expire("bob")
    return store
