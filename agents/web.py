"""HTTP views on faust's web server: lookups for channel services, health and metrics.

``GET /users/{user_id}/offers`` (the last published message), ``GET /users/{user_id}/profile``
(n_events, updated_at, vector norm, strongest tags), ``GET /users/{user_id}/decisions`` (the
newest decision records, sent or not, newest first: why the user got this, or nothing),
``GET /healthz`` (the event loop answers; never checks Kafka or Redis), ``GET /readyz``
(partitions assigned, catalogue loaded, Redis reachable), ``GET /metrics`` (Prometheus
text). Unknown users get a JSON 404.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import numpy as np
from prometheus_client import generate_latest

from app.core.fields import USER_ID_PATTERN
from app.core.messages import addressed
from app.core.reasons import strongest_tags

if TYPE_CHECKING:
    from agents.worker import Worker

_USER_ID = re.compile(USER_ID_PATTERN)
PROMETHEUS_TEXT = "text/plain; version=0.0.4"  # aiohttp rejects a charset parameter here


def register_views(worker: Worker) -> None:
    """Add the views to ``worker.app``."""
    app = worker.app

    def bad_user(view: Any, user_id: str) -> Any:
        if _USER_ID.match(user_id):
            return None
        return view.json({"error": "invalid user id", "user_id": user_id[:128]}, status=400)

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

    async def user_offers(self: Any, request: Any, user_id: str) -> Any:
        invalid = bad_user(self, user_id)
        if invalid is not None:
            return invalid
        state = (await worker.store.load([user_id]))[user_id]
        if state.offers_json is None:
            return self.json({"error": "no offers for this user", "user_id": user_id}, status=404)
        # the stored copy names the user's pseudonym when ids are pseudonymised
        return self.bytes(addressed(state.offers_json, user_id), content_type="application/json")

    async def user_profile(self: Any, request: Any, user_id: str) -> Any:
        invalid = bad_user(self, user_id)
        if invalid is not None:
            return invalid
        state = (await worker.store.load([user_id]))[user_id]
        profile = state.profile
        if profile is None:
            return self.json({"error": "unknown user", "user_id": user_id}, status=404)
        tags = strongest_tags(profile.vec, worker.catalogue, n=5)
        return self.json(
            {
                "user_id": user_id,
                "n_events": profile.n_events,
                "updated_at": profile.updated_at_ms,
                "vector_dim": profile.dim,
                "vector_norm": float(np.linalg.norm(profile.vec)),
                "strongest_tags": [{"tag": t, "score": round(s, 4)} for t, s in tags],
            }
        )

    async def user_decisions(self: Any, request: Any, user_id: str) -> Any:
        invalid = bad_user(self, user_id)
        if invalid is not None:
            return invalid
        records = await worker.store.decisions(user_id)
        body = b'{"user_id":%s,"decisions":[%s]}' % (
            json.dumps(user_id).encode(),
            b",".join(records),
        )
        return self.bytes(body, content_type="application/json")

    app.page("/healthz")(healthz)
    app.page("/readyz")(readyz)
    app.page("/metrics")(metrics)
    app.page("/users/{user_id}/offers")(user_offers)
    app.page("/users/{user_id}/profile")(user_profile)
    app.page("/users/{user_id}/decisions")(user_decisions)
