"""Offline replay evaluation of the engine against simple and batch baselines.

``evaluate(events, items, offers_or_items, config) -> Report``; see
:mod:`app.evaluation.evaluate` for the protocol and ``docs/learning.md`` for results.
"""

from app.evaluation.config import METHODS, EvaluationConfig
from app.evaluation.evaluate import evaluate
from app.evaluation.metrics import MethodResult
from app.evaluation.report import Report

__all__ = ["METHODS", "EvaluationConfig", "MethodResult", "Report", "evaluate"]
