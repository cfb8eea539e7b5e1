"""The Overview page's arithmetic: rates of the workers' counters over the last minutes and
hours (from :class:`app.console.history.History`), consumer lag per partition, the dead-letter
topic's count and latest reasons, and which workers answered.

Figures and their sources (every counter summed over the workers that answered):

* events per second: ``nbo_events_received_total`` (consumed), ``nbo_events_applied_total``
  (applied to a profile), ``nbo_events_dead_lettered_total{reason}`` (copied to the dead-letter
  topic);
* offers sent per channel: ``nbo_offers_sent_by_group_total{group,channel}`` summed over the
  holdout groups;
* decisions by outcome: ``nbo_decisions_total{outcome}`` (``sent``, ``suppressed``), and the
  suppressed ones by reason: ``nbo_decisions_suppressed_total{reason}``;
* consumer lag: per partition of the events topic, the log end offset less the worker group's
  committed offset (the log start offset when the group has committed none);
* dead letters: records on the dead-letter topic (end less start offsets, over its
  partitions) and the newest few, read back from its tail (``nbo.error.class`` and
  ``nbo.error.message`` headers).

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.console.history import History, Key, Scrape, Window, key, label_values, parse_counters
from app.core.dead_letters import (
    HEADER_ERROR_CLASS,
    HEADER_ERROR_MESSAGE,
    HEADER_FAILED_AT,
    HEADER_ORIGINAL_OFFSET,
    HEADER_ORIGINAL_PARTITION,
    HEADER_ORIGINAL_TOPIC,
)

RECEIVED = "nbo_events_received_total"
APPLIED = "nbo_events_applied_total"
DEAD_LETTERED = "nbo_events_dead_lettered_total"
DECISIONS = "nbo_decisions_total"
SUPPRESSED = "nbo_decisions_suppressed_total"
SENT_BY_GROUP = "nbo_offers_sent_by_group_total"
SENT_BY_OFFER = "nbo_offers_sent_by_offer_total"
FEEDBACK_BY_GROUP = "nbo_offer_feedback_by_group_total"
COUNTERS = (
    RECEIVED,
    APPLIED,
    DEAD_LETTERED,
    DECISIONS,
    SUPPRESSED,
    SENT_BY_GROUP,
    SENT_BY_OFFER,
    FEEDBACK_BY_GROUP,
)
"""The counters the console keeps a history of."""
LAST_BATCH = "nbo_last_batch_done_seconds"
FIRST_BATCH = "nbo_first_batch_started_seconds"
WINDOWS = (("last 5 minutes", 300.0), ("last hour", 3600.0))
"""The windows of the Overview page: label, seconds."""
MESSAGE_CHARS = 200
"""A dead letter's ``nbo.error.message`` is cut to this many characters on the page."""


@dataclass(frozen=True)
class Figure:
    """One row of a table of rates: a label, and what it did in each window."""

    label: str
    windows: tuple[Window, ...]


@dataclass(frozen=True)
class WorkerStatus:
    """A worker's ``/metrics`` endpoint, whether it answered the latest scrape, and its
    batch clocks (Unix seconds, 0: none yet)."""

    url: str
    alive: bool
    first_batch_s: float = 0.0
    last_batch_s: float = 0.0


@dataclass(frozen=True)
class PartitionLag:
    """One partition: end offset, committed offset (``None``: none yet), lag in records."""

    partition: int
    end: int
    committed: int | None
    lag: int


@dataclass(frozen=True)
class DeadLetter:
    """One record of the dead-letter topic as the page shows it."""

    partition: int
    offset: int
    error_class: str
    message: str
    original: str
    """``topic/partition@offset`` of the rejected record (as far as the headers say)."""
    failed_at: str


@dataclass(frozen=True)
class DeadLetters:
    """The dead-letter topic: records it holds, the newest few (newest first)."""

    total: int
    latest: tuple[DeadLetter, ...]


@dataclass(frozen=True)
class KafkaView:
    """What the broker says: lag per partition of the events topic, the dead letters; and
    the error when it could not be asked (``None``: fine)."""

    lag: tuple[PartitionLag, ...] = ()
    dead_letters: DeadLetters = DeadLetters(0, ())
    error: str | None = None

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.lag)


