"""Exact vs approximate (ANN) scoring of one catalogue, timed and compared in the same run.

``python -m app.bench.ann_recall --offers 100000`` builds a seeded synthetic catalogue (see
:func:`synthetic_catalogue`), scores batches of users with :func:`app.core.scoring.score_batch`
and with :class:`app.core.ann.CandidateIndex`, and prints the time per batch of each, the
index build time and recall@10 of the ANN rankings against the exact ones.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from app.core.ann import AnnConfig, CandidateIndex
from app.core.catalog import Catalogue
from app.core.catalog_records import Offer
from app.core.ranked import ScoredOffer
from app.core.scoring import ScoringConfig, score_batch

F32 = npt.NDArray[np.float32]
NOW_MS = 1_750_000_000_000
"""The scoring time of the synthetic catalogue (epoch ms): validity windows are set around it."""
CHANNELS = ("email", "push", "sms", "in_app", "web")


@dataclass(frozen=True)
class SyntheticSpec:
    """Shape of a synthetic catalogue (defaults: 100,000 offers, D = 64, seed 42).

    Offers belong to ``categories`` x ``brands`` clusters: a brand's centre is near its
    category's, an offer's vector near its brand's. ``promotions`` (fraction, default 0.05) are
    category promotions whose vector *is* the category centre (many identical rows, as tag
    hashing produces); ``no_vector`` (0.02) have a zero row. ``ineligible`` (0.1) are expired,
    not yet started or without a channel.
    """

    offers: int = 100_000
    dim: int = 64
    categories: int = 24
    brands: int = 40
    promotions: float = 0.05
    no_vector: float = 0.02
    ineligible: float = 0.1
    seed: int = 42


@dataclass(frozen=True)
class SyntheticCatalogue:
    """The catalogue, each offer's brand cluster (row order) and the cluster centres."""

    catalogue: Catalogue
    cluster: npt.NDArray[np.int64]
    centres: F32


