"""The pure core of nbo-stream: contracts, vectors, profiles, catalogue, scoring, messages.

Plain Python + numpy + pydantic; no I/O, no global mutable state, no environment. Every
function takes its configuration as arguments (frozen models with documented defaults).
"""

from app.core.catalog import Catalogue, CatalogueSnapshot
from app.core.catalog_records import Item, Offer, decode_item, decode_offer
from app.core.channels import choose_channel
from app.core.dead_letters import dead_letter_headers
from app.core.enums import Channel, EventType
from app.core.errors import EventRejected, RejectReason
from app.core.events import UserEvent, decode_event
from app.core.messages import NextBestOffer, RankedOffer, build_next_best_offer, message_id
from app.core.profile import ApplyResult, PendingEvent, Profile, ProfileConfig, apply_events
from app.core.reasons import strongest_tags
from app.core.scoring import ScoredOffer, ScoringConfig, ranking_changed, score_batch
from app.core.vectors import hash_tags, resolve_vector, vec_from_bytes, vec_to_bytes
from app.core.weights import EventWeights, event_weight

__all__ = [
    "ApplyResult",
    "Catalogue",
    "CatalogueSnapshot",
    "Channel",
    "EventRejected",
    "EventType",
    "EventWeights",
    "Item",
    "NextBestOffer",
    "Offer",
    "PendingEvent",
    "Profile",
    "ProfileConfig",
    "RankedOffer",
    "RejectReason",
    "ScoredOffer",
    "ScoringConfig",
    "UserEvent",
    "apply_events",
    "build_next_best_offer",
    "choose_channel",
    "dead_letter_headers",
    "decode_event",
    "decode_item",
    "decode_offer",
    "event_weight",
    "hash_tags",
    "message_id",
    "ranking_changed",
    "resolve_vector",
    "score_batch",
    "strongest_tags",
    "vec_from_bytes",
    "vec_to_bytes",
]
