"""A PNG of HitRate@K per method (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

from app.evaluation.report import Report


def plot_hit_rate(report: Report, path: Path) -> Path:
    """Draw HitRate@K for K = 1..k_max, one line per method, into ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    ks = list(range(1, report.k_max + 1))
    for name, result in report.methods.items():
        ax.plot(ks, [result.hit_rate[k] for k in ks], marker="o", markersize=3, label=name)
    ax.set_xlabel("K (offers in the list)")
    ax.set_ylabel("HitRate@K")
    ax.set_title(f"Replay after the split: {report.stats.n_queries} positive interactions")
    ax.set_xticks([k for k in ks if k == 1 or k % 5 == 0])
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
