"""``nbo simulate``: what a candidate policy and/or candidate score weights would have done on
recent traffic, next to the configuration in force (:mod:`app.simulation`, docs/simulation.md).

Inputs: events from ``--events`` (UserEvent JSON lines) and/or the events topic
(``--from-topic``, the last ``--hours`` of event time); the catalogue from ``--items`` /
``--offers`` (Item/Offer JSON lines, as for ``nbo catalog load``) or else the catalogue topics;
consent from ``--consent`` (ConsentRecord JSON lines) and, with ``--from-topic``, the consent
topic. Topics are read with a plain consumer that commits nothing
(:func:`~app.commands.topic_source.read_topics_to_end`); nothing is written anywhere but the
``--json`` and ``--plot`` files.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from app.commands.files import read_catalogue
from app.core.catalog_records import Item, Offer, decode_item, decode_offer
from app.core.errors import EventRejected
from app.core.scoring import ScoringConfig
from app.pipeline.config import PipelineConfig, pipeline_config, with_calibration
from app.policy.config import load_policy
from app.policy.consent import ConsentRecord, decode_consent
from app.settings import Settings
from app.simulation.replay import simulate
from app.simulation.report import SimulationReport

HOUR_MS = 3_600_000


class SimulateError(ValueError):
    """Options or inputs that cannot be simulated (the message is for the command line)."""


@dataclass(frozen=True)
class SimulateOptions:
    """What ``nbo simulate`` was asked (defaults as on the command line)."""

    events: Path | None = None
    from_topic: bool = False
    hours: float | None = None
    items: Path | None = None
    offers: Path | None = None
    consent: Path | None = None
    policy: Path | None = None
    weights: tuple[str, ...] = ()
    users: int | None = None
    seed: int = 0
    warmup_hours: float | None = None
    batch_size: int | None = None
    batch_span_ms: int = 60_000
    examples: int = 5
    max_events: int | None = None
    """With ``from_topic``: keep at most this many events of the topic, the newest by event
    time (the console bounds its samples with it); ``None``: all of the last ``hours``."""
    json_path: Path | None = None
    plot: Path | None = None
    progress: bool = True


def parse_weight(text: str) -> tuple[str, float]:
    """``w_value=0.3`` -> (``w_value``, 0.3), a known score weight and a finite number."""
    name, sep, value = text.partition("=")
    name = name.strip()
    names = ScoringConfig.weight_names()
    if not sep or name not in names:
        raise SimulateError(f"--weight {text!r}: expected NAME=NUMBER, NAME one of {names}")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise SimulateError(f"--weight {text!r}: {value.strip()!r} is not a finite number")
    return name, number


def candidate_config(
    current: PipelineConfig, policy: Path | None, weights: Sequence[str]
) -> PipelineConfig:
    """``current`` with the policy file at ``policy`` (validated by the workers' loader) and
    the score weights ``weights`` (``NAME=NUMBER``) in place; a calibration in force must fit
    the candidate's weights, as a worker would require (:func:`with_calibration`)."""
    if policy is None and not weights:
        raise SimulateError("nothing to compare: give --policy FILE and/or --weight NAME=NUMBER")
    candidate = current
    if policy is not None:
        candidate = dataclasses.replace(candidate, policy=load_policy(policy))
    if weights:
        update = dict(parse_weight(w) for w in weights)
        try:
            scoring = ScoringConfig.model_validate({**current.scoring.model_dump(), **update})
        except ValidationError as exc:
            raise SimulateError(f"--weight: {exc.errors()[0]['msg']}") from None
        candidate = dataclasses.replace(candidate, scoring=scoring)
    if current.calibration is not None and candidate.scoring != current.scoring:
        candidate = with_calibration(
            dataclasses.replace(candidate, calibration=None), current.calibration
        )
    return candidate


@dataclass
class Inputs:
    """What the simulation replays: raw event values, the catalogue and consent records."""

    events: list[bytes] = field(default_factory=list)
    items: dict[str, Item] = field(default_factory=dict)
    offers: dict[str, Offer] = field(default_factory=dict)
    consent: dict[str, ConsentRecord] = field(default_factory=dict)
    older: int = 0
    beyond_max: int = 0
    """Events of the last ``hours`` left out because ``max_events`` were newer."""


@dataclass
class NewestEvents:
    """At most ``bound`` raw events, the newest by event time (of equal times, the later
    read), in a heap: memory stays bounded however long the topic is."""

    bound: int
    dropped: int = 0
    _heap: list[tuple[int, int, bytes]] = field(default_factory=list)
    _read: int = 0

    def add(self, ts_ms: int, value: bytes) -> None:
        """Offer one event (``ts_ms``: its event time)."""
        self._read += 1
        entry = (ts_ms, self._read, value)
        if len(self._heap) < self.bound:
            heapq.heappush(self._heap, entry)
        else:
            heapq.heappushpop(self._heap, entry)
            self.dropped += 1

    def values(self) -> list[bytes]:
        """The kept events, oldest first."""
        return [value for _, _, value in sorted(self._heap)]


def _lines(path: Path) -> list[bytes]:
    try:
        with path.open("rb") as fh:
            return [line.strip() for line in fh if line.strip()]
    except OSError as exc:
        raise SimulateError(f"{path}: cannot read: {exc}") from None


def _read_catalogue_file(path: Path, into: Inputs) -> None:
    try:
        found = read_catalogue(path)
    except OSError as exc:
        raise SimulateError(f"{path}: cannot read: {exc}") from None
    if found.bad:
        raise SimulateError(f"{found.bad[0].render(path)} ({len(found.bad)} bad lines)")
    for key, value in found.items:
        if value is None:
            into.items.pop((key or b"").decode(), None)
        else:
            into.items[(key or b"").decode()] = decode_item(value)
    for key, value in found.offers:
        if value is None:
            into.offers.pop((key or b"").decode(), None)
        else:
            into.offers[(key or b"").decode()] = decode_offer(value)


def _read_consent_file(path: Path, into: Inputs) -> None:
    for number, raw in enumerate(_lines(path), start=1):
        try:
            record = decode_consent(raw)
        except EventRejected as exc:
            raise SimulateError(f"{path}: consent record {number}: {exc.message}") from None
        into.consent[record.user_id] = record


def _read_topics(settings: Settings, options: SimulateOptions, into: Inputs) -> None:
    from app.commands.topic_source import read_topics_to_end
    from app.connections import kafka_client_kwargs

    catalogue_from_topics = options.items is None and options.offers is None
    events_topic = settings.topic_user_events if options.from_topic else None
    cutoff = (
        int(time.time() * 1000 - options.hours * HOUR_MS) if options.hours is not None else None
    )
    topics = [t for t in (events_topic,) if t]
    if options.from_topic:
        topics.append(settings.topic_user_consent)
    if catalogue_from_topics:
        topics += [settings.topic_item_catalog, settings.topic_offer_catalog]

    bound = options.max_events
    newest = NewestEvents(bound) if bound is not None else None

    def keep_event(value: bytes) -> None:
        ts = _ts_ms(value) if cutoff is not None or newest is not None else 0
        if cutoff is not None and ts < cutoff:
            into.older += 1
        elif newest is None:
            into.events.append(value)
        else:
            newest.add(ts, value)

    def on_record(topic: str, key: bytes | None, value: bytes | None) -> None:
        name = key.decode("utf-8", "replace") if key else ""
        try:
            if topic == events_topic:
                if value is not None:
                    keep_event(value)
            elif topic == settings.topic_user_consent:
                if value is None:
                    into.consent.pop(name, None)
                else:
                    record = decode_consent(value)
                    into.consent[record.user_id] = record
            elif topic == settings.topic_item_catalog:
                if value is None:
                    into.items.pop(name, None)
                else:
                    item = decode_item(value)
                    into.items[item.item_id] = item
            elif value is None:
                into.offers.pop(name, None)
            else:
                offer = decode_offer(value)
                into.offers[offer.offer_id] = offer
        except EventRejected:
            return  # as the worker: an undecodable record changes nothing

    # the events topic from the last hours on (by Kafka timestamp, less twice the clock skew
    # an event may have: its event time is what counts, filtered above)
    since = (
        {events_topic: cutoff - 2 * int(settings.max_clock_skew_s * 1000)}
        if events_topic and cutoff is not None
        else None
    )
    asyncio.run(
        read_topics_to_end(
            kafka_client_kwargs(settings),
            topics,
            on_record,
            progress=options.progress,
            description="reading topics",
            since_ms=since,
        )
    )
    if newest is not None:
        into.events.extend(newest.values())
        into.beyond_max += newest.dropped


def _ts_ms(value: bytes) -> int:
    """The event time of a raw event, or 0 when it does not decode (the replay skips it)."""
    from app.core.events import decode_event

    try:
        return decode_event(value).ts_ms
    except EventRejected:
        return 0


def load_inputs(settings: Settings, options: SimulateOptions) -> Inputs:
    """Read the events, catalogue and consent named by ``options`` (module doc)."""
    if options.events is None and not options.from_topic:
        raise SimulateError("no events: give --events FILE and/or --from-topic --hours N")
    if options.hours is not None and not options.from_topic:
        raise SimulateError("--hours needs --from-topic")
    if options.from_topic and options.hours is None:
        raise SimulateError("--from-topic needs --hours N (how much recent traffic to replay)")
    if options.max_events is not None and (options.max_events < 1 or not options.from_topic):
        raise SimulateError("--max-events needs --from-topic and at least 1")
    got = Inputs()
    for path in (options.items, options.offers):
        if path is not None:
            _read_catalogue_file(path, got)
    if options.consent is not None:
        _read_consent_file(options.consent, got)
    if options.events is not None:
        got.events.extend(_lines(options.events))
    if options.from_topic or (options.items is None and options.offers is None):
        _read_topics(settings, options, got)
    if not got.offers:
        raise SimulateError("the catalogue has no offers: give --offers FILE or load them")
    return got


def run_simulate(
    settings: Settings, options: SimulateOptions, candidate: PipelineConfig | None = None
) -> SimulationReport:
    """Build both configurations, read the inputs, simulate, write ``--json``/``--plot``.
    ``candidate``: the candidate configuration already built (the console's form), instead
    of the one of ``options.policy`` and ``options.weights``."""
    current = pipeline_config(settings)
    if candidate is None:
        candidate = candidate_config(current, options.policy, options.weights)
    inputs = load_inputs(settings, options)
    report = simulate(
        inputs.events,
        list(inputs.items.values()),
        list(inputs.offers.values()),
        current,
        candidate,
        users=options.users,
        seed=options.seed,
        warmup_ms=None if options.warmup_hours is None else int(options.warmup_hours * HOUR_MS),
        batch_size=options.batch_size or settings.batch_size,
        batch_span_ms=options.batch_span_ms,
        consent=list(inputs.consent.values()),
        examples=options.examples,
        progress=options.progress,
        labels=(current.policy.version, candidate.policy.version)
        if candidate.policy.version != current.policy.version
        else ("current", "candidate"),
    )
    if inputs.older:
        report.notes.append(f"{inputs.older} events older than --hours left out")
    if inputs.beyond_max:
        report.notes.append(
            f"{inputs.beyond_max} older events of the last hours left out (at most "
            f"{options.max_events} are replayed, --max-events)"
        )
    if options.json_path is not None:
        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        options.json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if options.plot is not None:
        from app.simulation.plot import plot_simulation

        plot_simulation(report, options.plot)
    return report
