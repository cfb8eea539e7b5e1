"""faust's Worker, built without its terminal spinner: the root logger keeps the level asked
for, so debug calls of the Kafka client cost nothing at ``--loglevel warn``."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import faust
import pytest

from agents.faust_worker import faust_worker

pytestmark = pytest.mark.agents


@pytest.fixture
def root_at_warn() -> Iterator[logging.Logger]:
    """A stand-in for the root logger (with the one handler faust's logging set-up gives it)."""
    logger = logging.getLogger("tests.faust-worker.root")
    logger.handlers = [logging.NullHandler()]
    logger.setLevel(logging.WARN)
    yield logger
    logger.handlers = []


def test_faust_own_worker_lowers_the_root_logger_to_debug_at_warn(
    root_at_warn: logging.Logger,
) -> None:
    # the trap this module avoids, pinned: if a faust upgrade drops it, so can we
    worker = faust.Worker(faust.App("trap", broker="memory://"), loglevel="warn")
    worker.on_setup_root_logger(root_at_warn, logging.WARN)
    assert root_at_warn.level == logging.DEBUG
    assert root_at_warn.isEnabledFor(logging.DEBUG)


def test_the_root_logger_keeps_the_level_asked_for(root_at_warn: logging.Logger) -> None:
    worker = faust_worker(faust.App("quiet", broker="memory://"), "warn")
    worker.on_setup_root_logger(root_at_warn, logging.WARN)
    assert root_at_warn.level == logging.WARN
    assert not root_at_warn.isEnabledFor(logging.DEBUG)
    assert len(root_at_warn.handlers) == 1  # no spinner handler added
