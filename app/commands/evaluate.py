"""``nbo evaluate``: the offline replay evaluation on MovieLens or an events file.

Prints the table, and writes the JSON report (``--report``) and the HitRate@K plot
(``--plot``, PNG). With ``--tune`` the collaborative settings are first tuned on a validation
period inside the training data (:mod:`app.evaluation.tuning`; takes several minutes).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from app.commands.embed import LearningSource
from app.core.profile import ProfileConfig
from app.evaluation.config import METHODS, EvaluationConfig
from app.evaluation.evaluate import evaluate
from app.evaluation.report import Report
from app.settings import Settings


@dataclass(frozen=True)
class EvaluateOptions:
    """Options of ``nbo evaluate`` (defaults as on the command line)."""

    report: Path | None = None
    plot: Path | None = None
    seed: int = 0
    k_max: int = 20
    methods: tuple[str, ...] = METHODS
    tune: bool = False
    progress: bool = True


def evaluation_config(settings: Settings, options: EvaluateOptions) -> EvaluationConfig:
    """The evaluation settings: D and the ``engine_tags`` half-life from ``settings``."""
    base = EvaluationConfig()
    return base.model_copy(
        update={
            "seed": options.seed,
            "k_max": options.k_max,
            "methods": options.methods,
            "tags_profile": ProfileConfig(
                dim=settings.vector_dim, half_life_ms=int(settings.half_life_s * 1000)
            ),
            "collab": base.collab.model_copy(update={"dim": settings.vector_dim}),
        }
    )


def run_evaluate(settings: Settings, source: LearningSource, options: EvaluateOptions) -> Report:
    """Load ``source``, (optionally tune,) replay, print the table, write report and plot."""
    data = source.load()
    cfg = evaluation_config(settings, options)
    offers = data.offers or None
    if options.tune:
        from app.evaluation.tuning import tune

        def told(path: str, value: object, score: float) -> None:
            print(f"  validation HitRate@10 {score:.4f} with {path} = {value}", file=sys.stderr)

        tuned = tune(data.log, data.items, offers, cfg, on_trial=told)
        print(f"tuned on the validation period: HitRate@10 {tuned.score:.4f}", file=sys.stderr)
        for path, value in tuned.chosen().items():
            print(f"  {path} = {value}", file=sys.stderr)
        cfg = tuned.config.model_copy(update={"methods": options.methods})
    with tqdm(
        total=len(data.log), desc="replaying", unit="ev", disable=not options.progress
    ) as bar:
        report = evaluate(data.log, data.items, offers, cfg, progress=bar.update)
    print(report.table())
    if options.report is not None:
        options.report.parent.mkdir(parents=True, exist_ok=True)
        options.report.write_text(report.to_json() + "\n", encoding="utf-8")
        print(f"report: {options.report}")
    if options.plot is not None:
        from app.evaluation.plot import plot_hit_rate

        plot_hit_rate(report, options.plot)
        print(f"plot: {options.plot}")
    return report
