"""The console's Simulate page (``/simulate``): the web handlers, the runner that keeps the
simulation off the event loop, and the production source.

* ``GET /simulate``: the form (candidate policy as TOML, the ``NBO_W_*`` weights prefilled
  with those in force, hours of ``user-events``, events kept, seed) with a CSRF token bound to
  the session (:func:`app.console.session.csrf_token`).
* ``POST /simulate``: refused with 403 unless the form's CSRF token is the session's; then
  validated (:func:`app.console.simulate.parse_form`; errors are shown with 400, never a
  500); a second simulation while one runs is refused with 409; else the replay runs in an
  executor (a thread by default: the event loop keeps answering) and the report is shown as
  tables and a chart (``app/simulation/plot.py``'s PNG, kept in memory for the last few runs
  and served at ``/simulate/chart/<id>.png``).

The production source (:class:`TopicSimulationSource`) is ``nbo simulate --from-topic``:
the configuration in force built as a worker builds it, the last hours of the events topic
(at most ``NBO_CONSOLE_SIMULATE_MAX_EVENTS`` of them, the newest) with the consent and
catalogue topics, read by a plain consumer that commits nothing; nothing is written.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from app.commands.simulate import SimulateOptions, run_simulate
from app.commands.topic_source import TopicSourceError
from app.console.session import COOKIE_NAME, CSRF_FIELD, csrf_ok, csrf_token
from app.console.simulate import (
    MAX_POLICY_CHARS,
    SimulationRequest,
    SimulationSource,
    candidate_of,
    parse_form,
    report_rows,
    top_offer_rows,
)
from app.core.scoring import ScoringConfig
from app.pipeline.config import pipeline_config
from app.settings import Settings
from app.simulation.report import SimulationReport

if TYPE_CHECKING:
    from agents.console.app import Console

log = logging.getLogger(__name__)

PAGE = "simulate"
CHARTS_KEPT = 4
"""Charts of the latest simulations kept in memory (older ones are gone: 404)."""
DEFAULT_HOURS = 24.0


@dataclass
class TopicSimulationSource:
    """``nbo simulate --from-topic --hours N`` on the settings in force (module doc)."""

    settings: Settings

    def weights(self) -> Mapping[str, float]:
        return {name: float(getattr(self.settings, name)) for name in ScoringConfig.weight_names()}

    def run(self, request: SimulationRequest) -> SimulationReport:
        current = pipeline_config(self.settings)
        options = SimulateOptions(
            from_topic=True,
            hours=request.hours,
            max_events=request.max_events,
            seed=request.seed,
            progress=False,
        )
        return run_simulate(self.settings, options, candidate_of(current, request))


def simulate_and_draw(
    source: SimulationSource, request: SimulationRequest
) -> tuple[SimulationReport, bytes]:
    """Run the simulation and draw its chart (PNG bytes): the job the executor runs."""
    from app.simulation.plot import plot_simulation

    report = source.run(request)
    with tempfile.TemporaryDirectory(prefix="nbo-console-") as folder:
        path = plot_simulation(report, Path(folder) / "simulation.png")
        return report, path.read_bytes()


@dataclass(frozen=True)
class Outcome:
    """A finished run: the report and its chart's id, or the error to show."""

    report: SimulationReport | None = None
    chart: str | None = None
    error: str | None = None


@dataclass
class Simulator:
    """Runs one simulation at a time off the event loop and keeps the latest charts."""

    source: SimulationSource
    max_hours: float = 168.0
    max_events: int = 50_000
    executor: Executor | None = None
    """``None``: the event loop's default thread pool."""
    busy: bool = False
    charts: OrderedDict[str, bytes] = field(default_factory=OrderedDict)

    async def run(self, request: SimulationRequest) -> Outcome | None:
        """The simulation's outcome, or ``None`` when one is running already. :attr:`busy`
        stays set until the executor's job has ended, even when the request that started it
        is cancelled (the client went away): never two at once."""
        if self.busy:
            return None
        self.busy = True
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(self.executor, simulate_and_draw, self.source, request)
        job.add_done_callback(self._done)
        try:
            report, png = await asyncio.shield(job)
        except (ValueError, TopicSourceError) as exc:
            return Outcome(error=str(exc))
        except Exception:
            log.exception("console: the simulation failed")
            return Outcome(error="the simulation failed (Kafka unavailable?); see the log")
        chart = secrets.token_urlsafe(12)
        self.charts[chart] = png
        while len(self.charts) > CHARTS_KEPT:
            self.charts.popitem(last=False)
        return Outcome(report, chart)

    def _done(self, job: asyncio.Future[tuple[SimulationReport, bytes]]) -> None:
        self.busy = False
        if not job.cancelled():
            job.exception()  # retrieved here too: a cancelled request's job may fail unseen


def _defaults(simulator: Simulator) -> dict[str, str]:
    values = {name: repr(value) for name, value in simulator.source.weights().items()}
    values.update(
        hours=f"{DEFAULT_HOURS:g}", max_events=str(simulator.max_events), seed="0", policy=""
    )
    return values


def _render(
    console: Console,
    request: web.Request,
    client: str,
    values: Mapping[str, str],
    *,
    status: int = 200,
    errors: tuple[str, ...] = (),
    outcome: Outcome | None = None,
) -> web.Response:
    simulator = console.simulator
    report = outcome.report if outcome is not None else None
    return console.render(
        "simulate.html",
        status=status,
        current=PAGE,
        client=client,
        csrf_field=CSRF_FIELD,
        csrf=csrf_token(console.key, request.cookies.get(COOKIE_NAME, "")),
        values=values,
        weight_names=ScoringConfig.weight_names(),
        max_hours=simulator.max_hours,
        max_events=simulator.max_events,
        max_policy_chars=MAX_POLICY_CHARS,
        errors=errors,
        busy=simulator.busy,
        outcome=outcome,
        report=report,
        rows=report_rows(report) if report is not None else [],
        top_offers=top_offer_rows(report) if report is not None else [],
    )


async def simulate_form(console: Console, request: web.Request, client: str) -> web.Response:
    """``GET /simulate``."""
    return _render(console, request, client, _defaults(console.simulator))


async def simulate_post(console: Console, request: web.Request, client: str) -> web.Response:
    """``POST /simulate`` (module doc)."""
    form = await request.post()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    token = values.get(CSRF_FIELD)
    if not csrf_ok(console.key, request.cookies.get(COOKIE_NAME), token):
        return console.render("csrf_refused.html", status=403, current=PAGE, client=client)
    simulator = console.simulator
    parsed = parse_form(
        values,
        simulator.source.weights(),
        max_hours=simulator.max_hours,
        max_events=simulator.max_events,
    )
    shown = {**_defaults(simulator), **parsed.values}
    if parsed.request is None:
        return _render(console, request, client, shown, status=400, errors=parsed.errors)
    outcome = await simulator.run(parsed.request)
    if outcome is None:
        busy = ("a simulation is running; try again when it has finished",)
        return _render(console, request, client, shown, status=409, errors=busy)
    if outcome.error is not None:
        errors = (f"cannot simulate: {outcome.error}",)
        return _render(console, request, client, shown, status=422, errors=errors)
    return _render(console, request, client, shown, outcome=outcome)


async def simulate_chart(console: Console, request: web.Request, client: str) -> web.Response:
    """``GET /simulate/chart/<id>.png``: a kept chart, else 404."""
    png = console.simulator.charts.get(request.match_info["chart"])
    if png is None:
        raise web.HTTPNotFound()
    return web.Response(body=png, content_type="image/png")
