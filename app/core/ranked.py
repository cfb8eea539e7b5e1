"""Ranked offers: one scored offer (:class:`ScoredOffer`), and a user's ranking built lazily.

A worker ranks ``k x candidate_factor`` offers per user (20 by default) so that ``k`` remain
after the contact policy, but it sends at most ``k`` and usually fewer. Building every
candidate's row (an object and a dict of parts) cost more than the matrix product that ranked
them, so :class:`RankedOffers` keeps a user's ranking as the batch's plain number rows and
builds a :class:`ScoredOffer` only when one is read. The policy reads only the candidates'
:class:`~app.core.catalog_records.OfferRecord` (channels, transactional) through :func:`offers_of`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import overload

from app.core.catalog_records import OfferRecord


@dataclass(frozen=True)
class ScoredOffer:
    """One ranked offer: ``score`` equals the sum of ``parts`` (weighted contributions).

    ``match``: the calibrated match percentage (0-100, :mod:`app.core.calibration`), set by
    the decision for the offers it weighs; ``None`` when no calibration applies."""

    offer: OfferRecord
    score: float
    parts: Mapping[str, float]
    reason: str
    match: float | None = None

    @property
    def offer_id(self) -> str:
        """The offer's id."""
        return self.offer.offer_id


class RankedOffers(Sequence[ScoredOffer]):
    """One user's ranked offers, best first, each :class:`ScoredOffer` built when first read.

    ``offers``: the ranked offers. ``scores``: their scores. ``parts``: per part name, the
    values of the ranked offers in the same order (each part of the rows of the whole
    batch, read by position: no copy per user). A ranking equals another sequence of scored
    offers with the same rows in the same order.
    """

    __slots__ = ("_built", "_names", "_values", "offers", "scores")

    def __init__(
        self,
        offers: list[OfferRecord],
        scores: list[float],
        names: tuple[str, ...],
        values: Sequence[list[float]],
    ) -> None:
        self.offers = offers
        self.scores = scores
        self._names = names
        self._values = values
        self._built: list[ScoredOffer | None] = [None] * len(offers)

    @property
    def rows_built(self) -> int:
        """How many :class:`ScoredOffer` rows were built so far (read so far)."""
        return sum(row is not None for row in self._built)

    @property
    def offer_ids(self) -> list[str]:
        """The ranked offers' ids, best first."""
        return [o.offer_id for o in self.offers]

    @property
    def part_names(self) -> tuple[str, ...]:
        """The score parts every row reports, in order."""
        return self._names

    def part(self, name: str) -> Sequence[float] | None:
        """The values of part ``name`` of the ranked offers, in order (``None``: no such
        part); read without building any row."""
        for known, values in zip(self._names, self._values, strict=True):
            if known == name:
                return values
        return None

    def __len__(self) -> int:
        return len(self.offers)

    @overload
    def __getitem__(self, index: int) -> ScoredOffer: ...

    @overload
    def __getitem__(self, index: slice) -> list[ScoredOffer]: ...

    def __getitem__(self, index: int | slice) -> ScoredOffer | list[ScoredOffer]:
        if isinstance(index, slice):
            return [self._row(i) for i in range(*index.indices(len(self.offers)))]
        if index < 0:
            index += len(self.offers)
        if not 0 <= index < len(self.offers):
            raise IndexError(index)
        return self._row(index)

    def __iter__(self) -> Iterator[ScoredOffer]:
        return (self._row(i) for i in range(len(self.offers)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable cache, compared by value

    def __repr__(self) -> str:
        return f"RankedOffers({list(self)!r})"

    def _row(self, i: int) -> ScoredOffer:
        row = self._built[i]
        if row is None:
            parts = {
                name: values[i] for name, values in zip(self._names, self._values, strict=True)
            }
            row = ScoredOffer(self.offers[i], self.scores[i], parts, "")
            self._built[i] = row
        return row


def offers_of(ranked: Sequence[ScoredOffer]) -> Sequence[OfferRecord]:
    """The offers of ``ranked`` in order, without building the rows of a lazy ranking."""
    if isinstance(ranked, RankedOffers):
        return ranked.offers
    return [s.offer for s in ranked]
