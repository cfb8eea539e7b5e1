"""The records a batch publishes: offer messages, decision records and dead letters.

Built here once, for the event pipeline, the cart timers and the consent and privacy agents.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from app.core.dead_letters import dead_letter_headers
from app.core.messages import addressed
from app.core.pseudonym import pseudonymise
from app.pipeline.config import PipelineConfig
from app.pipeline.records import InboundRecord
from app.ports import OutboundRecord

CHANNEL_HEADER = "nbo.channel"
"""Header of an offer message naming its channel, so a channel service can filter on it
without parsing the value."""


def dead_letter(
    topic: str, record: InboundRecord, reason_class: str, message: str, now_ms: int
) -> OutboundRecord:
    """The dead letter of ``record`` on ``topic``: original key and value, standard headers
    (``reason_class``: a :class:`~app.core.errors.RejectReason`, or the exception class of an
    unexpected failure of this record)."""
    headers = dead_letter_headers(
        reason_class, message, record.topic, record.partition, record.offset, now_ms
    )
    return OutboundRecord(topic, record.key, record.value, headers)


@dataclass(frozen=True)
class Outbound:
    """Builds the pipeline's outbound records for the topics of one configuration."""

    offers_topic: str
    decisions_topic: str
    dead_letter_topic: str
    pseudonym_secret: bytes | None = None

    @classmethod
    def of(cls, config: PipelineConfig) -> Outbound:
        """The topics and pseudonym secret of ``config``."""
        return cls(
            config.offers_topic,
            config.decisions_topic,
            config.dead_letter_topic,
            config.pseudonym_secret,
        )

    def offer(self, user_id: str, offers_json: bytes, channel: str | None = None) -> OutboundRecord:
        """A next-best-offer message keyed by the user, its channel in a header (read from
        the message when not given)."""
        if channel is None:
            channel = str(json.loads(offers_json).get("channel", ""))
        return OutboundRecord(
            topic=self.offers_topic,
            key=user_id.encode(),
            value=offers_json,
            headers=((CHANNEL_HEADER, channel.encode()),),
        )

    def republish(self, user_id: str, stored_json: bytes) -> OutboundRecord:
        """:meth:`offer` of a message as stored in Redis, addressed to ``user_id`` again (the
        stored copy names the user's pseudonym when ids are pseudonymised)."""
        if self.pseudonym_secret:
            return self.offer(user_id, addressed(stored_json, user_id))
        return self.offer(user_id, stored_json)

    def decision(self, user_id: str, record: bytes) -> OutboundRecord:
        """A decision record keyed by the (pseudonymised) user."""
        key = pseudonymise(user_id, self.pseudonym_secret).encode()
        return OutboundRecord(self.decisions_topic, key, record)

    def dead_letter(
        self, record: InboundRecord, reason_class: str, message: str, now_ms: int
    ) -> OutboundRecord:
        """The dead letter of ``record`` on the dead-letter topic (see :func:`dead_letter`)."""
        return dead_letter(self.dead_letter_topic, record, reason_class, message, now_ms)
