"""Which channel an offer goes out on (a seam).

The contact-policy issue will replace :func:`choose_channel` with a policy that looks at the
user's channel consent, frequency caps and quiet hours; callers only depend on this signature.
"""

from __future__ import annotations

from app.core.catalog_records import Offer
from app.core.enums import Channel


def choose_channel(offer: Offer) -> Channel | None:
    """The offer's first allowed channel, or ``None`` when it allows none (never sent)."""
    return offer.channels[0] if offer.channels else None
