"""The lookups of a real ``nbo api`` beside a real worker, probed as an attacker and an auditor
would: no token, a wrong token, a token of the wrong scope, the right one, a burst, a revoked
token, who exists, and the worker's faust routes; the access log and metrics name the client
and never the token."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from app.commands.tokens import create_client
from app.core.access import Scope
from tests.integration.test_worker_end_to_end import catalogue_records, event
from tests.support.kafka_io import create_topics_with_catalogue, produce, read_topic
from tests.support.waiting import wait_for
from tests.support.worker import ApiProcess, WorkerEnv, WorkerProcess

pytestmark = pytest.mark.integration


def get(port: int, path: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return int(resp.status), dict(resp.headers), bytes(resp.read())
    except urllib.error.HTTPError as err:
        return int(err.code), dict(err.headers), bytes(err.read())


async def test_lookups_need_a_valid_token_with_the_right_scope_and_a_fair_rate(
    kafka_bootstrap: str, redis_url: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    env = WorkerEnv(
        kafka_bootstrap,
        redis_url,
        unique("api"),
        extra={"NBO_API_RATE_PER_S": "1", "NBO_API_BURST": "5"},
    )
    s = env.settings()
    push = create_client(env.tokens_file, "push", [Scope.OFFERS])
    await create_topics_with_catalogue(kafka_bootstrap, s, *catalogue_records())
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    api = ApiProcess(env, tmp_path / "api.log").start()
    port, alice = env.api_port, f"alice-{env.token}"
    try:
        worker.wait_ready()
        api.wait_ready()
        await produce(kafka_bootstrap, s.topic_user_events, [event("a1", alice, "i0")])
        assert await read_topic(kafka_bootstrap, s.topic_offers, expect=1), worker.tail()
        offers_path = f"/users/{alice}/offers"

        for token in (None, "nbo_guessed", push + "x"):
            status, headers, body = get(port, offers_path, token)
            assert status == 401 and headers.get("WWW-Authenticate", "").startswith("Bearer")
            assert alice.encode() not in body and b"offer" not in body
        status, _, body = get(port, f"/users/{alice}/decisions", push)  # offers:read only
        assert status == 403 and alice.encode() not in body
        status, _, body = get(port, "/users/bad%0Aid/offers")  # unauthenticated: no hint
        assert status == 401

        status, _, body = get(port, offers_path, push)
        assert status == 200 and b'"offer_id":"o0"' in body
        # who exists is not revealed: an unknown user and one without offers look the same
        unknown = get(port, "/users/nobody-at-all/profile", env.api_token)
        objector = get(port, f"/users/{alice}-never-seen/profile", env.api_token)
        assert unknown[0] == objector[0] == 404 and unknown[2] == objector[2]

        # a burst beyond the client's allowance (5 at once, then 1 a second): 429s that say
        # when to come back, each held back until the client's next request would pass, so a
        # client asking again at once is let through: never two 429s in a row, and a flood
        # gets its answers at the client's rate; another client is not affected
        answers = [get(port, offers_path, push) for _ in range(12)]
        statuses = [status for status, _, _ in answers]
        assert statuses.count(429) >= 2 and statuses[0] == 200, statuses
        assert all(int(h["Retry-After"]) >= 1 for st, h, _ in answers if st == 429)
        assert all(a != 429 or b != 429 for a, b in itertools.pairwise(statuses)), statuses
        assert get(port, f"/users/{alice}/profile", env.api_token)[0] == 200

        # revoked: refused within a couple of seconds, without a restart
        await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "agents.cli", "token", "--file", str(env.tokens_file),
             "revoke", "push"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

        async def refused() -> bool:
            return get(port, offers_path, push)[0] == 401

        assert await wait_for(refused, 10)

        # health stays open; metrics are on a port of their own and name no one
        assert get(port, "/healthz")[0] == 200
        assert get(port, "/metrics")[0] == 404
        status, _, metrics = get(env.api_metrics_port, "/metrics")
        assert status == 200 and alice.encode() not in metrics
        assert b'nbo_api_requests_total{client="push",endpoint="offers",status="429"}' in metrics
        assert b'nbo_api_refusals_held_total{client="push"}' in metrics
        assert b'nbo_api_refusals_held_total{client="-"}' in metrics
        # the worker serves no lookups (a flood cannot reach its event loop), nor faust's
        # own routes
        assert get(env.web_port, offers_path, env.api_token)[0] == 404
        for route in ("/router/", "/table/", "/graph/", "/stats/", "/performance/"):
            assert get(env.web_port, route)[0] == 404, route
        assert get(env.web_port, "/healthz")[0] == 200
    finally:
        api.stop()
        worker.stop()
    for log in ("api.log", "worker.log"):
        text = (tmp_path / log).read_text()
        assert push not in text and env.api_token not in text, log
