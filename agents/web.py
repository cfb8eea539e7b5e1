"""HTTP views on faust's web server: lookups for channel services, health and metrics.

``GET /users/{user_id}/offers`` (the last published message), ``GET /users/{user_id}/profile``
(n_events, updated_at, vector norm, strongest tags), ``GET /users/{user_id}/decisions`` (the
newest decision records, sent or not, newest first: why the user got this, or nothing),
``GET /healthz`` (the event loop answers; never checks Kafka or Redis), ``GET /readyz``
(partitions assigned, catalogue loaded, Redis reachable), ``GET /metrics`` (Prometheus
text, no user data).

Every ``/users/...`` view first asks :class:`agents.api_access.ApiAccess`: no or a wrong
bearer token is a 401, a token without the endpoint's scope a 403, a client over its rate a
429 with ``Retry-After`` (each with a JSON error and nothing about the user, not even whether
the id is valid). A user without data, known or not, gets the same 404, so the API does not
reveal who exists. faust's own routes (``/router``, ``/table``, statistics) are off
(:mod:`agents.app`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from prometheus_client import generate_latest

from agents.api_access import ApiAccess
from app.core.access import Scope
from app.core.fields import USER_ID_PATTERN
from app.core.messages import addressed
from app.core.reasons import strongest_tags

if TYPE_CHECKING:
    from agents.worker import Worker

_USER_ID = re.compile(USER_ID_PATTERN)
PROMETHEUS_TEXT = "text/plain; version=0.0.4"  # aiohttp rejects a charset parameter here


NO_DATA = "no data for this user"
"""The one answer for an unknown user and a known user without the data asked for."""


def register_views(worker: Worker) -> None:
    """Add the views to ``worker.app``."""
    app = worker.app
    settings = worker.settings
    access = ApiAccess(
        settings.api_tokens_file,
        settings.api_rate_per_s,
        settings.api_burst,
        worker.metrics.registry,
    )

    def bad_user(view: Any, user_id: str) -> Any:
        if _USER_ID.match(user_id):
            return None
        return view.json({"error": "invalid user id"}, status=400)

    async def guarded(
        view: Any,
        request: Any,
        scope: Scope,
        endpoint: str,
        user_id: str,
        serve: Callable[[], Awaitable[Any]],
    ) -> Any:
        answer = access.check(request.headers.get("Authorization"), scope, endpoint)
        if answer.status != 200:
            headers = {}
            if answer.status == 401:
                headers["WWW-Authenticate"] = 'Bearer realm="nbo-stream"'
            if answer.retry_after is not None:
                headers["Retry-After"] = answer.retry_after
            return view.json({"error": answer.error}, status=answer.status, headers=headers)
        response = bad_user(view, user_id) or await serve()
        access.record(answer, endpoint, int(response.status))
        return response

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

    async def offers_of(view: Any, user_id: str) -> Any:
        state = (await worker.store.load([user_id]))[user_id]
        if state.offers_json is None:
            return view.json({"error": NO_DATA}, status=404)
        # the stored copy names the user's pseudonym when ids are pseudonymised
        return view.bytes(addressed(state.offers_json, user_id), content_type="application/json")

    async def profile_of(view: Any, user_id: str) -> Any:
        state = (await worker.store.load([user_id]))[user_id]
        profile = state.profile
        if profile is None:
            return view.json({"error": NO_DATA}, status=404)
        tags = strongest_tags(profile.vec, worker.catalogue, n=5)
        return view.json(
            {
                "user_id": user_id,
                "n_events": profile.n_events,
                "updated_at": profile.updated_at_ms,
                "vector_dim": profile.dim,
                "vector_norm": float(np.linalg.norm(profile.vec)),
                "strongest_tags": [{"tag": t, "score": round(s, 4)} for t, s in tags],
            }
        )

    async def decisions_of(view: Any, user_id: str) -> Any:
        records = await worker.store.decisions(user_id)
        body = b'{"user_id":%s,"decisions":[%s]}' % (
            json.dumps(user_id).encode(),
            b",".join(records),
        )
        return view.bytes(body, content_type="application/json")

    async def user_offers(self: Any, request: Any, user_id: str) -> Any:
        return await guarded(
            self, request, Scope.OFFERS, "offers", user_id, lambda: offers_of(self, user_id)
        )

    async def user_profile(self: Any, request: Any, user_id: str) -> Any:
        return await guarded(
            self, request, Scope.PROFILE, "profile", user_id, lambda: profile_of(self, user_id)
        )

    async def user_decisions(self: Any, request: Any, user_id: str) -> Any:
        return await guarded(
            self,
            request,
            Scope.DECISIONS,
            "decisions",
            user_id,
            lambda: decisions_of(self, user_id),
        )

    app.page("/healthz")(healthz)
    app.page("/readyz")(readyz)
    app.page("/metrics")(metrics)
    app.page("/users/{user_id}/offers")(user_offers)
    app.page("/users/{user_id}/profile")(user_profile)
    app.page("/users/{user_id}/decisions")(user_decisions)
