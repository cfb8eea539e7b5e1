"""The pure decision policy: contact policy, consent and channel choice.

Plain Python + numpy + pydantic; the one I/O is :func:`load_policy` reading a TOML file (and
:func:`default_policy` reading the shipped one). The worker loads a user's
:class:`UserPolicyState` and :class:`ConsentRecord`, calls :func:`decide`, publishes, then
stores :func:`record_decision` / :func:`record_feedback` results atomically.
"""

from app.policy.caps import capped_channels, channel_capped, count_in_window
from app.policy.cart import cancelled_by, on_add_to_cart, starts_timer
from app.policy.config import (
    Cap,
    Caps,
    ChannelChoice,
    ContactPolicy,
    Cooldown,
    PolicyError,
    QuietHours,
    default_policy,
    load_policy,
    parse_duration_ms,
    parse_policy,
)
from app.policy.consent import (
    ConsentDefaults,
    ConsentRecord,
    channel_consented,
    consented_channels,
    decode_consent,
    preference_order,
    profiling_allowed,
    supersedes,
)
from app.policy.cooldown import cooldown_until, in_cooldown
from app.policy.decision import (
    NO_CANDIDATES,
    Decision,
    Rejection,
    decide,
    primary_reason,
    record_decision,
    usable_channels,
)
from app.policy.engagement import pick_channel, posterior_mean
from app.policy.quiet_hours import (
    is_quiet_time,
    local_ms_of_day,
    quiet_channels,
    resolve_zone,
    tz_hint,
)
from app.policy.state import (
    ChannelEngagement,
    OfferFeedback,
    StateLimits,
    UserPolicyState,
    prune,
    record_contact,
    record_feedback,
)

__all__ = [
    "NO_CANDIDATES",
    "Cap",
    "Caps",
    "ChannelChoice",
    "ChannelEngagement",
    "ConsentDefaults",
    "ConsentRecord",
    "ContactPolicy",
    "Cooldown",
    "Decision",
    "OfferFeedback",
    "PolicyError",
    "QuietHours",
    "Rejection",
    "StateLimits",
    "UserPolicyState",
    "cancelled_by",
    "capped_channels",
    "channel_capped",
    "channel_consented",
    "consented_channels",
    "cooldown_until",
    "count_in_window",
    "decide",
    "decode_consent",
    "default_policy",
    "in_cooldown",
    "is_quiet_time",
    "load_policy",
    "local_ms_of_day",
    "on_add_to_cart",
    "parse_duration_ms",
    "parse_policy",
    "pick_channel",
    "posterior_mean",
    "preference_order",
    "primary_reason",
    "profiling_allowed",
    "prune",
    "quiet_channels",
    "record_contact",
    "record_decision",
    "record_feedback",
    "resolve_zone",
    "starts_timer",
    "supersedes",
    "tz_hint",
    "usable_channels",
]
