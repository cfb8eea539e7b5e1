from __future__ import annotations

import pytest

from app.core.catalog_records import Offer
from app.core.channels import choose_channel
from app.core.enums import Channel

pytestmark = pytest.mark.unit


def test_first_allowed_channel_is_chosen() -> None:
    offer = Offer(offer_id="o", title="t", channels=("push", "email"))
    assert choose_channel(offer) is Channel.PUSH


def test_no_allowed_channel_means_none() -> None:
    assert choose_channel(Offer(offer_id="o", title="t")) is None
