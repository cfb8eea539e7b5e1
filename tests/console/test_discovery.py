"""The console reads every worker behind a name: one configured URL per resolved address."""

from __future__ import annotations

import pytest

from agents.console.discovery import resolve_urls
from app.console.discovery import MAX_ENDPOINTS, expand, host_of, with_address

pytestmark = pytest.mark.unit

WORKERS = "http://nbo-stream-workers:6066/metrics"


def test_a_headless_service_name_becomes_one_url_per_pod_address() -> None:
    addresses = {"nbo-stream-workers": ["10.0.0.7", "10.0.0.5", "10.0.0.7"]}
    assert expand([WORKERS], addresses) == [
        "http://10.0.0.5:6066/metrics",
        "http://10.0.0.7:6066/metrics",
    ]


def test_a_literal_address_and_an_unresolved_name_stay_as_written() -> None:
    urls = ["http://127.0.0.1:6066/metrics", WORKERS]
    assert expand(urls, {"nbo-stream-workers": []}) == urls
    assert host_of("http://127.0.0.1:6066/metrics") is None
    assert host_of("http://[::1]:6066/metrics") is None
    assert host_of(WORKERS) == "nbo-stream-workers"


def test_ipv6_addresses_are_bracketed_and_the_path_and_query_kept() -> None:
    assert (
        with_address("https://w:8443/metrics?x=1", "fd00::2")
        == "https://[fd00::2]:8443/metrics?x=1"
    )
    assert with_address("http://w/metrics", "10.1.2.3") == "http://10.1.2.3/metrics"


def test_a_resolver_answering_with_thousands_of_addresses_is_cut_to_the_bound() -> None:
    addresses = {"nbo-stream-workers": [f"10.0.{i // 250}.{i % 250}" for i in range(5000)]}
    assert len(expand([WORKERS], addresses)) == MAX_ENDPOINTS


async def test_localhost_resolves_to_its_loopback_addresses() -> None:
    urls = await resolve_urls(["http://localhost:6066/metrics", "http://10.9.8.7:1/metrics"])
    assert "http://127.0.0.1:6066/metrics" in urls
    assert urls[-1] == "http://10.9.8.7:1/metrics"
    assert all("localhost" not in u for u in urls)


async def test_a_name_that_does_not_resolve_keeps_its_url() -> None:
    url = "http://no-such-host.invalid:6066/metrics"
    assert await resolve_urls([url]) == [url]


async def test_the_lift_source_reads_every_address_behind_a_worker_name() -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from agents.console.sources import MetricsLiftSource

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text="nbo_offers_sent_by_group_total 0\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    port = server.port
    source = MetricsLiftSource([f"http://localhost:{port}/metrics"])
    try:
        counts = await source.lift_counts()
    finally:
        await source.close()
        await server.close()
    assert counts.read == (f"http://127.0.0.1:{port}/metrics",)
