"""The arithmetic of a simulation report: pure, no I/O (no faust, redis, Kafka or asyncio).

Input: the decision records a replay published (the audit records of the decisions topic,
docs/contracts.md), parsed into :class:`Decision`. Definitions (docs/simulation.md):

- *messages*: decisions that sent something (``sent``), per channel; *per day*: divided by the
  counted span in days, at least one day (a sample shorter than a day gives plain counts).
- *users reached*: sampled users with at least one message / sampled users active in the
  counted period (an event, or a decision in either run: a cart timer may fire after the
  warm-up for a cart filled during it).
- *suppressions by reason*: decisions not sent, by their ``reason``.
- *cap hits*: decisions where a cap rejected at least one candidate (``rejected["cap"] > 0``),
  and *cap suppressions*: decisions not sent with reason ``cap``.
- *offer mix*: the offer a message leads with (rank 1); the top offers by messages, the share
  of messages led by the top 10, and the Herfindahl-Hirschman index (sum of squared shares).
- *expected acceptances*: the sum, over messages, of the acceptance rate of the offer it leads
  with (:func:`acceptance_rates`).
- *changed users*: decisions are matched by trigger (event id and type); a user's change is the
  number of triggers decided differently (sent or not, channel, offers), or decided in one run
  only.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

DAY_MS = 86_400_000
TOP_OFFERS = 10
PRIOR_ACCEPTED = 1.0
PRIOR_SHOWN = 20.0
"""Acceptance-rate prior: as if each offer had been shown 20 times and accepted once (5 %)."""


@dataclass(frozen=True)
class Decision:
    """The parts of one decision record the report uses."""

    user_id: str
    trigger: tuple[str, str]
    """(event id, type) of what the decision answered."""
    decided_at: int
    sent: bool
    channel: str | None
    reason: str | None
    rejected: Mapping[str, int]
    offer_ids: tuple[str, ...]

    @property
    def lead(self) -> str | None:
        """The offer the message leads with (rank 1), if sent."""
        return self.offer_ids[0] if self.sent and self.offer_ids else None

    def outcome(self) -> tuple[bool, str | None, tuple[str, ...]]:
        """What a person would notice: sent or not, the channel and the offers."""
        return (self.sent, self.channel if self.sent else None, self.offer_ids if self.sent else ())

    def describe(self) -> str:
        """One line: ``sent push: o1, o2`` or ``suppressed (cap; cap 3, consent 2)``."""
        if self.sent:
            return f"sent {self.channel}: {', '.join(self.offer_ids[:3])}"
        rejected = ", ".join(f"{k} {v}" for k, v in sorted(self.rejected.items()))
        return f"suppressed ({self.reason}{'; ' + rejected if rejected else ''})"


def parse_decision(value: bytes | str | Mapping[str, Any]) -> Decision:
    """A :class:`Decision` from a decision record (JSON bytes or an already parsed dict)."""
    doc: Mapping[str, Any] = json.loads(value) if isinstance(value, bytes | str) else value
    trigger = doc.get("trigger") or {}
    return Decision(
        user_id=str(doc["user_id"]),
        trigger=(str(trigger.get("event_id", "")), str(trigger.get("type", ""))),
        decided_at=int(doc["decided_at"]),
        sent=bool(doc.get("sent")),
        channel=doc.get("channel"),
        reason=doc.get("reason"),
        rejected={str(k): int(v) for k, v in (doc.get("rejected") or {}).items()},
        offer_ids=tuple(str(o["offer_id"]) for o in doc.get("offers") or ()),
    )


@dataclass(frozen=True)
class Feedback:
    """Offer feedback counts of one offer: impressions and acceptances."""

    shown: int = 0
    accepted: int = 0


def acceptance_rates(feedback: Mapping[str, Feedback]) -> dict[str, float]:
    """Per offer, ``(accepted + 1) / (max(shown, accepted) + 20)``: the posterior mean under a
    prior of one acceptance in 20 impressions (:func:`acceptance_rate` for offers without
    feedback)."""
    return {offer: acceptance_rate(f) for offer, f in feedback.items()}


def acceptance_rate(feedback: Feedback | None = None) -> float:
    """The rate of one offer (:func:`acceptance_rates`); ``None``: the prior, 5 %."""
    f = feedback or Feedback()
    return (f.accepted + PRIOR_ACCEPTED) / (max(f.shown, f.accepted) + PRIOR_SHOWN)


def concentration(counts: Mapping[str, int], top: int = TOP_OFFERS) -> tuple[float, float]:
    """(share of the ``top`` largest counts, Herfindahl-Hirschman index); (0, 0) if empty."""
    total = sum(counts.values())
    if total == 0:
        return 0.0, 0.0
    ordered = sorted(counts.values(), reverse=True)
    return sum(ordered[:top]) / total, sum((n / total) ** 2 for n in ordered)


def days_of(span_ms: int) -> float:
    """The days a per-day rate divides by: the span in days, at least one."""
    return max(span_ms / DAY_MS, 1.0)


@dataclass(frozen=True)
class RunSummary:
    """What one configuration did on the counted part of the sample."""

    decisions: int
    messages: int
    messages_by_channel: dict[str, int]
    per_day_by_channel: dict[str, float]
    users: int
    users_reached: int
    reach_share: float
    suppressions: dict[str, int]
    cap_hits: int
    cap_suppressions: int
    top_offers: list[tuple[str, int]]
    top10_share: float
    hhi: float
    expected_acceptances: float

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["top_offers"] = [[o, n] for o, n in self.top_offers]
        return out


def summarise(
    decisions: Iterable[Decision],
    users: int,
    days: float,
    rates: Mapping[str, float],
    default_rate: float | None = None,
) -> RunSummary:
    """The :class:`RunSummary` of ``decisions`` (already limited to the counted period) for
    ``users`` sampled users over ``days``; ``rates``: acceptance rate per offer, others get
    ``default_rate`` (default: the prior, :func:`acceptance_rate`)."""
    fallback = acceptance_rate() if default_rate is None else default_rate
    listed = list(decisions)
    sent = [d for d in listed if d.sent]
    by_channel = Counter(str(d.channel) for d in sent)
    leads = Counter(d.lead for d in sent if d.lead is not None)
    share, hhi = concentration(leads)
    reached = len({d.user_id for d in sent})
    return RunSummary(
        decisions=len(listed),
        messages=len(sent),
        messages_by_channel=dict(sorted(by_channel.items())),
        per_day_by_channel={c: n / days for c, n in sorted(by_channel.items())},
        users=users,
        users_reached=reached,
        reach_share=reached / users if users else 0.0,
        suppressions=dict(sorted(Counter(str(d.reason) for d in listed if not d.sent).items())),
        cap_hits=sum(1 for d in listed if d.rejected.get("cap", 0) > 0),
        cap_suppressions=sum(1 for d in listed if not d.sent and d.reason == "cap"),
        top_offers=sorted(leads.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_OFFERS],
        top10_share=share,
        hhi=hhi,
        expected_acceptances=sum(rates.get(o, fallback) * n for o, n in leads.items()),
    )


@dataclass(frozen=True)
class UserChange:
    """A user decided differently: how many triggers differ, and the first that did."""

    user_id: str
    changed: int
    trigger: tuple[str, str]
    current: Decision | None
    candidate: Decision | None

    def to_dict(self) -> dict[str, Any]:
        def side(d: Decision | None) -> dict[str, Any] | None:
            return None if d is None else {**asdict(d), "rejected": dict(d.rejected)}

        return {
            "user_id": self.user_id,
            "changed": self.changed,
            "trigger": list(self.trigger),
            "current": side(self.current),
            "candidate": side(self.candidate),
        }


def changed_users(
    current: Iterable[Decision], candidate: Iterable[Decision], n: int = 5
) -> list[UserChange]:
    """The ``n`` users with the most triggers decided differently (ties: user id), each with
    the first such trigger (by decision time) and both decisions."""
    mine: dict[tuple[str, tuple[str, str]], Decision] = {}
    theirs: dict[tuple[str, tuple[str, str]], Decision] = {}
    for target, decisions in ((mine, current), (theirs, candidate)):
        for d in decisions:
            target.setdefault((d.user_id, d.trigger), d)  # the first decision of a trigger
    counts: Counter[str] = Counter()
    first: dict[str, tuple[int, tuple[str, str]]] = {}
    for key in mine.keys() | theirs.keys():
        a, b = mine.get(key), theirs.get(key)
        if a is not None and b is not None and a.outcome() == b.outcome():
            continue
        user, trigger = key
        counts[user] += 1
        at = min(d.decided_at for d in (a, b) if d is not None)
        if user not in first or (at, trigger) < first[user]:
            first[user] = (at, trigger)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return [
        UserChange(
            user,
            k,
            first[user][1],
            mine.get((user, first[user][1])),
            theirs.get((user, first[user][1])),
        )
        for user, k in ranked
    ]


def difference(current: RunSummary, candidate: RunSummary) -> dict[str, Any]:
    """Candidate minus current, for every number of the summaries (per channel and per
    reason over the union of keys)."""

    def keyed(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
        return {k: b.get(k, 0) - a.get(k, 0) for k in sorted(a.keys() | b.keys())}

    return {
        "decisions": candidate.decisions - current.decisions,
        "messages": candidate.messages - current.messages,
        "messages_by_channel": keyed(current.messages_by_channel, candidate.messages_by_channel),
        "per_day_by_channel": keyed(current.per_day_by_channel, candidate.per_day_by_channel),
        "users_reached": candidate.users_reached - current.users_reached,
        "reach_share": candidate.reach_share - current.reach_share,
        "suppressions": keyed(current.suppressions, candidate.suppressions),
        "cap_hits": candidate.cap_hits - current.cap_hits,
        "cap_suppressions": candidate.cap_suppressions - current.cap_suppressions,
        "top10_share": candidate.top10_share - current.top10_share,
        "hhi": candidate.hhi - current.hhi,
        "expected_acceptances": candidate.expected_acceptances - current.expected_acceptances,
    }


@dataclass(frozen=True)
class SimulationReport:
    """Both runs side by side, their difference, the most changed users and what was run."""

    current: RunSummary
    candidate: RunSummary
    changes: list[UserChange]
    events: int
    counted_events: int
    users: int
    batches: int
    warmup_ms: int
    counted_from_ms: int
    counted_to_ms: int
    days: float
    seed: int
    current_label: str = "current"
    candidate_label: str = "candidate"
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def difference(self) -> dict[str, Any]:
        """Candidate minus current (:func:`difference`)."""
        return difference(self.current, self.candidate)

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (``--json``)."""
        return {
            "events": self.events,
            "counted_events": self.counted_events,
            "users": self.users,
            "batches": self.batches,
            "warmup_ms": self.warmup_ms,
            "counted_from_ms": self.counted_from_ms,
            "counted_to_ms": self.counted_to_ms,
            "days": self.days,
            "seed": self.seed,
            "seconds": self.seconds,
            "labels": {"current": self.current_label, "candidate": self.candidate_label},
            "current": self.current.to_dict(),
            "candidate": self.candidate.to_dict(),
            "difference": self.difference,
            "changed_users": [c.to_dict() for c in self.changes],
            "notes": list(self.notes),
        }

    def render(self) -> str:
        """The terminal table: one row per figure, current | candidate | difference."""
        a, b, diff = self.current, self.candidate, self.difference
        rows: list[tuple[str, str, str, str]] = []

        def row(name: str, x: float, y: float, d: float, fmt: str = "{:,.0f}") -> None:
            sign = "+" if d > 0 else ""
            rows.append((name, fmt.format(x), fmt.format(y), sign + fmt.format(d)))

        row("decisions", a.decisions, b.decisions, diff["decisions"])
        row("messages", a.messages, b.messages, diff["messages"])
        for c, d in diff["per_day_by_channel"].items():
            x, y = a.per_day_by_channel.get(c, 0.0), b.per_day_by_channel.get(c, 0.0)
            row(f"  {c} per day", x, y, d, "{:,.1f}")
        row("users reached", a.users_reached, b.users_reached, diff["users_reached"])
        row("share reached %", 100 * a.reach_share, 100 * b.reach_share,
            100 * diff["reach_share"], "{:.1f}")  # fmt: skip
        for r, d in diff["suppressions"].items():
            row(f"suppressed: {r}", a.suppressions.get(r, 0), b.suppressions.get(r, 0), d)
        row("cap hits", a.cap_hits, b.cap_hits, diff["cap_hits"])
        row("top-10 offer share %", 100 * a.top10_share, 100 * b.top10_share,
            100 * diff["top10_share"], "{:.1f}")  # fmt: skip
        row("offer HHI", a.hhi, b.hhi, diff["hhi"], "{:.3f}")
        row("expected acceptances", a.expected_acceptances, b.expected_acceptances,
            diff["expected_acceptances"], "{:,.1f}")  # fmt: skip
        head = ("", self.current_label[:16], self.candidate_label[:16], "difference")
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
        lines = [
            f"{self.events:,} events of {self.users:,} users in {self.batches:,} batches; "
            f"counted {self.counted_events:,} events over {self.days:.2f} days after a "
            f"{self.warmup_ms / 3_600_000:.1f} h warm-up (seed {self.seed}, {self.seconds:.1f} s)",
            "",
        ]
        for r in [head, *rows]:
            lines.append(
                f"{r[0]:<{widths[0]}}  "
                + "  ".join(f"{v:>{w}}" for v, w in zip(r[1:], widths[1:], strict=True))
            )
        for label, s in ((self.current_label, a), (self.candidate_label, b)):
            top = ", ".join(f"{o} {n}" for o, n in s.top_offers[:5]) or "-"
            lines.append(f"top offers, {label}: {top}")
        if self.changes:
            lines.append("")
            lines.append("users whose decisions change most:")
            for ch in self.changes:
                lines.append(
                    f"  {ch.user_id}: {ch.changed} triggers differ; first "
                    f"{ch.trigger[1]} {ch.trigger[0]}"
                )
                for label, d in ((self.current_label, ch.current),
                                 (self.candidate_label, ch.candidate)):  # fmt: skip
                    lines.append(f"    {label}: {d.describe() if d else 'no decision'}")
        lines.extend(self.notes)
        return "\n".join(lines)
