"""The Overview and Offers pages and the charts, on the in-memory twins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from agents.api_access import ApiAccess
from agents.console.app import Console
from agents.console.monitor import Monitor
from app.console.feeds import MemoryKafkaSource, MemoryOfferSource, OfferData, Sampled
from app.console.history import History, Scrape, key
from app.console.lift import ChannelCounts, GroupCounts
from app.console.overview import (
    DEAD_LETTERED,
    DECISIONS,
    RECEIVED,
    SENT_BY_GROUP,
    SENT_BY_OFFER,
    SUPPRESSED,
    DeadLetter,
    DeadLetters,
    KafkaView,
    PartitionLag,
    WorkerStatus,
)
from app.console.sources import LiftCounts, MemoryLiftSource, MemoryPolicySource, PolicyView
from app.core.access import Scope
from app.core.exploration import ExplorationConfig, OfferStats
from app.policy.config import default_policy
from tests.support.api_clients import write_clients
from tests.support.console_login import log_in

pytestmark = pytest.mark.unit

TOKEN = "nbo_console-operator-token"
KEY = b"k" * 32
NOW_S = 1_800_000_000.0
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sampled() -> Sampled:
    """Ten minutes of one worker at 3 events/s, sending 1 push and 0.5 email a second ..."""
    state = Sampled(History(400), posteriors=History(400, gauges=True))
    for i in range(61):  # every 10 s
        values = {
            key(RECEIVED): 30.0 * i,
            key(DEAD_LETTERED, reason="InvalidJson"): 1.0 * i,
            key(SENT_BY_GROUP, group="personalised", channel="push"): 10.0 * i,
            key(SENT_BY_GROUP, group="personalised", channel="email"): 5.0 * i,
            key(DECISIONS, outcome="sent"): 15.0 * i,
            key(DECISIONS, outcome="suppressed"): 4.0 * i,
            key(SUPPRESSED, reason="quiet_hours"): 4.0 * i,
            key(SENT_BY_OFFER, offer="o1"): 9.0 * i,
            key(SENT_BY_OFFER, offer="o/2"): 6.0 * i,
        }
        state.record_posteriors(NOW_S - 600 + 10 * i, {"o1": 0.1 + i / 1000})
        state.record(
            NOW_S - 600 + 10 * i,
            [Scrape("http://w1:6066/metrics", values)],
            [
                WorkerStatus("http://w1:6066/metrics", True, NOW_S - 3600, NOW_S - 2),
                WorkerStatus("http://w2:6066/metrics", False),
            ],
        )
    return state


KAFKA = KafkaView(
    (PartitionLag(0, 120, 100, 20), PartitionLag(1, 80, None, 80)),
    DeadLetters(
        57,
        (
            DeadLetter(
                0, 56, "SchemaViolation", "field ts: <b>bad</b>", "user-events/1@9", "2026-12-05"
            ),
        ),
    ),
)
OFFERS = OfferData(
    {
        "o1": OfferStats(200.0, 30.0, 20.0, int(NOW_S * 1000)),
        "o/2": OfferStats(100.0, 1.0, 1.0, int(NOW_S * 1000)),
    },
    {"o1": "Sci-fi weekend", "o/2": "Slash & burn"},
    12,
)


@dataclass
class Setup:
    client: TestClient
    console: Console


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    tokens = write_clients(tmp_path / "tokens", {"ops": (TOKEN, {Scope.CONSOLE})})
    access = ApiAccess(tokens, 100.0, 100, CollectorRegistry(), clock=lambda: NOW_S)
    lift = MemoryLiftSource(
        LiftCounts(
            (
                ChannelCounts("push", GroupCounts(7000, 700), GroupCounts(800, 40)),
                ChannelCounts("all", GroupCounts(7000, 700), GroupCounts(800, 40)),
            ),
            3.0,
        )
    )
    policy = MemoryPolicySource(PolicyView(default_policy(), "test policy", {}))
    monitor = Monitor(
        sampled(),
        MemoryKafkaSource(KAFKA),
        MemoryOfferSource(OFFERS),
        ExplorationConfig(),
        clock=lambda: NOW_S,
    )
    console = Console(access, KEY, 3600, False, policy, lift, clock=lambda: NOW_S, monitor=monitor)
    client = TestClient(TestServer(console.application()))
    await client.start_server()
    try:
        response = await log_in(client, TOKEN, allow_redirects=False)
        assert response.status == 303
        yield Setup(client, console)
    finally:
        await client.close()


async def page(setup: Setup, path: str, status: int = 200) -> str:
    response = await setup.client.get(path)
    assert response.status == status, path
    return await response.text()


async def test_home_leads_to_the_overview_first_in_the_navigation(setup: Setup) -> None:
    response = await setup.client.get("/", allow_redirects=False)
    assert response.headers["Location"] == "/overview"
    text = await page(setup, "/overview")
    nav = text.split("<nav>")[1].split("</nav>")[0]
    assert nav.index("/overview") < nav.index("/offers") < nav.index("/lift")


async def test_the_overview_shows_rates_lag_dead_letters_channels_decisions_workers(
    setup: Setup,
) -> None:
    text = await page(setup, "/overview")
    events = text.split('class="events"')[1].split("</table>")[0]
    assert '<td>received</td><td class="num">3.00</td>' in events
    assert "last hour (since the console started: 10 min)" in text
    assert 'class="total-lag">100<' in text and "none yet" in text
    assert 'class="dead-total">57<' in text
    assert "SchemaViolation" in text and "user-events/1@9" in text
    assert "&lt;b&gt;bad&lt;/b&gt;" in text  # a message is text, never markup
    channels = text.split('class="channels"')[1].split("</table>")[0]
    assert '<td>push</td><td class="num">300</td><td class="num">600</td>' in channels
    assert '<td>email</td><td class="num">150</td>' in channels
    decisions = text.split('class="decisions"')[1].split("</table>")[0]
    assert 'suppressed: quiet_hours</td><td class="num">120</td>' in decisions
    workers = text.split('class="workers"')[1].split("</table>")[0]
    assert "http://w1:6066/metrics" in workers and "not answering" in workers
    assert '<img src="/charts/events.png"' in text


async def test_the_offers_page_lists_each_offer_and_sorts_by_a_column(setup: Setup) -> None:
    text = await page(setup, "/offers")
    assert "Sci-fi weekend" in text and "Slash &amp; burn" in text
    assert "summed over the 12 partitions" in text and "decayed" in text
    o1 = text.split("Sci-fi weekend")[1].split("</tr>")[0]
    # sent 540, last hour 540, 200 impressions, click rate 15 %, acceptance rate 10 %;
    # Beta(1 + 30, 9 + 170): mean 31/210 = 14.76 %, exploration share 10/210 = 4.76 %
    for figure in ("540", "200.0", "15.00 %", "10.00 %", "4.76 %", "14.76 %"):
        assert figure in o1, figure
    by_sent = await page(setup, "/offers?sort=sent&dir=asc")
    assert by_sent.index("Slash &amp; burn") < by_sent.index("Sci-fi weekend")
    by_sent = await page(setup, "/offers?sort=sent&dir=desc")
    assert by_sent.index("Sci-fi weekend") < by_sent.index("Slash &amp; burn")
    assert await page(setup, "/offers?sort=__init__&dir=x")  # ignored, the default order


async def test_a_large_catalogue_is_shown_a_page_at_a_time(setup: Setup) -> None:
    titles = {f"x{i:03}": f"Title {i:03}" for i in range(150)}
    setup.console.monitor.offers = MemoryOfferSource(OfferData({}, titles, 12))
    first = await page(setup, "/offers?sort=offer&dir=asc")
    # and o1, o/2 of the sampled sends: 152, "o..." before "x..."
    assert "152 offers, page 1 of 2" in first and "Title 097" in first
    assert "Title 098" not in first
    assert 'href="/offers?sort=offer&amp;dir=asc&amp;page=2">next' in first
    second = await page(setup, "/offers?sort=offer&dir=asc&page=2")
    assert "Title 098" in second and "Title 149" in second and "Title 097" not in second


async def test_an_offer_has_its_page_and_chart_even_with_a_slash_in_its_id(setup: Setup) -> None:
    listing = await page(setup, "/offers")
    assert 'href="/offers/o%2F2"' in listing
    text = await page(setup, "/offers/o%2F2")
    assert "Slash &amp; burn" in text and '<img src="/charts/offers/o%2F2.png"' in text
    chart = await setup.client.get("/charts/offers/o%2F2.png")
    assert chart.status == 200 and chart.content_type == "image/png"
    assert (await chart.read()).startswith(PNG_MAGIC)
    await page(setup, "/offers/no-such-offer", status=404)


async def test_an_offers_posterior_over_time_is_charted_when_sampled(setup: Setup) -> None:
    text = await page(setup, "/offers/o1")
    assert '<img src="/charts/posteriors/o1.png"' in text
    chart = await setup.client.get("/charts/posteriors/o1.png")
    assert chart.status == 200 and (await chart.read()).startswith(PNG_MAGIC)
    setup.console.monitor.sampled.posteriors = None
    assert "/charts/posteriors/" not in await page(setup, "/offers/o1")
    assert (await setup.client.get("/charts/posteriors/o1.png")).status == 404


@pytest.mark.parametrize("chart", ["events.png", "channels.png", "lift.png"])
async def test_the_charts_are_pngs_behind_the_session(setup: Setup, chart: str) -> None:
    response = await setup.client.get(f"/charts/{chart}")
    assert response.status == 200 and response.content_type == "image/png"
    assert (await response.read()).startswith(PNG_MAGIC)
    setup.client.session.cookie_jar.clear()
    anonymous = await setup.client.get(f"/charts/{chart}", allow_redirects=False)
    assert anonymous.status == 303


async def test_the_lift_page_has_one_row_per_channel_and_its_chart(setup: Setup) -> None:
    text = await page(setup, "/lift")
    assert '<td rowspan="2">push</td>' in text and '<td rowspan="2">all</td>' in text
    assert '<img src="/charts/lift.png"' in text


async def test_the_pages_without_data_say_so(setup: Setup) -> None:
    setup.console.monitor = Monitor(clock=lambda: NOW_S)
    overview = await page(setup, "/overview")
    assert "Nothing sent yet." in overview and "Not sampled yet." in overview
    assert "no two samples yet" in overview
    assert "No offers yet" in await page(setup, "/offers")


async def test_a_broker_that_does_not_answer_is_named(setup: Setup) -> None:
    setup.console.monitor.kafka = MemoryKafkaSource(KafkaView(error="the broker did not answer"))
    assert "the broker did not answer" in await page(setup, "/overview")


@pytest.mark.parametrize("path", ["/overview", "/offers", "/offers/o1", "/lift"])
async def test_the_pages_need_no_inline_style_or_script_under_the_policy(
    setup: Setup, path: str
) -> None:
    response = await setup.client.get(path)
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")
    text = await response.text()
    assert "style=" not in text and "<style" not in text and "<script" not in text
    assert "http" not in text.split("</head>")[0]
