"""The contact policy file (TOML, versioned) as a validated, frozen :class:`ContactPolicy`.

Durations are strings ``<n><unit>`` with unit ``ms``, ``s``, ``m``, ``h``, ``d`` or ``w``
(``"1h"``, ``"14d"``); times of day are ``"HH:MM"`` (or TOML local times). Unknown keys are
errors (a typo in a policy must not silently relax it). :func:`load_policy` reads a file,
:func:`default_policy` the shipped ``default_policy.toml``.
"""

from __future__ import annotations

import re
import tomllib
from datetime import time
from functools import cache, cached_property
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Annotated, Self
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from app.core.decoding import summarise_validation_error
from app.core.enums import Channel
from app.policy.consent import ConsentDefaults
from app.policy.state import StateLimits

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"(\d{1,9})(ms|s|m|h|d|w)")
DEFAULT_POLICY_RESOURCE = "default_policy.toml"


class PolicyError(ValueError):
    """A policy file that cannot be read, parsed or validated."""


def parse_duration_ms(value: object) -> int:
    """``"90s"``, ``"1h"``, ``"14d"`` ... -> milliseconds; anything else raises ``ValueError``."""
    if not isinstance(value, str):
        raise ValueError('a duration is a string like "30m", "1h" or "7d"')
    m = _DURATION.fullmatch(value.strip())
    if m is None:
        raise ValueError(f"invalid duration {value!r} (expected <n>ms|s|m|h|d|w)")
    return int(m.group(1)) * _UNITS_MS[m.group(2)]


def format_duration(ms: int) -> str:
    """The inverse of :func:`parse_duration_ms`, in the largest exact unit (``"7d"``)."""
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS_MS[unit]
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


DurationMs = Annotated[
    int,
    BeforeValidator(parse_duration_ms),
    PlainSerializer(format_duration, return_type=str),
]
"""A duration string on input, milliseconds in Python, the string again when dumped."""


def _channel_list(channels: frozenset[Channel]) -> list[str]:
    return [c.value for c in Channel if c in channels]


ChannelSet = Annotated[frozenset[Channel], PlainSerializer(_channel_list, return_type=list[str])]
"""A set of channels (dumped as a list in :class:`Channel` order, for a stable dump)."""


def _valid_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


class Cap(BaseModel):
    """At most ``max`` messages in any rolling ``window``.

    A message sent at ``t`` counts while ``now - t < window``: one sent exactly one window
    ago no longer counts.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max: int = Field(strict=True, ge=0)
    window_ms: DurationMs = Field(alias="window", gt=0)


class Caps(BaseModel):
    """Per-channel caps and caps across ``global_channels`` (all must hold)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    channels: dict[Channel, tuple[Cap, ...]] = Field(default_factory=dict)
    global_: tuple[Cap, ...] = Field(default=(), alias="global")
    global_channels: ChannelSet = frozenset({Channel.EMAIL, Channel.PUSH, Channel.SMS})
    """Channels counted by and subject to the global caps (default: email, push and sms, the
    interruptive ones; in_app and web are shown while the user is there)."""

    def all_caps(self) -> tuple[Cap, ...]:
        """Every cap of the table."""
        return (*self.global_, *(c for caps in self.channels.values() for c in caps))

    @cached_property
    def closed(self) -> frozenset[Channel]:
        """The channels capped even without any contact (a cap of ``max`` 0): what
        :func:`~app.policy.caps.capped_channels` returns for a user never contacted."""
        shut = frozenset(c for c, caps in self.channels.items() if any(x.max == 0 for x in caps))
        if any(x.max == 0 for x in self.global_):
            shut |= self.global_channels
        return shut


