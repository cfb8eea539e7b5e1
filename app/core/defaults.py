"""The default of every model tunable, once.

The core's configuration models (:mod:`app.core.scoring`, :mod:`app.core.profile`, ...) and the
settings (:mod:`app.settings`, which the worker's configuration is built from) both take their
defaults from here, so a default is changed in one place and cannot drift between them. Plain
constants: importing this module costs nothing.
"""

from __future__ import annotations

DAY_S = 86_400
DAY_MS = DAY_S * 1000

VECTOR_DIM = 64
"""Preference vector dimension D."""
PROFILE_HALF_LIFE_S = 7 * DAY_S
"""Half-life of an event's contribution to a profile, seconds of event time."""
RECENT_EVENT_IDS = 32
"""Event ids remembered per user to drop producer duplicates."""
RECENT_EVENT_IDS_RETENTION_S = 7 * DAY_S
"""How long (event time) a remembered event id is kept, seconds."""

TOP_K = 5
"""Offers per message."""
W_AFFINITY = 0.7
"""Weight of the cosine between user and offer vectors."""
W_VALUE = 0.2
"""Weight of the offer's value, normalised by the catalogue's largest."""
W_POPULARITY = 0.1
"""Weight of the popularity prior."""
W_PRIORITY = 0.05
"""Weight of the offer's priority, normalised by the catalogue's largest |priority|."""
W_COOCCURRENCE = 0.3
"""Weight of the co-occurrence part of the user's recent items (tuned on MovieLens,
``docs/learning.md``); it counts only while item neighbours are known."""
W_RESTOCK = 1.0
"""Weight of the restock part of a repeatable item the person is due to buy again."""
REASON_TAGS = 2
"""Tags named in an affinity reason."""

RECENT_ITEMS = 20
"""Newest distinct items per user that the co-occurrence part reads."""
RECENCY_DECAY = 0.8
"""Weight of each older recent item relative to the next newer one."""
COOCCURRENCE_EXPONENT = 0.7
"""Power the max-normalised co-occurrence part is raised to (below 1: diminishing returns;
tuned on MovieLens, ``docs/learning.md``)."""
NEIGHBOURS_MAX = 200
"""Neighbours kept per item."""

RESTOCK_DUE_FRACTION = 0.8
"""A repeatable purchased item is offered again from ``last purchase + fraction x interval``."""
RESTOCK_SMOOTHING = 0.5
"""Weight of the newest gap in a person's repurchase interval (exponentially weighted mean)."""
RESTOCK_PRIOR_S = 14 * DAY_S
"""Repurchase interval of a person who bought an item once, without the catalogue's."""
RESTOCK_MIN_GAP_S = 3_600
"""Purchases of one item closer than this are one shopping trip, seconds."""
RESTOCK_MAX_INTERVAL_S = 365 * DAY_S
"""Longest repurchase interval learned, seconds."""
RESTOCK_ITEMS_MAX = 50
"""Repeatable items whose cycle is kept per person."""

POPULARITY_HALF_LIFE_S = DAY_S
"""Half-life of the popularity prior, seconds of event time."""

EXPLORATION_WEIGHT = 0.1
"""Weight of the Thompson-sampling exploration part (0: off)."""
OFFER_STATS_HALF_LIFE_S = 7 * DAY_S
"""Half-life of offer feedback counts, seconds."""

ANN_MIN_OFFERS = 20_000
"""Catalogues of at least this many offers are ranked from approximate candidates."""

HOLDOUT_SHARE = 0.05
"""Share of users in the control group."""
HOLDOUT_SALT = "nbo-holdout"
"""Salt of the sticky holdout assignment."""

ERASURE_TTL_S = 35 * DAY_S
"""Lifetime of a user's erasure marker, seconds: at least the retention of every topic a
worker may read the user's records from again (30 days in ``deploy/``), with a margin."""