def _unit(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    out: npt.NDArray[np.float64] = rows / np.where(norms > 0, norms, 1.0)
    return out


def synthetic_catalogue(spec: SyntheticSpec) -> SyntheticCatalogue:
    """A seeded catalogue of ``spec.offers`` offers with one item each (item id = offer id)."""
    rng = np.random.default_rng(spec.seed)
    dim = spec.dim
    cat_centres = _unit(rng.normal(size=(spec.categories, dim)))
    brand_cat = np.repeat(np.arange(spec.categories), spec.brands)
    brand_centres = _unit(
        cat_centres[brand_cat] + 0.7 * _unit(rng.normal(size=(brand_cat.size, dim)))
    )
    n = spec.offers
    cluster = rng.integers(0, brand_cat.size, size=n)
    vecs = _unit(brand_centres[cluster] + 0.5 * _unit(rng.normal(size=(n, dim))))
    kind = rng.random(n)
    promo = kind < spec.promotions
    vecs[promo] = cat_centres[brand_cat[cluster[promo]]]
    no_vec = (kind >= spec.promotions) & (kind < spec.promotions + spec.no_vector)
    value = np.round(rng.lognormal(1.5, 0.8, size=n), 2)
    popularity = np.minimum(1.0, rng.pareto(2.0, size=n) / 20.0)
    priority = np.where(rng.random(n) < 0.1, rng.integers(-2, 4, size=n), 0)
    state = rng.random(n)
    catalogue = Catalogue(dim=dim)
    for i in range(n):
        offer_id = f"offer-{i:06d}"
        ineligible = state[i] < spec.ineligible
        catalogue.upsert_offer(
            Offer(
                offer_id=offer_id,
                title=f"Offer {i}",
                item_ids=(offer_id,),
                vector=None if no_vec[i] else tuple(vecs[i].tolist()),
                value=float(value[i]),
                priority=int(priority[i]),
                channels=() if ineligible and state[i] < spec.ineligible / 3 else CHANNELS[:2],
                valid_until=NOW_MS - 1 if ineligible and i % 2 else None,
                valid_from=NOW_MS + 1 if ineligible and not i % 2 else None,
            )
        )
        catalogue.set_popularity(offer_id, float(popularity[i]))
    centres = np.concatenate([cat_centres, brand_centres]).astype(np.float32)
    return SyntheticCatalogue(catalogue, cluster, centres)


def synthetic_users(
    synthetic: SyntheticCatalogue, n_users: int, seed: int, cold: float = 0.02
) -> F32:
    """``n_users`` x D user vectors: noisy mixtures of two or three cluster centres.

    A fraction ``cold`` (default 0.02) are zero vectors (users without events).
    """
    rng = np.random.default_rng(seed)
    centres = synthetic.centres.astype(np.float64)
    picks = rng.integers(0, centres.shape[0], size=(n_users, 3))
    weights = rng.dirichlet((2.0, 1.0, 0.5), size=n_users)
    mixed = np.einsum("uk,ukd->ud", weights, centres[picks])
    users = _unit(mixed) + 0.4 * _unit(rng.normal(size=mixed.shape))
    users[rng.random(n_users) < cold] = 0.0
    return users.astype(np.float32)


def recall_at(
    exact: Sequence[Sequence[ScoredOffer]], approx: Sequence[Sequence[ScoredOffer]], k: int = 10
) -> float:
    """Mean over users of |approx top-k ∩ exact top-k| / |exact top-k| (users with none: 1)."""
    total = 0.0
    for want, got in zip(exact, approx, strict=True):
        want_ids = {s.offer_id for s in want[:k]}
        got_ids = {s.offer_id for s in got[:k]}
        total += len(want_ids & got_ids) / len(want_ids) if want_ids else 1.0
    return total / max(len(exact), 1)


def purchases(
    ranked: Sequence[Sequence[ScoredOffer]], seed: int, share: float = 0.2
) -> list[set[str]]:
    """Per user, purchased items: a ``share`` of the users (default 0.2) bought the items of
    one to three of their ``ranked`` offers, so that exclusions remove offers they would see."""
    rng = np.random.default_rng(seed)
    out: list[set[str]] = []
    for row in ranked:
        bought: set[str] = set()
        if row and rng.random() < share:
            size = min(len(row), int(rng.integers(1, 4)))
            for i in rng.choice(len(row), size=size, replace=False):
                bought.update(row[int(i)].offer.item_ids)
        out.append(bought)
    return out


@dataclass(frozen=True)
class RecallReport:
    """One run of :func:`compare`: times in ms per batch (medians), build time in s."""

    offers: int
    users_per_batch: int
    batches: int
    k: int
    candidates: int
    static_candidates: int
    probes: int
    build_s: float
    exact_ms: float
    ann_ms: float
    speedup: float
    recall_at_10: float
    recall_at_k: float
    exact_users: int


def compare(
    synthetic: SyntheticCatalogue,
    ann: AnnConfig,
    scoring: ScoringConfig,
    batches: int = 5,
    users_per_batch: int = 500,
    seed: int = 7,
) -> RecallReport:
    """Score the same batches exactly and from candidates; time both and measure recall.

    Each batch has its own seeded users and purchases (see :func:`purchases`). Time per batch
    excludes reasons (the worker builds them only for the offers it sends).
    """
    catalogue = synthetic.catalogue
    index = CandidateIndex(ann)
    started = time.perf_counter()
    index.prepare(catalogue)
    build_s = time.perf_counter() - started
    exact_times: list[float] = []
    ann_times: list[float] = []
    exact_rows: list[Sequence[ScoredOffer]] = []
    ann_rows: list[Sequence[ScoredOffer]] = []
    for b in range(batches):
        users = synthetic_users(synthetic, users_per_batch, seed=seed + b)
        unexcluded = score_batch(users, NOW_MS, catalogue, scoring, None, reasons=False)
        exclude = purchases(unexcluded, seed=seed + b)
        started = time.perf_counter()
        exact = score_batch(users, NOW_MS, catalogue, scoring, exclude, reasons=False)
        exact_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        approx = index.score_batch(users, NOW_MS, catalogue, scoring, exclude, reasons=False)
        ann_times.append(time.perf_counter() - started)
        exact_rows += exact
        ann_rows += approx
    exact_ms = statistics.median(exact_times) * 1000
    ann_ms = statistics.median(ann_times) * 1000
    return RecallReport(
        offers=catalogue.n_offers,
        users_per_batch=users_per_batch,
        batches=batches,
        k=scoring.k,
        candidates=ann.candidates,
        static_candidates=ann.static_candidates,
        probes=ann.probes,
        build_s=round(build_s, 3),
        exact_ms=round(exact_ms, 1),
        ann_ms=round(ann_ms, 1),
        speedup=round(exact_ms / ann_ms, 1) if ann_ms > 0 else 0.0,
        recall_at_10=round(recall_at(exact_rows, ann_rows, 10), 4),
        recall_at_k=round(recall_at(exact_rows, ann_rows, scoring.k), 4),
        exact_users=index.stats.exact_users,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m app.bench.ann_recall --offers 100000`` (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--offers", type=int, default=100_000, help="catalogue size (100000)")
    parser.add_argument("--batches", type=int, default=5, help="batches timed (5)")
    parser.add_argument("--users", type=int, default=500, help="users per batch (500)")
    parser.add_argument(
        "--k", type=int, default=20, help="offers ranked per user (20: the worker's 5 x 4)"
    )
    defaults = AnnConfig()
    parser.add_argument("--candidates", type=int, default=defaults.candidates)
    parser.add_argument("--static-candidates", type=int, default=defaults.static_candidates)
    parser.add_argument("--probes", type=int, default=defaults.probes)
    parser.add_argument("--seed", type=int, default=42, help="catalogue seed (42)")
    parser.add_argument("--json", action="store_true", help="print one JSON line only")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    synthetic = synthetic_catalogue(SyntheticSpec(offers=args.offers, seed=args.seed))
    synthetic.catalogue.snapshot()
    built_s = time.perf_counter() - started
    ann = AnnConfig(
        min_offers=0,
        candidates=args.candidates,
        static_candidates=args.static_candidates,
        probes=args.probes,
    )
    report = compare(
        synthetic, ann, ScoringConfig(k=args.k), batches=args.batches, users_per_batch=args.users
    )
    if args.json:
        print(json.dumps(asdict(report)))
        return 0
    print(
        f"catalogue: {report.offers} offers, D={synthetic.catalogue.dim} (built in "
        f"{built_s:.1f} s); {report.batches} batches of {report.users_per_batch} users, "
        f"top-{report.k}"
    )
    print(f"index build:      {report.build_s:8.2f} s")
    print(f"exact per batch:  {report.exact_ms:8.1f} ms")
    print(
        f"ANN per batch:    {report.ann_ms:8.1f} ms  ({report.speedup}x faster; "
        f"M={report.candidates}, S={report.static_candidates}, nprobe={report.probes})"
    )
    print(f"recall@10:        {report.recall_at_10:8.4f}")
    print(f"recall@{report.k}:        {report.recall_at_k:8.4f}")
    print(f"users ranked exactly (short candidate lists): {report.exact_users}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
