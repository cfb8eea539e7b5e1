"""The faust ``Worker`` that runs an app in this process, without faust's terminal spinner.

faust's ``Worker`` draws a progress spinner during startup and, to drive it, lowers the root
logger to DEBUG whenever the log level is WARN or above (``--loglevel warn``, ``error``,
``crit``) with a handler that draws one spinner step per record. The root logger stays at
DEBUG after startup, so every ``log.debug`` call of aiokafka, faust and mode then builds a
``LogRecord`` that the handlers drop (aiokafka's fetcher logs each partition of each fetch
request): 3-6 % of a worker's CPU per event at ``--loglevel warn``, measured in alternating
100,000-event drains (0.0871 and 0.0834 CPU seconds per 1k events with the spinner, 0.0822 and
0.0806 without). Without the spinner the root logger gets the level asked for.
"""

from __future__ import annotations

from typing import Any

import faust


def faust_worker(app: faust.App, loglevel: str, **kwargs: Any) -> faust.Worker:
    """A ``faust.Worker`` for ``app`` at ``loglevel`` whose root logger stays at that level
    (``kwargs`` go to ``faust.Worker``)."""
    worker = faust.Worker(app, loglevel=loglevel, **kwargs)
    worker.spinner = None  # faust checks it before installing the DEBUG spinner handler
    return worker
