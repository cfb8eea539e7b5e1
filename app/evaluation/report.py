"""The evaluation report: per-method metrics, protocol counts, JSON and a terminal table."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from app.core.timestamps import format_rfc3339_ms
from app.evaluation.bootstrap import Difference
from app.evaluation.calibration import MatchReport
from app.evaluation.metrics import MethodResult
from app.evaluation.replay import ReplayStats

TABLE_KS = (1, 5, 10, 20)
"""K values shown by :meth:`Report.table` (those <= k_max)."""


@dataclass(frozen=True)
class Report:
    """Outcome of :func:`app.evaluation.evaluate`.

    ``methods``: name -> metrics keyed by K. ``stats``: events, queries and per-method
    seconds. ``split_ts_ms``: the split time (epoch ms). ``config``: the configuration used
    (JSON-ready). ``seconds``: total wall time including training (and the baselines'
    tuning). ``comparisons``: ``engine_collab``'s HitRate@10 minus each other method's, with
    a 95 % bootstrap interval over users. ``baseline_params``: the baselines'
    hyper-parameters chosen on validation. ``match``: ``engine_collab``'s calibrated match
    (reliability, expected calibration error, thresholds), when it was measured.
    """

    methods: dict[str, MethodResult]
    stats: ReplayStats
    split_ts_ms: int
    k_max: int
    n_offers: int
    seed: int
    config: dict[str, Any]
    seconds: float
    train_seconds: float
    comparisons: dict[str, Difference] = field(default_factory=dict)
    baseline_params: dict[str, Any] = field(default_factory=dict)
    match: MatchReport | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report: ``methods.<name>.hit_rate["10"]`` etc. (K keys are strings)."""

        def keyed(values: dict[int, float]) -> dict[str, float]:
            return {str(k): round(v, 6) for k, v in sorted(values.items())}

        return {
            "protocol": {
                "split_ts_ms": self.split_ts_ms,
                "split_ts": format_rfc3339_ms(self.split_ts_ms),
                "k_max": self.k_max,
                "n_offers": self.n_offers,
                "seed": self.seed,
                **{k: v for k, v in asdict(self.stats).items() if k != "seconds"},
            },
            "methods": {
                name: {
                    "hit_rate": keyed(r.hit_rate),
                    "ndcg": keyed(r.ndcg),
                    "coverage": keyed(r.coverage),
                    "users_with_hit": keyed(r.users_with_hit),
                    "hit_rate_cold": keyed(r.hit_rate_cold),
                    "hit_rate_returning": keyed(r.hit_rate_returning),
                    "seconds": round(r.seconds, 3),
                }
                for name, r in self.methods.items()
            },
            "engine_collab_vs": {
                name: {
                    "k": d.k,
                    "difference": round(d.difference, 6),
                    "interval_95": [round(d.low, 6), round(d.high, 6)],
                    "ratio": round(d.ratio, 4),
                    "resolved": d.resolved,
                }
                for name, d in self.comparisons.items()
            },
            "baseline_params": self.baseline_params,
            "match": self.match.to_dict() if self.match is not None else None,
            "seconds": round(self.seconds, 3),
            "train_seconds": round(self.train_seconds, 3),
            "config": self.config,
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def table(self) -> str:
        """A plain-text table: HitRate@K and NDCG@K for a few K; at K = 10: coverage, users
        with a hit, HitRate on cold items and on returning users, and the ratio of HitRate to
        ``popularity``'s; seconds per method."""
        ks = [k for k in TABLE_KS if k <= self.k_max]
        ref = max(ks)
        ref10 = 10 if self.k_max >= 10 else ref
        base = self.methods.get("popularity")
        head = (
            ["method"]
            + [f"HR@{k}" for k in ks]
            + [f"NDCG@{k}" for k in ks]
            + [f"cov@{ref10}", f"users@{ref10}", f"coldHR@{ref10}", f"retHR@{ref10}"]
            + [f"xPop@{ref10}", "secs"]
        )
        rows = [head]
        for name, r in self.methods.items():
            ratio = (
                f"{r.hit_rate[ref10] / base.hit_rate[ref10]:.2f}"
                if base is not None and base.hit_rate[ref10] > 0
                else "-"
            )
            rows.append(
                [name]
                + [f"{r.hit_rate[k]:.4f}" for k in ks]
                + [f"{r.ndcg[k]:.4f}" for k in ks]
                + [
                    f"{r.coverage[ref10]:.4f}",
                    f"{r.users_with_hit[ref10]:.3f}",
                    f"{r.hit_rate_cold[ref10]:.4f}",
                    f"{r.hit_rate_returning[ref10]:.4f}",
                    ratio,
                    f"{r.seconds:.1f}",
                ]
            )
        widths = [max(len(row[c]) for row in rows) for c in range(len(head))]
        lines = [
            "  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        if self.comparisons:
            lines.append("")
            lines.append(
                "engine_collab against each method, HitRate@10 (95 % interval over users):"
            )
            for name, d in self.comparisons.items():
                verdict = "ahead" if d.low > 0 else "behind" if d.high < 0 else "unresolved"
                lines.append(
                    f"  {name:>20}: {d.difference:+.4f} [{d.low:+.4f}, {d.high:+.4f}] "
                    f"x{d.ratio:.2f} {verdict}"
                )
        s = self.stats
        lines.append("")
        lines.append(
            f"split at {format_rfc3339_ms(self.split_ts_ms)}: {s.n_train_events} train / "
            f"{s.n_test_events} test events; {s.n_queries} queries ({s.n_cold_queries} on cold "
            f"items, {s.n_returning_queries} of returning users) from {s.n_users_queried} users; "
            f"{self.n_offers} offers ranked in full; {self.seconds:.1f} s in total"
        )
        if s.retrains:
            lines.append(
                f"models relearned {s.retrains} times during the test period (every "
                f"{self.config.get('retrain_every_days')} days of event time)"
            )
        if self.match is not None:
            lines.append("")
            lines.append(self.match.table())
        return "\n".join(lines)
