"""The console's Person page (``/person``): the web handler and the production source.

Access: the session's client must hold ``decisions:read`` as well as ``console`` in the tokens
file, checked on every request (as the session check does for ``console``); without it a 403
page names the missing scope and nothing about the user is read. Lookups are charged to the
client's token bucket, as the API's are (``NBO_API_RATE_PER_S``, ``NBO_API_BURST``): beyond
it, 429 with ``Retry-After`` and no lookup. Every answer of the page is
audit-logged on ``nbo.access`` by the console's guard, with ``person=<keyed hash of the user
id>`` when a user was looked up (:func:`app.console.person.audit_subject`), never the id.

The production source reads what ``nbo api``'s lookups read: the Redis store
(:class:`~app.storage.redis_store.RedisProfileStore`, one pipeline of the user's keys and one
read of the decision records) and the item catalogue followed from its topics
(:class:`~agents.catalog_feed.CatalogueFeed`) for the strongest tags.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from aiohttp import web
from redis.asyncio.cluster import RedisCluster

from agents.app import store_config
from agents.catalog_feed import CatalogueFeed
from agents.metrics import WorkerMetrics
from app.connections import kafka_client_kwargs, redis_client
from app.console.person import (
    MAX_USER_ID_CHARS,
    PersonData,
    StorePersonSource,
    audit_subject,
    person_view,
    valid_user_id,
)
from app.core.access import Scope, retry_after
from app.core.catalog import Catalogue
from app.policy.config import PolicyError
from app.ports import StoreUnavailable
from app.settings import Settings
from app.storage.redis_store import RedisProfileStore

if TYPE_CHECKING:
    from agents.console.app import Console

log = logging.getLogger(__name__)

FEED_RETRY_S = 5.0
"""Pause before following the catalogue again after the feed failed (Kafka unavailable)."""
PAGE = "person"
TOO_MANY = "Too many lookups: wait a moment (NBO_API_RATE_PER_S, NBO_API_BURST)."


@dataclass
class RedisPersonSource:
    """The Person page's production source (module doc). No network until used; call
    :meth:`follow` as a task to keep the catalogue current, :meth:`close` at the end."""

    redis: aioredis.Redis | RedisCluster
    store: RedisProfileStore
    catalogue: Catalogue
    feed: CatalogueFeed
    _source: StorePersonSource = field(init=False)

    def __post_init__(self) -> None:
        self._source = StorePersonSource(self.store, self.catalogue)

    async def person(self, user_id: str) -> PersonData:
        return await self._source.person(user_id)

    async def follow(self) -> None:
        """Follow the catalogue topics until cancelled, starting again after a failure."""
        while True:
            try:
                await self.feed.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("console: cannot follow the catalogue (%s); again in 5 s", exc)
                await asyncio.sleep(FEED_RETRY_S)

    async def close(self) -> None:
        await self.redis.aclose()


def redis_person_source(settings: Settings) -> RedisPersonSource:
    """The production source of ``settings`` (the lookups' store configuration)."""
    redis = redis_client(settings)
    catalogue = Catalogue(dim=settings.vector_dim)
    feed = CatalogueFeed(
        kafka_client_kwargs(settings),
        settings.topic_item_catalog,
        settings.topic_offer_catalog,
        catalogue,
        WorkerMetrics(),
    )
    return RedisPersonSource(
        redis, RedisProfileStore(redis, store_config(settings)), catalogue, feed
    )


async def person_page(console: Console, request: web.Request, client: str) -> web.Response:
    """``GET /person`` (the form) and ``GET /person?user=<id>`` (the page of one user)."""
    common: dict[str, Any] = {"current": PAGE, "client": client}
    if Scope.DECISIONS not in console.access.scopes_of(client):
        if "user" in request.query:
            console.audit(request, "person=-")
        return console.render(
            "scope_missing.html", status=403, scope=Scope.DECISIONS.value, **common
        )
    user = request.query.get("user")
    if user is None:
        return console.render("person.html", user="", view=None, error=None, **common)
    if not valid_user_id(user):
        console.audit(request, "person=-")
        error = f"not a user id (1 to {MAX_USER_ID_CHARS} characters of A-Z a-z 0-9 . _ : @ -)"
        return console.render("person.html", status=400, user="", view=None, error=error, **common)
    wait = console.access.charge(client)  # the client's lookup rate, as for the API's
    if wait > 0:
        console.audit(request, "person=-")
        response = console.render(
            "person.html", status=429, user=user, view=None, error=TOO_MANY, **common
        )
        response.headers["Retry-After"] = retry_after(wait)
        return response
    console.audit(request, f"person={audit_subject(console.audit_key or console.key, user)}")
    try:
        policy = console.policy.policy_view().policy
    except PolicyError as exc:
        return console.render("policy_error.html", status=500, error=exc, **common)
    try:
        data = await console.person.person(user)
    except StoreUnavailable as exc:
        log.warning("console: person lookup failed: %s", exc)
        error = "Redis does not answer now; try again shortly."
        return console.render(
            "person.html", status=503, user=user, view=None, error=error, **common
        )
    view = person_view(data, policy, int(console.clock() * 1000))
    return console.render("person.html", user=user, view=view, error=None, **common)
