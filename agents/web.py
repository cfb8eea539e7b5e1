"""HTTP views on the worker's faust web server: health, readiness and metrics only.

``GET /healthz`` (the event loop answers; never checks Kafka or Redis), ``GET /readyz``
(partitions assigned, catalogue loaded, Redis reachable), ``GET /metrics`` (Prometheus
text, no user data). The person lookups are not served here but by ``nbo api``
(:mod:`agents.api`), so that no client can slow the event stream down; faust's own routes
(``/router``, ``/table``, statistics) are off (:mod:`agents.app`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import generate_latest

if TYPE_CHECKING:
    from agents.worker import Worker

PROMETHEUS_TEXT = "text/plain; version=0.0.4"  # aiohttp rejects a charset parameter here


def register_views(worker: Worker) -> None:
    """Add the views to ``worker.app``."""
    app = worker.app

    async def healthz(self: Any, request: Any) -> Any:
        return self.json({"status": "ok"})

    async def readyz(self: Any, request: Any) -> Any:
        assigned = len(app.consumer.assignment()) if app.consumer is not None else 0
        checks = {
            "partitions_assigned": assigned,
            "catalogue_loaded": worker.feed.ready.is_set(),
            "redis": await worker.store.ping(),
        }
        ok = assigned > 0 and checks["catalogue_loaded"] and checks["redis"]
        return self.json({"ready": ok, **checks}, status=200 if ok else 503)

    async def metrics(self: Any, request: Any) -> Any:
        return self.bytes(generate_latest(worker.metrics.registry), content_type=PROMETHEUS_TEXT)

    app.page("/healthz")(healthz)
    app.page("/readyz")(readyz)
    app.page("/metrics")(metrics)
