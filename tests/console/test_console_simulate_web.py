"""The console's Simulate page on the in-memory twins: CSRF, validation, one run at a time off
the event loop, the report and its chart."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from agents.api_access import ApiAccess
from agents.console.app import Console
from agents.console.simulate import Simulator
from app.console.session import Session, csrf_token, sign
from app.console.simulate import MemorySimulationSource, SimulationRequest
from app.console.sources import MemoryLiftSource, MemoryPolicySource, PolicyView
from app.core.access import Scope
from app.policy.config import default_policy, parse_policy
from app.simulation.report import SimulationReport
from tests.console.test_simulate import TIGHT
from tests.simulation.test_replay import (
    ITEMS,
    OFFERS,
    consent,
    policy_with_push_cap,
    push_requests,
)
from tests.support.api_clients import write_clients
from tests.support.console_login import log_in
from tests.support.waiting import wait_for

pytestmark = pytest.mark.unit

KEY = b"k" * 32
TOKEN = "nbo_analyst-token"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class CountingSource:
    """The twin, counting runs; with ``hold`` set, a run waits until it is released."""

    inner: MemorySimulationSource
    runs: int = 0
    hold: bool = False
    started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def weights(self) -> Mapping[str, float]:
        return self.inner.weights()

    def run(self, request: SimulationRequest) -> SimulationReport:
        self.runs += 1
        self.started.set()
        if self.hold:
            assert self.release.wait(30)
        return self.inner.run(request)


@dataclass
class Setup:
    client: TestClient
    source: CountingSource


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    tokens = write_clients(tmp_path / "tokens", {"analyst": (TOKEN, {Scope.CONSOLE})})
    access = ApiAccess(tokens, 100.0, 100, CollectorRegistry())
    policy = MemoryPolicySource(PolicyView(default_policy(), "test policy", {}))
    current = policy_with_push_cap(3)
    source = CountingSource(
        MemorySimulationSource(push_requests(), ITEMS, OFFERS, current, consent("u1"))
    )
    console = Console(
        access,
        KEY,
        3600,
        False,
        policy,
        MemoryLiftSource(),
        simulator=Simulator(source, max_hours=48, max_events=1000),
    )
    client = TestClient(TestServer(console.application()))
    await client.start_server()
    try:
        response = await log_in(client, TOKEN, allow_redirects=False)
        assert response.status == 303
        yield Setup(client, source)
    finally:
        source.release.set()
        await client.close()


async def form_fields(client: TestClient) -> dict[str, str]:
    """The form's fields as the page fills them (hidden CSRF token included)."""
    page = await client.get("/simulate")
    assert page.status == 200
    text = await page.text()
    return dict(re.findall(r'<input[^>]*name="([^"]+)" value="([^"]*)"', text))


async def test_the_form_is_prefilled_with_the_weights_in_force_and_carries_a_csrf_token(
    setup: Setup,
) -> None:
    fields = await form_fields(setup.client)
    assert fields["w_affinity"] == repr(setup.source.weights()["w_affinity"])
    assert fields["hours"] == "24" and fields["max_events"] == "1000"
    assert len(fields["csrf"]) > 20


async def test_a_candidate_policy_is_simulated_and_shown_side_by_side_with_a_chart(
    setup: Setup,
) -> None:
    fields = await form_fields(setup.client)
    response = await setup.client.post("/simulate", data={**fields, "policy": TIGHT})
    text = await response.text()
    assert response.status == 200, text
    assert "<th>push-3</th><th>push-1</th><th>difference</th>" in text
    messages = (
        '<td>messages</td><td class="num">2</td><td class="num">0</td><td class="num">-2</td>'
    )
    assert messages in text
    assert '<td>suppressed: cap</td><td class="num">2</td><td class="num">4</td>' in text
    chart = re.search(r'src="(/simulate/chart/[^"]+\.png)"', text)
    assert chart is not None
    png = await setup.client.get(chart.group(1))
    assert png.status == 200 and png.content_type == "image/png"
    assert (await png.read()).startswith(PNG_MAGIC)
    assert (await setup.client.get("/simulate/chart/unknown.png")).status == 404


@pytest.mark.parametrize("csrf", [None, "", "forged", "from-another-session"])
async def test_a_post_without_this_session_s_csrf_token_is_refused_and_runs_nothing(
    setup: Setup, csrf: str | None
) -> None:
    fields = {**(await form_fields(setup.client)), "policy": TIGHT}
    if csrf is None:
        del fields["csrf"]
    elif csrf == "from-another-session":  # another login of the same client
        other = sign(KEY, Session("analyst", int(time.time()) + 60))
        fields["csrf"] = csrf_token(KEY, other)
    else:
        fields["csrf"] = csrf
    response = await setup.client.post("/simulate", data=fields)
    assert response.status == 403 and "CSRF" in await response.text()
    assert setup.source.runs == 0


async def test_a_post_without_a_session_goes_to_the_login(setup: Setup) -> None:
    fields = {**(await form_fields(setup.client)), "policy": TIGHT}
    setup.client.session.cookie_jar.clear()
    response = await setup.client.post("/simulate", data=fields, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"
    assert setup.source.runs == 0


async def test_a_policy_that_does_not_validate_is_shown_with_its_error_never_a_500(
    setup: Setup,
) -> None:
    fields = await form_fields(setup.client)
    bad = 'version = "x"\n[caps]\nglobal = [{ max = 1, window = "soon" }]'
    response = await setup.client.post("/simulate", data={**fields, "policy": bad})
    text = await response.text()
    assert response.status == 400 and "invalid duration" in text
    assert "soon" in text  # the typed policy is shown again, to be corrected
    assert setup.source.runs == 0


async def test_one_simulation_at_a_time_and_the_console_answers_meanwhile(setup: Setup) -> None:
    setup.source.hold = True
    fields = {**(await form_fields(setup.client)), "policy": TIGHT}
    first = asyncio.create_task(setup.client.post("/simulate", data=fields))
    assert await asyncio.to_thread(setup.source.started.wait, 30)
    second = await setup.client.post("/simulate", data=fields)
    assert second.status == 409 and "a simulation is running" in await second.text()
    assert (await setup.client.get("/healthz")).status == 200
    assert (await setup.client.get("/policy")).status == 200
    setup.source.release.set()
    response = await first
    assert response.status == 200 and "push-1" in await response.text()
    assert setup.source.runs == 1


async def test_a_simulation_that_cannot_run_says_why(setup: Setup) -> None:
    setup.source.inner.events = []
    fields = {**(await form_fields(setup.client)), "policy": TIGHT}
    response = await setup.client.post("/simulate", data=fields)
    text = await response.text()
    assert response.status == 422 and "no events to replay" in text


async def test_a_run_whose_request_went_away_still_holds_the_slot_until_it_ends() -> None:
    source = CountingSource(
        MemorySimulationSource(push_requests(), ITEMS, OFFERS, policy_with_push_cap(3)),
        hold=True,
    )
    simulator = Simulator(source)
    request = SimulationRequest(24, 100, 0, parse_policy(TIGHT))
    first = asyncio.create_task(simulator.run(request))
    try:
        assert await asyncio.to_thread(source.started.wait, 30)
        first.cancel()  # the client disconnected: the replay in the thread goes on
        with pytest.raises(asyncio.CancelledError):
            await first
        assert simulator.busy and await simulator.run(request) is None
    finally:
        source.release.set()

    async def free() -> bool:
        return not simulator.busy

    assert await wait_for(free, 30)  # once the held replay has ended
    outcome = await simulator.run(request)
    assert outcome is not None and outcome.report is not None and source.runs == 2
