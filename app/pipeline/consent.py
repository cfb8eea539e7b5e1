"""Applying consent records to the users' stored state (the user-consent agent runs it).

``user-consent`` is compacted and keyed by ``user_id``; a value is a
:class:`~app.policy.consent.ConsentRecord` (JSON), a null value (tombstone) deletes the
stored consent (the defaults apply again). Each record is applied with one atomic call of
:meth:`app.ports.UserAdmin.apply_consent` (``consent.lua``: an older ``ts`` than the stored
one changes nothing; otherwise the consent is stored, the profile's ``ver`` is bumped so
event workers reload the user, and an objection deletes profile, offers, seen and purchased).

Records of a batch are applied in order, one after the other (consent changes are rare).
A record that cannot be decoded, a tombstone whose key is not a valid user id, or a record
whose key is not its ``user_id`` goes to the dead-letter topic. Any other failure (Redis or
the broker unavailable) retries the whole batch with capped backoff (:mod:`agents.stream`):
applying a record twice has the same effect as once, and a consent change is never skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.clock import now_ms
from app.core.decoding import DEFAULT_MAX_BYTES
from app.core.errors import EventRejected, is_transient
from app.core.privacy import check_key, key_user_id
from app.core.timestamps import check_not_ahead
from app.pipeline.config import MAX_AHEAD_MS
from app.pipeline.outbound import dead_letter
from app.pipeline.records import InboundRecord
from app.policy.consent import ConsentRecord, decode_consent
from app.ports import OutboundRecord, Publisher, UserAdmin

log = logging.getLogger(__name__)


def decode_consent_change(
    key: bytes | None, value: bytes | None, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[str, ConsentRecord | None]:
    """``(user_id, record)`` of one ``user-consent`` message; ``record`` is ``None`` for a
    tombstone (null value, the user id is the key). Raises
    :class:`~app.core.errors.EventRejected`."""
    if value is None:
        return key_user_id(key), None
    record = decode_consent(value, max_bytes)
    check_key(key, record.user_id)
    return record.user_id, record


@dataclass
class ConsentBatch:
    """What one batch did: records applied, ignored as older than the stored consent, and
    dead-lettered."""

    applied: int = 0
    stale: int = 0
    dead_lettered: int = 0


@dataclass
class ConsentHandler:
    """Applies batches of ``user-consent`` records (see module doc)."""

    admin: UserAdmin
    publisher: Publisher
    dead_letter_topic: str
    clock: Callable[[], int] = now_ms
    max_bytes: int = DEFAULT_MAX_BYTES
    max_ahead_ms: int = MAX_AHEAD_MS
    """Records dated more than this after :attr:`clock` are dead-lettered (``FutureTimestamp``)."""

    async def handle(self, records: Sequence[InboundRecord]) -> ConsentBatch:
        """Apply ``records`` in order, then publish their dead letters; raises when Redis or
        the broker fails (the caller retries the batch)."""
        batch = ConsentBatch()
        dead: list[OutboundRecord] = []
        for record in records:
            try:
                user_id, consent = decode_consent_change(record.key, record.value, self.max_bytes)
                if consent is not None:
                    check_not_ahead(consent.ts_ms, self.clock(), self.max_ahead_ms)
            except EventRejected as exc:
                dead.append(
                    dead_letter(
                        self.dead_letter_topic, record, exc.reason_class, exc.message, self.clock()
                    )
                )
                batch.dead_lettered += 1
                continue
            try:
                applied = await self.admin.apply_consent(user_id, consent)
            except Exception as exc:
                if is_transient(exc):
                    raise
                # this record fails for good: dead-letter it, never stall the topic
                log.exception("dead-lettering a consent record that cannot be applied")
                reason = type(exc).__name__
                dead.append(
                    dead_letter(self.dead_letter_topic, record, reason, str(exc), self.clock())
                )
                batch.dead_lettered += 1
                continue
            if applied:
                batch.applied += 1
            else:
                batch.stale += 1
        if dead:
            await self.publisher.publish(dead)
        return batch
