"""The console's Simulate page: the form (bounded, validated with the workers' loaders), the
candidate configuration it names, the port that runs ``nbo simulate``'s replay, and the
report as side-by-side tables.

* :func:`parse_form`: the posted form -> a :class:`SimulationRequest` or the errors to show
  (never an exception): a candidate policy (TOML text, at most :data:`MAX_POLICY_CHARS`,
  validated by :func:`app.policy.config.parse_policy`, the loader the workers use) and/or
  candidate score weights (the ``NBO_W_*`` weights, finite numbers), the hours of
  ``user-events`` to replay (at most ``max_hours``), the events kept (at most
  ``max_events``, the newest) and the seed.
* :func:`candidate_of`: the configuration in force with the candidate's policy and weights in
  place (:func:`app.commands.simulate.candidate_config`, as ``nbo simulate`` builds it).
* :class:`SimulationSource`: runs one simulation (CPU-heavy and blocking: the web layer calls
  it in an executor). Production: ``agents.console.simulate.TopicSimulationSource`` (the
  simulator's topic source); twin: :class:`MemorySimulationSource`.
* :func:`report_rows`: the report's figures, current | candidate | difference.

Pure: no I/O here but the twin's call of :func:`app.simulation.replay.simulate`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from app.commands.simulate import SimulateError, candidate_config
from app.core.calibration import CalibrationError
from app.core.catalog_records import Item, Offer
from app.core.scoring import ScoringConfig
from app.pipeline.config import PipelineConfig
from app.policy.config import ContactPolicy, PolicyError, parse_policy
from app.policy.consent import ConsentRecord
from app.simulation.replay import simulate
from app.simulation.report import SimulationReport

MAX_POLICY_CHARS = 65_536
"""The longest candidate policy the form accepts (the shipped policy is about 3 KiB)."""
MAX_SEED = 2**31 - 1
MAX_FIELD_CHARS = 32
"""The longest number field (hours, events, seed, a weight)."""


@dataclass(frozen=True)
class SimulationRequest:
    """A validated form: what to compare and on which sample."""

    hours: float
    max_events: int
    seed: int
    policy: ContactPolicy | None = None
    weights: Mapping[str, float] = field(default_factory=dict)
    """Only the weights that differ from those in force."""


@dataclass(frozen=True)
class FormResult:
    """The form's values as typed (to show it again) and either a request or errors."""

    values: Mapping[str, str]
    request: SimulationRequest | None
    errors: tuple[str, ...]


def _number(text: str, name: str, errors: list[str]) -> float | None:
    try:
        value = float(text) if len(text) <= MAX_FIELD_CHARS else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        errors.append(f"{name}: {text[:MAX_FIELD_CHARS]!r} is not a finite number")
        return None
    return value


def parse_form(
    form: Mapping[str, str],
    weights_in_force: Mapping[str, float],
    *,
    max_hours: float,
    max_events: int,
) -> FormResult:
    """Validate the posted Simulate form (module doc); ``weights_in_force``: the weights of
    the settings, against which a changed weight is told apart."""
    values = {k: str(v) for k, v in form.items()}
    errors: list[str] = []
    policy: ContactPolicy | None = None
    text = values.get("policy", "")
    if len(text) > MAX_POLICY_CHARS:
        errors.append(f"policy: longer than {MAX_POLICY_CHARS:,} characters")
    elif text.strip():
        try:
            policy = parse_policy(text, "candidate policy")
        except PolicyError as exc:
            errors.append(str(exc))
    weights: dict[str, float] = {}
    for name in ScoringConfig.weight_names():
        raw = values.get(name, "").strip()
        if not raw:
            continue
        number = _number(raw, name, errors)
        if number is not None and number != weights_in_force.get(name):
            weights[name] = number
    hours = _number(values.get("hours", "").strip(), "hours", errors)
    if hours is not None and not 0 < hours <= max_hours:
        errors.append(f"hours: between 0 and {max_hours:g}")
    events = _number(values.get("max_events", "").strip(), "events", errors)
    if events is not None and not (events == int(events) and 1 <= events <= max_events):
        errors.append(f"events: a whole number from 1 to {max_events:,}")
    seed = _number(values.get("seed", "0").strip() or "0", "seed", errors)
    if seed is not None and not (seed == int(seed) and 0 <= seed <= MAX_SEED):
        errors.append(f"seed: a whole number from 0 to {MAX_SEED}")
    if not errors and policy is None and not weights:
        errors.append("nothing to compare: give a candidate policy and/or change a weight")
    if errors or hours is None or events is None or seed is None:
        return FormResult(values, None, tuple(errors))
    return FormResult(values, SimulationRequest(hours, int(events), int(seed), policy, weights), ())