@dataclass(frozen=True)
class Overview:
    """Everything the Overview page shows."""

    windows: tuple[tuple[str, float], ...]
    """Each window's label and the seconds the history covers of it."""
    events: tuple[Figure, ...]
    sent_by_channel: tuple[Figure, ...]
    decisions: tuple[Figure, ...]
    suppressed: tuple[Figure, ...]
    dead_by_reason: tuple[Figure, ...]
    workers: tuple[WorkerStatus, ...]
    kafka: KafkaView


def lag_rows(
    ends: Mapping[int, int], committed: Mapping[int, int], starts: Mapping[int, int]
) -> tuple[PartitionLag, ...]:
    """Lag per partition of ``ends``: end less the committed offset (less the start offset
    when nothing is committed, or when the commit fell behind the retained log); never < 0."""
    rows = []
    for partition in sorted(ends):
        end = ends[partition]
        start = starts.get(partition, 0)
        done = committed.get(partition)
        read_up_to = start if done is None else max(done, start)
        rows.append(PartitionLag(partition, end, done, max(0, end - read_up_to)))
    return tuple(rows)


def header_text(headers: Sequence[tuple[str, bytes]], name: str, default: str = "?") -> str:
    """The value of header ``name`` as text (``default`` when absent)."""
    for k, v in headers:
        if k == name:
            return v.decode("utf-8", errors="replace")
    return default


def dead_letter(partition: int, offset: int, headers: Sequence[tuple[str, bytes]]) -> DeadLetter:
    """A dead-letter record as the page shows it, from its headers (docs/contracts.md)."""
    message = header_text(headers, HEADER_ERROR_MESSAGE, "")
    if len(message) > MESSAGE_CHARS:
        message = message[: MESSAGE_CHARS - 1] + "…"
    topic = header_text(headers, HEADER_ORIGINAL_TOPIC)
    at = header_text(headers, HEADER_ORIGINAL_PARTITION)
    original = f"{topic}/{at}@{header_text(headers, HEADER_ORIGINAL_OFFSET)}"
    return DeadLetter(
        partition,
        offset,
        header_text(headers, HEADER_ERROR_CLASS),
        message,
        original,
        header_text(headers, HEADER_FAILED_AT, ""),
    )


def _figure(history: History, label: str, keys: Sequence[Key], spans: Sequence[float]) -> Figure:
    return Figure(label, tuple(history.windows(keys, s) for s in spans))


def _by_label(
    history: History, name: str, label: str, spans: Sequence[float], order: Sequence[str] = ()
) -> tuple[Figure, ...]:
    groups = label_values(history.series(), name, label)
    ranked = [v for v in order if v in groups] + sorted(v for v in groups if v not in order)
    return tuple(_figure(history, value, groups[value], spans) for value in ranked)


def overview(
    history: History,
    workers: Sequence[WorkerStatus],
    kafka: KafkaView,
    windows: Sequence[tuple[str, float]] = WINDOWS,
) -> Overview:
    """The Overview page from the sampled history, the workers' status and the broker's
    answers."""
    spans = [seconds for _, seconds in windows]
    events = tuple(
        _figure(history, label, keys, spans)
        for label, keys in (
            ("received", [k for k in history.series() if k[0] == RECEIVED]),
            ("applied", [k for k in history.series() if k[0] == APPLIED]),
            ("dead-lettered", [k for k in history.series() if k[0] == DEAD_LETTERED]),
        )
    )
    return Overview(
        tuple((label, history.span(seconds)) for label, seconds in windows),
        events,
        _by_label(history, SENT_BY_GROUP, "channel", spans),
        _by_label(history, DECISIONS, "outcome", spans, ("sent", "suppressed")),
        _by_label(history, SUPPRESSED, "reason", spans),
        _by_label(history, DEAD_LETTERED, "reason", spans),
        tuple(workers),
        kafka,
    )


def read_worker(url: str, text: str) -> tuple[Scrape, WorkerStatus]:
    """One worker's ``/metrics`` text: its counters of :data:`COUNTERS` and its status
    (``ValueError`` if the text does not parse)."""
    values = parse_counters(text, (*COUNTERS, LAST_BATCH, FIRST_BATCH))
    last = values.pop(key(LAST_BATCH), 0.0)
    first = values.pop(key(FIRST_BATCH), 0.0)
    return Scrape(url, values), WorkerStatus(url, True, first, last)
