"""Production implementations of the console's ports (:mod:`app.console.sources`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agents.console.discovery import MetricsReader
from app.console.sources import LiftCounts, PolicyView, WorkerCounts, combine, worker_counts
from app.core.scoring import ScoringConfig
from app.policy.config import default_policy, load_policy
from app.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class SettingsPolicySource:
    """The policy file the workers load (``NBO_POLICY_PATH``, else the shipped default),
    read again on each view so the page shows the file as it is now, and the score weights
    of the settings (``NBO_W_*``)."""

    settings: Settings

    def policy_view(self) -> PolicyView:
        path = self.settings.policy_path
        policy = load_policy(path) if path else default_policy()
        weights = {
            name: float(getattr(self.settings, name)) for name in ScoringConfig.weight_names()
        }
        return PolicyView(policy, str(path) if path else "shipped default policy", weights)


def metrics_urls(settings: Settings) -> list[str]:
    """``NBO_CONSOLE_METRICS_URLS``, or the local worker's /metrics when it is empty."""
    if settings.console_metrics_urls:
        return list(settings.console_metrics_urls)
    return [f"http://{settings.web_host}:{settings.web_port}/metrics"]


@dataclass
class MetricsLiftSource:
    """The holdout counters of every worker's /metrics, summed (see
    :mod:`app.console.sources` for why this source)."""

    urls: Sequence[str]
    clock: Callable[[], float] = time.time
    _reader: MetricsReader[WorkerCounts] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._reader = MetricsReader(self.urls, lambda _, text: worker_counts(text))

    async def lift_counts(self) -> LiftCounts:
        answers = await self._reader.read()
        got = [a for _, a in answers if a is not None]
        read = tuple(u for u, a in answers if a is not None)
        failed = tuple(u for u, a in answers if a is None)
        if not got:
            return LiftCounts((), 0.0, read, failed)
        channels, days = combine(got, self.clock())
        return LiftCounts(channels, days, read, failed)

    async def close(self) -> None:
        await self._reader.close()