def candidate_of(current: PipelineConfig, request: SimulationRequest) -> PipelineConfig:
    """``current`` with the request's weights (as ``nbo simulate --weight`` sets them; a
    calibration in force must fit them) and policy; raises :class:`SimulateError` when the
    weights are refused."""
    candidate = current
    if request.weights:
        pairs = [f"{name}={value!r}" for name, value in request.weights.items()]
        try:
            candidate = candidate_config(current, None, pairs)
        except CalibrationError as exc:
            raise SimulateError(str(exc)) from None
    if request.policy is not None:
        candidate = dataclasses.replace(candidate, policy=request.policy)
    return candidate


def labels_of(current: PipelineConfig, candidate: PipelineConfig) -> tuple[str, str]:
    """The two columns' names: the policy versions when they differ (as ``nbo simulate``)."""
    if candidate.policy.version != current.policy.version:
        return current.policy.version, candidate.policy.version
    return "current", "candidate"


class SimulationSource(Protocol):
    def weights(self) -> Mapping[str, float]:
        """The score weights in force (the form's defaults)."""
        ...

    def run(self, request: SimulationRequest) -> SimulationReport:
        """Replay the sample under both configurations (blocking, CPU-heavy); raises
        ``ValueError`` (:class:`SimulateError`, ``SimulationError``) with a message for the
        page when it cannot."""
        ...


@dataclass
class MemorySimulationSource:
    """In-memory twin of :class:`SimulationSource`: replays ``events`` (the newest
    ``max_events`` of them; ``hours`` is not applied) with the catalogue and consent given."""

    events: Sequence[bytes]
    items: Sequence[Item]
    offers: Sequence[Offer]
    current: PipelineConfig = field(default_factory=PipelineConfig)
    consent: Sequence[ConsentRecord] = ()

    def weights(self) -> Mapping[str, float]:
        scoring = self.current.scoring
        return {name: float(getattr(scoring, name)) for name in ScoringConfig.weight_names()}

    def run(self, request: SimulationRequest) -> SimulationReport:
        candidate = candidate_of(self.current, request)
        return simulate(
            list(self.events)[-request.max_events :],
            self.items,
            self.offers,
            self.current,
            candidate,
            seed=request.seed,
            consent=self.consent,
            labels=labels_of(self.current, candidate),
        )


@dataclass(frozen=True)
class ReportRow:
    """One figure of the report: its name and its value in each run and the difference, as
    text."""

    name: str
    current: str
    candidate: str
    difference: str
    changed: bool


def _row(name: str, a: float, b: float, d: float, fmt: str = "{:,.0f}") -> ReportRow:
    sign = "+" if d > 0 else ""
    return ReportRow(name, fmt.format(a), fmt.format(b), sign + fmt.format(d), d != 0)


def report_rows(report: SimulationReport) -> list[ReportRow]:
    """The figures of :meth:`SimulationReport.render`, one row each (docs/simulation.md)."""
    a, b, diff = report.current, report.candidate, report.difference
    rows = [
        _row("decisions", a.decisions, b.decisions, diff["decisions"]),
        _row("messages", a.messages, b.messages, diff["messages"]),
    ]
    for c, d in diff["per_day_by_channel"].items():
        x, y = a.per_day_by_channel.get(c, 0.0), b.per_day_by_channel.get(c, 0.0)
        rows.append(_row(f"{c} messages per day", x, y, d, "{:,.1f}"))
    rows.append(_row("users reached", a.users_reached, b.users_reached, diff["users_reached"]))
    rows.append(
        _row(
            "share of users reached (%)",
            100 * a.reach_share,
            100 * b.reach_share,
            100 * diff["reach_share"],
            "{:.1f}",
        )
    )
    for r, d in diff["suppressions"].items():
        rows.append(_row(f"suppressed: {r}", a.suppressions.get(r, 0), b.suppressions.get(r, 0), d))
    rows.append(_row("cap hits", a.cap_hits, b.cap_hits, diff["cap_hits"]))
    rows.append(
        _row(
            "top-10 offer share (%)",
            100 * a.top10_share,
            100 * b.top10_share,
            100 * diff["top10_share"],
            "{:.1f}",
        )
    )
    rows.append(_row("offer HHI", a.hhi, b.hhi, diff["hhi"], "{:.3f}"))
    rows.append(
        _row(
            "expected acceptances",
            a.expected_acceptances,
            b.expected_acceptances,
            diff["expected_acceptances"],
            "{:,.1f}",
        )
    )
    return rows


def top_offer_rows(report: SimulationReport) -> list[tuple[str, int, int]]:
    """The lead offers of either run: (offer, messages current, messages candidate), most
    first by the larger of the two."""
    a, b = dict(report.current.top_offers), dict(report.candidate.top_offers)
    offers = sorted(a.keys() | b.keys(), key=lambda o: (-max(a.get(o, 0), b.get(o, 0)), o))
    return [(o, a.get(o, 0), b.get(o, 0)) for o in offers]