class Cooldown(BaseModel):
    """Per-offer suppression after feedback (a ``"0s"`` duration or
    ``impressions_without_click = 0`` disables a rule)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    after_dismissed_ms: DurationMs = Field(default=14 * 86_400_000, alias="after_dismissed", ge=0)
    """Suppressed for this long after ``offer_dismissed`` (event time)."""
    impressions_without_click: int = Field(default=3, strict=True, ge=0)
    """After this many impressions without a click or acceptance (0 = never) ..."""
    after_ignored_ms: DurationMs = Field(default=7 * 86_400_000, alias="after_ignored", ge=0)
    """... suppressed for this long after the last impression."""


class QuietHours(BaseModel):
    """No message on ``channels`` between ``start`` (inclusive) and ``end`` (exclusive), user's
    local time; ``start > end`` crosses midnight; ``start == end`` means no quiet hours."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time = time(21, 0)
    end: time = time(8, 0)
    channels: ChannelSet = frozenset({Channel.EMAIL, Channel.PUSH, Channel.SMS})
    transactional_bypass: StrictBool = True
    """Whether transactional offers may be sent during quiet hours (default yes)."""

    @field_validator("start", "end")
    @classmethod
    def _naive(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("a time of day without offset (the user's local time)")
        return value


class ChannelChoice(BaseModel):
    """Beta(alpha, beta) prior of each channel's engagement rate; tie order of channels."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prior_alpha: float = Field(default=1.0, strict=True, gt=0, allow_inf_nan=False)
    prior_beta: float = Field(default=1.0, strict=True, gt=0, allow_inf_nan=False)
    default_order: tuple[Channel, ...] = (
        Channel.IN_APP,
        Channel.WEB,
        Channel.PUSH,
        Channel.EMAIL,
        Channel.SMS,
    )
    """Tie order after the user's stated preference (missing channels go last)."""

    @field_validator("default_order")
    @classmethod
    def _complete(cls, value: tuple[Channel, ...]) -> tuple[Channel, ...]:
        return tuple(dict.fromkeys([*value, *Channel]))


MatchPercent = Annotated[float, Field(strict=True, ge=0.0, le=100.0, allow_inf_nan=False)]
"""A match percentage threshold, 0-100 (a JSON/TOML number)."""

DEFAULT_MIN_MATCH: dict[Channel, float] = {
    Channel.PUSH: 10.0,
    Channel.SMS: 10.0,
    Channel.EMAIL: 5.0,
    Channel.IN_APP: 2.0,
    Channel.WEB: 2.0,
}
"""The least calibrated match (percent) an offer needs to be sent on each channel: push and
SMS interrupt people, so they need more (see ``default_policy.toml``)."""


class ContactPolicy(BaseModel):
    """The whole contact policy (see ``default_policy.toml`` for the shipped values)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64)]
    default_tz: Annotated[str, BeforeValidator(_valid_zone)] = "UTC"
    """Time zone when neither the event nor the consent names a valid one."""
    caps: Caps = Caps()
    cooldown: Cooldown = Cooldown()
    quiet_hours: QuietHours = QuietHours()
    channel_choice: ChannelChoice = ChannelChoice()
    consent_defaults: ConsentDefaults = ConsentDefaults()
    state: StateLimits = StateLimits()
    min_match: dict[Channel, MatchPercent] = Field(default_factory=lambda: dict(DEFAULT_MIN_MATCH))
    """Per channel, the least calibrated match (percent, 0-100) an offer needs to be sent on
    it (check ``below_match`` of :mod:`app.policy.decision`); a channel not named: 0 (no
    threshold). Applies only to offers that carry a match (a calibration is configured)."""

    @model_validator(mode="after")
    def _history_covers_caps(self) -> Self:
        largest = max((c.max for c in self.caps.all_caps()), default=0)
        if largest > self.state.max_contacts_per_channel:
            raise ValueError(
                f"state.max_contacts_per_channel ({self.state.max_contacts_per_channel}) "
                f"must be >= the largest cap max ({largest})"
            )
        return self

    @cached_property
    def match_thresholds(self) -> tuple[tuple[Channel, float], ...]:
        """The non-zero entries of :attr:`min_match` (empty: no channel has a threshold)."""
        return tuple((c, t) for c, t in self.min_match.items() if t > 0)

    @cached_property
    def horizon_ms(self) -> int:
        """How long contacts are kept: the longest cap window (0 without caps)."""
        return max((c.window_ms for c in self.caps.all_caps()), default=0)


def parse_policy(text: str, source: str = "<policy>") -> ContactPolicy:
    """Parse and validate policy TOML text; raises :class:`PolicyError` naming ``source``."""
    try:
        data = tomllib.loads(text)
        return ContactPolicy.model_validate(data)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: invalid TOML: {exc}") from None
    except ValidationError as exc:
        raise PolicyError(f"{source}: {summarise_validation_error(exc)}") from None


def load_policy(path: str | PathLike[str]) -> ContactPolicy:
    """Read, parse and validate the policy file at ``path`` (the only I/O of the package)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read: {exc}") from None
    return parse_policy(text, str(path))


@cache
def default_policy() -> ContactPolicy:
    """The shipped ``app/policy/default_policy.toml`` (parsed once)."""
    text = resources.files("app.policy").joinpath(DEFAULT_POLICY_RESOURCE).read_text("utf-8")
    return parse_policy(text, DEFAULT_POLICY_RESOURCE)
