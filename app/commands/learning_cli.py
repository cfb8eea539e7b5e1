"""Sub-commands of the learning loop (``nbo embed``, ``nbo evaluate``), registered on ``nbo``."""

from __future__ import annotations

import argparse
from typing import Any


def register_learning_commands(sub: Any) -> None:
    """Add the learning sub-commands to ``nbo``'s sub-parsers (none yet)."""
    _ = (sub, argparse)
