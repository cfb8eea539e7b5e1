"""Erasing or exporting a user, and reporting on ``privacy-audit`` (the privacy-requests agent
runs it).

``privacy-requests`` is keyed by ``user_id``; a value is a
:class:`~app.core.privacy.PrivacyRequest`. ``erase`` deletes every Redis key of the user and
the user's cart-timer index entries (:meth:`app.ports.UserAdmin.erase`); ``export`` reads
everything stored (:meth:`app.ports.UserAdmin.export`) and adds the profile's strongest
catalogue tags. Each request yields one audit record (key ``user_id``) built by
:mod:`app.core.privacy`. An undecodable request, or one whose key is not its ``user_id``, goes
to the dead-letter topic.

The agent waits until the catalogue is loaded (exports name tags from it). A batch is
acknowledged only after its audit records (and dead letters) are acknowledged by the broker.
Failures are retried with capped backoff (:mod:`agents.stream`); a request already carried
out in this batch is not carried out again on a retry, so an erase reports the keys it really
deleted even when publishing its audit record had to be retried. After a crash the request is
handled again (at least once): consumers keep the first audit record of a ``request_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from app.clock import now_ms
from app.core.catalog import Catalogue
from app.core.decoding import DEFAULT_MAX_BYTES
from app.core.errors import EventRejected, is_transient
from app.core.privacy import (
    ErasureAudit,
    ExportAudit,
    PrivacyKind,
    PrivacyRequest,
    check_key,
    decode_privacy_request,
    erase_audit,
    export_audit,
    export_data,
)
from app.core.reasons import strongest_tags
from app.core.timestamps import check_not_ahead
from app.pipeline.config import MAX_AHEAD_MS
from app.pipeline.outbound import dead_letter
from app.pipeline.records import InboundRecord
from app.policy.state import UserPolicyState
from app.ports import OutboundRecord, Publisher, UserAdmin

log = logging.getLogger(__name__)

EXPORT_TAGS = 5
"""Strongest tags named in an export (as ``GET /users/{id}/profile``)."""


def decode_request(
    key: bytes | None, value: bytes | None, max_bytes: int = DEFAULT_MAX_BYTES
) -> PrivacyRequest:
    """The request of one message; raises :class:`~app.core.errors.EventRejected`."""
    request = decode_privacy_request(value, max_bytes)
    check_key(key, request.user_id)
    return request


def readable_policy_state(stored: object) -> object:
    """The stored contact-policy state with its field names spelled out (``contacts``,
    ``offers``, ``engagement``, ... instead of the stored short keys), or as stored when it
    does not parse."""
    if not isinstance(stored, dict):
        return stored
    try:
        return UserPolicyState.model_validate(stored).model_dump(mode="json")
    except ValidationError:
        return stored


def addressed_to(stored: object, user_id: str) -> object:
    """A stored document (consent record, offer message) with its ``user_id`` the person's
    own again: stored copies name the pseudonym when ids are pseudonymised, and an export is
    the person's data, for them."""
    if isinstance(stored, dict) and "user_id" in stored:
        return {**stored, "user_id": user_id}
    return stored


@dataclass
class PrivacyHandler:
    """Carries out batches of privacy requests (see module doc)."""

    admin: UserAdmin
    publisher: Publisher
    catalogue: Catalogue
    audit_topic: str
    dead_letter_topic: str
    clock: Callable[[], int] = now_ms
    max_bytes: int = DEFAULT_MAX_BYTES
    max_ahead_ms: int = MAX_AHEAD_MS
    """Records dated more than this after :attr:`clock` are dead-lettered (``FutureTimestamp``)."""
    on_erased: Callable[[str], None] | None = None
    """Called with the user id after each erase (the worker drops the user from its memory)."""

    async def carry_out(self, request: PrivacyRequest) -> OutboundRecord:
        """Erase or export ``request.user_id``; the audit record to publish."""
        if request.kind is PrivacyKind.ERASE:
            # everything the person did up to now is erased: the request's time, or the
            # worker's clock when it is later (events may still sit in consumer lag)
            at_ms = max(request.ts_ms, self.clock())
            erased = await self.admin.erase(request.user_id, at_ms)
            if self.on_erased is not None:
                self.on_erased(request.user_id)
            audit: ErasureAudit | ExportAudit = erase_audit(
                request, erased.deleted_keys, erased.timers_removed, self.clock(), at_ms
            )
        else:
            found = await self.admin.export(request.user_id)
            tags = (
                strongest_tags(found.profile.vec, self.catalogue, n=EXPORT_TAGS)
                if found.profile is not None
                else []
            )
            data = export_data(
                profile=found.profile,
                strongest_tags=tags,
                consent=addressed_to(found.consent, request.user_id),
                contact_history=readable_policy_state(found.contact_history),
                decisions=found.decisions,
                current_offers=addressed_to(found.current_offers, request.user_id),
                seen_items=found.seen,
                purchased_items=found.purchased,
                sent_messages=[addressed_to(m, request.user_id) for m in found.sent_messages],
            )
            audit = export_audit(request, data, self.clock())
        log.info("privacy request %s (%s) completed", request.request_id, request.kind.value)
        return OutboundRecord(
            self.audit_topic, request.user_id.encode("utf-8"), audit.to_json_bytes()
        )

    async def handle(
        self, records: Sequence[InboundRecord], done: MutableMapping[int, OutboundRecord]
    ) -> int:
        """Carry out every request of ``records`` not yet in ``done`` (position -> its audit
        record or dead letter, filled as it goes), then publish all of them in order.
        Returns the number published; raises when Redis or the broker fails."""
        for i, record in enumerate(records):
            if i in done:
                continue
            try:
                request = decode_request(record.key, record.value, self.max_bytes)
                check_not_ahead(request.ts_ms, self.clock(), self.max_ahead_ms)
            except EventRejected as exc:
                done[i] = dead_letter(
                    self.dead_letter_topic, record, exc.reason_class, exc.message, self.clock()
                )
                continue
            try:
                done[i] = await self.carry_out(request)
            except Exception as exc:
                if is_transient(exc):
                    raise
                # this request fails for good: dead-letter it, never stall the topic
                log.exception("dead-lettering a privacy request that cannot be carried out")
                reason = type(exc).__name__
                done[i] = dead_letter(
                    self.dead_letter_topic, record, reason, str(exc), self.clock()
                )
        outbound = [done[i] for i in range(len(records))]
        if outbound:
            await self.publisher.publish(outbound)
        return len(outbound)
