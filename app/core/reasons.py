"""Human-readable reasons for a recommendation, built from the actual score parts.

The user's interest in a tag is the projection (cosine) of the unit user vector on the tag's
hash vector; tags come from the catalogue's vocabulary (item and offer tags).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from app.core.catalog import Catalogue, CatalogueSnapshot
from app.core.catalog_records import OfferRecord
from app.core.vectors import unit

REASON_FALLBACK = "Best available for you now: {title}"
"""Reason when no score part is positive: the offer ranked first among what is eligible,
without a positive part to name (formatted with the offer's title)."""
REASON_CART = "Still thinking about {title}?"
"""Reason of an offer about an item left in the cart, when the cart timer fires (formatted
with the item's title, or the offer's without one)."""
REASON_RESTOCK = "Time to restock {title}?"
"""Reason of an offer lifted by the ``restock`` part (a repeatable item the person is due to
buy again, :mod:`app.core.restock`), whatever the other parts (formatted with the offer's
title)."""
PROFILE_TAGS = 5
"""How many strongest tags a profile lookup shows (``/users/{id}/profile``, the console's
Person page)."""
REASON_POPULAR = "Popular right now"
REASON_SIMILAR = "Similar to things you have shown interest in"

Because = Callable[[OfferRecord], str | None]
"""For one user: the title of the recent item an offer's co-occurrence part comes from
(``None``: none), see :func:`app.core.cooccurrence.table.because_you_chose`."""


def _unit_or_none(user_vec: npt.ArrayLike) -> npt.NDArray[np.float32] | None:
    arr = np.asarray(user_vec, dtype=np.float64)
    return unit(arr) if np.all(np.isfinite(arr)) else None


def tag_scores(
    user_unit: npt.NDArray[np.float32], tags: Sequence[str], snap: CatalogueSnapshot
) -> list[tuple[str, float]]:
    """Interest of a unit user vector in each of ``tags`` (known, normalised tags only),
    positive ones only, strongest first (ties by tag name)."""
    rows = [(t, snap.tag_index[t]) for t in dict.fromkeys(tags) if t in snap.tag_index]
    if not rows:
        return []
    proj = snap.tag_matrix[[r for _, r in rows]] @ user_unit
    scored = [(t, float(p)) for (t, _), p in zip(rows, proj, strict=True) if p > 0]
    return sorted(scored, key=lambda tp: (-tp[1], tp[0]))


def tags_by_interest(
    tags: Sequence[str], interest: npt.NDArray[np.float32], snap: CatalogueSnapshot
) -> list[str]:
    """``tags`` (known ones) with a positive interest, strongest first (ties by name).

    ``interest`` is ``snap.tag_matrix @ user_unit``: the user's cosine with every known tag,
    computed once per user. Same order as :func:`tag_scores`.
    """
    index = snap.tag_index
    scored = [(float(interest[index[t]]), t) for t in dict.fromkeys(tags) if t in index]
    return [t for p, t in sorted(scored, key=lambda pt: (-pt[0], pt[1])) if p > 0]


def strongest_tags(
    user_vec: npt.ArrayLike, catalogue: Catalogue, n: int = 3
) -> list[tuple[str, float]]:
    """The user's ``n`` (default 3) strongest tags among the catalogue's known tags, as
    ``(tag, cosine)`` pairs with a positive cosine, strongest first. Zero vector -> ``[]``."""
    snap = catalogue.snapshot()
    u = _unit_or_none(user_vec)
    if u is None or n <= 0 or not snap.tag_names:
        return []
    proj = snap.tag_matrix @ u
    k = min(n, len(snap.tag_names))
    top = np.argpartition(-proj, k - 1)[:k] if k < len(proj) else np.arange(len(proj))
    scored = [(snap.tag_names[i], float(proj[i])) for i in top if proj[i] > 0]
    return sorted(scored, key=lambda tp: (-tp[1], tp[0]))[:n]


def build_reason(
    parts: Mapping[str, float],
    offer: OfferRecord,
    matched_tags: Sequence[str],
    max_tags: int = 2,
    because: Because | None = None,
) -> str:
    """A reason naming the dominant (largest positive) score part.

    affinity -> "Matches your interest in <tags>" (the offer's tags the user likes most) or
    :data:`REASON_SIMILAR` without such tags; value -> "Great value: <title>"; popularity ->
    :data:`REASON_POPULAR`; priority -> "Featured: <title>"; exploration (the offer was lifted
    to give it a chance, :mod:`app.core.exploration`) -> "Something different: <title>";
    cooccurrence (people who chose one of the user's recent items chose this next,
    :mod:`app.core.cooccurrence.index`) -> "Because you chose <title of that item>", the title
    given by ``because`` (without it, or when it finds none, the next largest part speaks);
    nothing positive -> :data:`REASON_FALLBACK` with the title: never a generic string.
    A positive ``restock`` part speaks first, dominant or not: the offer is eligible at all
    only because the person is due to buy its item again (:data:`REASON_RESTOCK`).
    """
    title = offer.title.strip() or offer.offer_id
    if parts.get("restock", 0.0) > 0:
        return REASON_RESTOCK.format(title=title)
    positive = {k: v for k, v in parts.items() if v > 0}
    if not positive:
        return REASON_FALLBACK.format(title=title)
    dominant = max(sorted(positive), key=lambda k: positive[k])
    if dominant == "cooccurrence":
        source = because(offer) if because is not None else None
        if source:
            return f"Because you chose {source}"
        rest = {k: v for k, v in parts.items() if k != "cooccurrence"}
        return build_reason(rest, offer, matched_tags, max_tags)
    if dominant == "affinity":
        tags = list(matched_tags)[:max_tags]
        return f"Matches your interest in {', '.join(tags)}" if tags else REASON_SIMILAR
    if dominant == "value":
        return f"Great value: {title}"
    if dominant == "popularity":
        return REASON_POPULAR
    if dominant == "priority":
        return f"Featured: {title}"
    if dominant == "exploration":
        return f"Something different: {title}"
    return REASON_FALLBACK.format(title=title)


def cart_reason(
    offer: OfferRecord, cart_item_ids: Sequence[str], titles: Callable[[str], str | None]
) -> str | None:
    """:data:`REASON_CART` when ``offer`` is about one of the cart's items (the first such item
    in the cart's order names it), else ``None``. ``titles`` gives an item's title (or ``None``)."""
    about = set(offer.item_ids)
    for item_id in cart_item_ids:
        if item_id in about:
            title = (titles(item_id) or "").strip() or offer.title.strip() or offer.offer_id
            return REASON_CART.format(title=title)
    return None
