"""Offline replay evaluation of the engine against simple and batch baselines.

``evaluate(events, items, offers_or_items, config) -> Report``; see
:mod:`app.evaluation.evaluate` for the protocol and ``docs/learning.md`` for results.
"""
