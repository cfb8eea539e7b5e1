from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from app.core.enums import Channel
from app.policy.config import (
    ContactPolicy,
    PolicyError,
    default_policy,
    format_duration,
    load_policy,
    parse_duration_ms,
    parse_policy,
)
from tests.policy.builders import DAY, HOUR, WEEK

pytestmark = pytest.mark.unit

MINIMAL = 'version = "v-test"\n'


def test_shipped_default_policy_has_the_documented_values() -> None:
    p = default_policy()
    assert p.version == "default-2025.2"
    assert p.default_tz == "UTC"
    push = [(c.max, c.window_ms) for c in p.caps.channels[Channel.PUSH]]
    assert push == [(1, HOUR), (3, DAY)]
    assert [(c.max, c.window_ms) for c in p.caps.global_] == [(5, WEEK)]
    assert p.caps.global_channels == {Channel.EMAIL, Channel.PUSH, Channel.SMS}
    assert p.cooldown.after_dismissed_ms == 14 * DAY
    assert p.cooldown.impressions_without_click == 3
    assert p.cooldown.after_ignored_ms == 7 * DAY
    assert (p.quiet_hours.start, p.quiet_hours.end) == (time(21), time(8))
    assert p.quiet_hours.transactional_bypass is True
    assert (p.channel_choice.prior_alpha, p.channel_choice.prior_beta) == (1.0, 1.0)
    assert p.consent_defaults.allows(Channel.WEB) and not p.consent_defaults.allows(Channel.SMS)
    assert p.horizon_ms == WEEK
    assert p.min_match == {Channel.PUSH: 10.0, Channel.SMS: 10.0, Channel.EMAIL: 5.0,
                           Channel.IN_APP: 2.0, Channel.WEB: 2.0}  # fmt: skip


def test_load_policy_reads_a_file_and_fills_defaults(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        MINIMAL + '[caps]\nglobal = [{ max = 2, window = "36h" }]\n'
        '[quiet_hours]\nstart = 22:30:00\nend = "06:15"\n',
        encoding="utf-8",
    )
    p = load_policy(path)
    assert p.version == "v-test"
    assert [(c.max, c.window_ms) for c in p.caps.global_] == [(2, 36 * HOUR)]
    assert (p.quiet_hours.start, p.quiet_hours.end) == (time(22, 30), time(6, 15))
    assert p.cooldown == default_policy().cooldown
    assert p.horizon_ms == 36 * HOUR


def test_policy_dump_round_trips_through_validation() -> None:
    p = default_policy()
    assert ContactPolicy.model_validate(p.model_dump(by_alias=True, mode="json")) == p


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "version"),
        (MINIMAL + "[cooldown]\nafter_dismised = '1d'\n", "after_dismised"),
        (MINIMAL + "[cooldown]\nafter_dismissed = 14\n", "duration"),
        (MINIMAL + "[cooldown]\nafter_dismissed = '2 weeks'\n", "invalid duration"),
        (MINIMAL + 'default_tz = "Mars/Olympus"\n', "unknown time zone"),
        (MINIMAL + "[caps.channels]\nfax = []\n", "fax"),
        (MINIMAL + '[caps]\nglobal = [{ max = 1, window = "0s" }]\n', "greater than 0"),
        (MINIMAL + "[channel_choice]\nprior_alpha = 0\n", "greater than 0"),
        (MINIMAL + '[caps]\nglobal = [{ max = 40, window = "1d" }]\n', "max_contacts"),
        ("version = ", "invalid TOML"),
    ],
)
def test_invalid_policies_are_rejected_with_the_reason(text: str, fragment: str) -> None:
    with pytest.raises(PolicyError, match=fragment):
        parse_policy(text)


def test_unreadable_policy_file_raises_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("text", "ms"),
    [("250ms", 250), ("90s", 90_000), ("30m", 1_800_000), ("1h", HOUR), ("14d", 14 * DAY)],
)
def test_durations_parse_to_milliseconds_and_format_back(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms
    assert parse_duration_ms(format_duration(ms)) == ms


@pytest.mark.parametrize("bad", ["", "1", "h", "1.5h", "-1h", "1y", 3600, None])
def test_malformed_durations_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration_ms(bad)


def test_channel_choice_default_order_is_completed_with_missing_channels() -> None:
    p = parse_policy(MINIMAL + '[channel_choice]\ndefault_order = ["sms", "sms", "email"]\n')
    assert p.channel_choice.default_order[:2] == (Channel.SMS, Channel.EMAIL)
    assert set(p.channel_choice.default_order) == set(Channel)
    assert len(p.channel_choice.default_order) == len(Channel)
