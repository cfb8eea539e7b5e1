"""``nbo evaluate``: the offline replay evaluation on MovieLens or an events file.

Prints the table (and, with ``engine_collab``, the reliability and threshold tables of its
calibrated match), and writes the JSON report (``--report``), the HitRate@K plot (``--plot``,
PNG) and the match calibration for the workers (``--write-calibration``). With ``--tune``
the collaborative settings are first tuned on a validation period inside the training data
(:mod:`app.evaluation.tuning`; takes several minutes).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from app.commands.embed import LearningSource
from app.core.profile import ProfileConfig
from app.datasets.synthetic import RestockSpec, ShopSpec
from app.evaluation.config import METHODS, EvaluationConfig
from app.evaluation.evaluate import evaluate
from app.evaluation.report import Report
from app.evaluation.restock import RestockReport
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
    write_calibration: Path | None = None
    """Write ``engine_collab``'s match calibration here (``NBO_CALIBRATION_PATH``)."""
    model_version: str | None = None
    """The ``NBO_MODEL_VERSION`` written into the calibration (default: the config's,
    ``collab-v1``)."""
    retrain_days: float | None = None
    """Relearn during the test period every this many days (``EvaluationConfig``'s
    ``retrain_every_days``; default: frozen at the split)."""


class EvaluateError(ValueError):
    """An evaluation that cannot give what was asked (e.g. a calibration without
    ``engine_collab``)."""


def source_name(source: LearningSource) -> str:
    """What the data is called in a calibration's provenance."""
    if source.movielens is not None:
        return f"movielens:{source.movielens.resolve().name}"
    if source.events is not None:
        return f"events:{source.events.name}"
    return "topics"


def evaluation_config(settings: Settings, options: EvaluateOptions) -> EvaluationConfig:
    """The evaluation settings: D and the ``engine_tags`` half-life from ``settings``."""
    base = EvaluationConfig()
    if options.retrain_days is not None and not 0 < options.retrain_days <= 3650:
        raise EvaluateError(f"--retrain-days must be in (0, 3650], not {options.retrain_days}")
    match = base.match
    if options.model_version is not None:
        match = match.model_copy(update={"model_version": options.model_version})
    return base.model_copy(
        update={
            "match": match,
            "seed": options.seed,
            "k_max": options.k_max,
            "methods": options.methods,
            "retrain_every_days": options.retrain_days,
            "tags_profile": ProfileConfig(
                dim=settings.vector_dim, half_life_ms=int(settings.half_life_s * 1000)
            ),
            "collab": base.collab.model_copy(update={"dim": settings.vector_dim}),
        }
    )


def run_evaluate(settings: Settings, source: LearningSource, options: EvaluateOptions) -> Report:
    """Load ``source``, (optionally tune,) replay, print the table, write report, plot and
    calibration."""
    from app.evaluation.config import ENGINE_COLLAB

    if options.write_calibration is not None and ENGINE_COLLAB not in options.methods:
        raise EvaluateError("--write-calibration needs the method engine_collab")
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
        report = evaluate(
            data.log, data.items, offers, cfg, progress=bar.update, source=source_name(source)
        )
    print(report.table())
    if options.report is not None:
        options.report.parent.mkdir(parents=True, exist_ok=True)
        options.report.write_text(report.to_json() + "\n", encoding="utf-8")
        print(f"report: {options.report}")
    if options.plot is not None:
        from app.evaluation.plot import plot_hit_rate

        plot_hit_rate(report, options.plot)
        print(f"plot: {options.plot}")
    if options.write_calibration is not None:
        if report.match is None:
            raise EvaluateError("no calibration: engine_collab had no queries to calibrate on")
        options.write_calibration.parent.mkdir(parents=True, exist_ok=True)
        options.write_calibration.write_text(
            report.match.calibration.to_json() + "\n", encoding="utf-8"
        )
        print(f"calibration: {options.write_calibration}")
    return report


RESTOCK_START_MS = 1_767_225_600_000
"""Where the synthetic restock log starts: 2026-01-01T00:00:00Z."""


def run_restock_evaluation(
    settings: Settings,
    *,
    report: Path | None = None,
    write_log: Path | None = None,
    seed: int = 0,
    spec: RestockSpec | None = None,
    shop: ShopSpec | None = None,
) -> RestockReport:
    """``nbo evaluate --restock``: the synthetic shop with planted repurchase cycles
    (:func:`app.datasets.synthetic.restock_log`, its seeds shifted by ``seed``), replayed by
    :func:`app.evaluation.restock.evaluate_restock` with the worker's configuration from
    ``settings``; prints the table, writes the JSON report and, with ``write_log``, the log
    (UserEvent JSON lines, then the items as ``catalog.jsonl`` beside it) so that others can
    recompute the baselines on the same data. ``spec`` / ``shop``: other sizes (tests)."""
    import json
    from dataclasses import replace

    from app.core.catalog_records import Item
    from app.core.events import UserEvent
    from app.datasets.synthetic import restock_log
    from app.evaluation.restock import RestockEvaluationConfig, evaluate_restock
    from app.pipeline.config import pipeline_config

    spec = spec or RestockSpec()
    shop = shop or ShopSpec()
    planted = restock_log(
        replace(spec, seed=spec.seed + seed), replace(shop, seed=shop.seed + seed), RESTOCK_START_MS
    )
    if write_log is not None:
        write_log.parent.mkdir(parents=True, exist_ok=True)
        lines = (json.dumps(e, separators=(",", ":")) + "\n" for e in planted.events)
        write_log.write_text("".join(lines), encoding="utf-8")
        catalog = write_log.with_name("catalog.jsonl")
        rows = (json.dumps(i, separators=(",", ":")) + "\n" for i in planted.shop.items)
        catalog.write_text("".join(rows), encoding="utf-8")
        print(f"log: {write_log} (items: {catalog})")
    events = [UserEvent.model_validate(e) for e in planted.events]
    items = [Item.model_validate(i) for i in planted.shop.items]
    pipeline = pipeline_config(settings)
    cfg = RestockEvaluationConfig(
        profile=pipeline.profile,
        weights=pipeline.weights,
        scoring=pipeline.scoring,
        restock=pipeline.restock,
    )
    result = evaluate_restock(events, items, cfg)
    print(result.table())
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(result.to_json() + "\n", encoding="utf-8")
        print(f"report: {report}")
    return result
