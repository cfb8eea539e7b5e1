"""Data sets for the demo, benchmarks and evaluation: a synthetic shop and MovieLens.

Each yields wire-format records (Items, Offers, UserEvents as JSON-ready dicts) in time order.
"""
