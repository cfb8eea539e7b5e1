"""From ranked candidates to a decision, its message and its audit record (no I/O).

:class:`DecisionMaker` applies the contact policy (:func:`app.policy.decide`) to a user's
candidates, builds the next-best-offer message when something is sent (reasons from the
actual score parts), updates the user's policy state (contact history) and writes the
``nbo-decisions`` record. The batch processor and the cart timers both use it, so every
trigger goes through the same rules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pydantic_core

from app.core.calibration import calibrated_scores, part_names
from app.core.catalog import Catalogue
from app.core.enums import Channel
from app.core.holdout import PERSONALISED
from app.core.messages import Trigger, message_for, message_id, stored_form
from app.core.pseudonym import pseudonymise
from app.core.ranked import ScoredOffer
from app.core.reasons import Because, cart_reason
from app.core.scoring import COOCCURRENCE_PART, unit_user, with_reasons
from app.pipeline.config import PipelineConfig
from app.policy.consent import ConsentRecord
from app.policy.decision import Decision, decide, record_decision
from app.policy.state import UserPolicyState


@dataclass(frozen=True)
class Outcome:
    """A decision and what follows from it.

    ``offers_json``: the message (bytes, as published) when sent, else ``None``.
    ``channel``: the message's channel. ``record``: the ``nbo-decisions`` record (JSON
    bytes). ``state``: the user's policy state after the decision. ``stored_json``: the
    message as kept in Redis (:func:`app.core.messages.stored_form`: addressed to the user's
    pseudonym when ids are pseudonymised, else the same bytes as ``offers_json``).
    """

    decision: Decision
    offers_json: bytes | None
    channel: Channel | None
    record: bytes
    state: UserPolicyState
    stored_json: bytes | None = None


class DecisionMaker:
    """Decides for one user at a time (see module doc)."""

    def __init__(self, catalogue: Catalogue, config: PipelineConfig) -> None:
        self._catalogue = catalogue
        self._cfg = config

    def decide(
        self,
        user_id: str,
        user_vec: npt.NDArray[np.float32] | None,
        candidates: Sequence[ScoredOffer],
        state: UserPolicyState,
        consent: ConsentRecord | None,
        trigger: Trigger,
        now_ms: int,
        *,
        requested_channel: Channel | None = None,
        tz_hint: str | None = None,
        max_offers: int | None = None,
        group: str = "personalised",
        because: Because | None = None,
        cart_item_ids: Sequence[str] = (),
        unit: bool = False,
    ) -> Outcome:
        """The outcome for ``candidates`` (ranked best first) under the contact policy.

        Every offer sent carries a reason built from its score parts, whatever the group:
        without a user vector (the control group, an objector) no interest is named, and the
        value, popularity, priority or exploration part speaks. ``because`` names the recent
        item behind a dominant co-occurrence part in a reason; ``cart_item_ids`` (a fired cart
        timer) make an offer about one of those items say so ("Still thinking about ...?").
        Candidates get their calibrated match (:meth:`matches`) when one applies."""
        cfg = self._cfg
        policy = cfg.policy
        decision = decide(
            candidates,
            state,
            consent,
            now_ms,
            policy,
            policy.consent_defaults,
            max_offers=max_offers or cfg.scoring.k,
            requested_channel=requested_channel,
            tz_hint=tz_hint,
            matches=self.matches(candidates, group, cart=bool(cart_item_ids)),
        )
        offers_json: bytes | None = None
        stored_json: bytes | None = None
        sent_id: str | None = None
        subject = pseudonymise(user_id, cfg.pseudonym_secret)
        reasons: list[str] = []
        if decision.sent and decision.channel is not None:
            catalogue = self._catalogue
            if user_vec is not None:
                vec = user_vec if unit else unit_user(user_vec)
            else:
                vec = np.zeros(catalogue.dim, dtype=np.float32)
            explained = with_reasons(
                vec, decision.offers, catalogue.snapshot(), cfg.scoring, because
            )
            if cart_item_ids:
                explained = [
                    dataclasses.replace(s, reason=r)
                    if (r := cart_reason(s.offer, cart_item_ids, _item_title(catalogue)))
                    else s
                    for s in explained
                ]
            reasons = [s.reason for s in explained]
            message = message_for(
                user_id,
                trigger,
                decision.channel,
                explained,
                now_ms,
                model_version=cfg.model_version,
                dim=self._catalogue.dim,
                ttl_ms=cfg.offer_ttl_ms,
                group=group,
                subject=subject,
            )
            offers_json, sent_id = message.to_json_bytes(), message.message_id
            stored_json = stored_form(message, subject) if subject != user_id else offers_json
            state = record_decision(state, decision, policy)
        record = decision.to_record(subject, trigger.event_id, trigger.type, group)
        record["decision_id"] = message_id(subject, f"decision\x1f{trigger.event_id}")
        if sent_id is not None:
            record["message_id"] = sent_id
        for offer, reason in zip(record["offers"], reasons, strict=False):
            offer["reason"] = reason
        return Outcome(
            decision,
            offers_json,
            decision.channel if offers_json is not None else None,
            pydantic_core.to_json(record),  # compact UTF-8 JSON, serialised in Rust
            state,
            stored_json,
        )

    def matches(
        self, candidates: Sequence[ScoredOffer], group: str, *, cart: bool = False
    ) -> list[float] | None:
        """Each candidate's calibrated match percentage, or ``None`` where the calibration
        says nothing about these scores: none configured, the control group (ranked without
        the person), a cart timer (ranked for the cart's items), or a ranking with(out) the
        co-occurrence part when the calibration was fitted without (with) it."""
        calibration = self._cfg.calibration
        if calibration is None or group != PERSONALISED or cart or not candidates:
            return None
        if (COOCCURRENCE_PART in part_names(candidates)) != calibration.engine.cooccurrence:
            return None
        return calibration.match(calibrated_scores(candidates))


def _item_title(catalogue: Catalogue) -> Callable[[str], str | None]:
    def title(item_id: str) -> str | None:
        item = catalogue.item(item_id)
        return item.title if item is not None else None

    return title
