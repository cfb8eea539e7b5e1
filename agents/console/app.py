"""The console's aiohttp application: login with a bearer token, a signed session cookie,
server-rendered pages (jinja2 templates in ``templates/``, one stylesheet in ``static/``;
nothing is loaded from another origin).

Access: ``/login``, ``/healthz`` and ``/static/console.css`` are open; every other path
needs a live session (:mod:`app.console.session`) of a client that still holds the
``console`` scope in the tokens file, else a 303 to ``/login`` whose body says nothing of the
page. Each answer is logged on ``nbo.access`` (client, page, status; never the token) by
:meth:`agents.api_access.ApiAccess.record`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web
from prometheus_client import CollectorRegistry

from agents.api_access import ANONYMOUS, Answer, ApiAccess
from agents.console.monitor import Monitor, production_monitor
from agents.console.person import RedisPersonSource, person_page, redis_person_source
from agents.console.simulate import (
    Simulator,
    TopicSimulationSource,
    simulate_chart,
    simulate_form,
    simulate_post,
)
from agents.console.sources import MetricsLiftSource, SettingsPolicySource, metrics_urls
from app.console.lift import lift_table
from app.console.pages import policy_sections
from app.console.person import PersonSource, StorePersonSource, utc_text
from app.console.session import (
    COOKIE_NAME,
    CSRF_FIELD,
    Session,
    csrf_ok,
    csrf_token,
    new_key,
    sign,
    verify,
)
from app.console.simulate import MemorySimulationSource
from app.console.sources import LiftSource, PolicySource
from app.core.access import Scope
from app.core.catalog import Catalogue
from app.policy.config import PolicyError
from app.settings import Settings, pseudonym_secret
from app.storage.memory_store import MemoryProfileStore

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
OPEN_PATHS = frozenset({"/login", "/healthz", "/static/console.css"})
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
PAGES = (
    ("overview", "Overview"),
    ("offers", "Offers"),
    ("lift", "Lift"),
    ("policy", "Policy"),
    ("person", "Person"),
    ("simulate", "Simulate"),
)
"""The navigation, in order."""
MAX_TOKEN_CHARS = 512
LOGIN = "console:/login"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CLIENT = web.RequestKey("client", str)
"""The API client of the request's session (or of the login attempt)."""
AUDIT = web.RequestKey("audit", str)
"""More words for the request's access-log line (the Person page's ``person=<hash>``)."""


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_COOKIE = "nbo_console_login"
"""The login form's nonce (see :meth:`Console.login_page`)."""
LOGIN_NONCE_LABEL = "login\x1f"
LOGIN_FORM_S = 1800
"""How long a login form stays good, seconds."""


LOGIN_NONCE = re.compile(r"[A-Za-z0-9_-]{32}")
"""What :func:`new_login_nonce` draws (24 random bytes, base64url)."""


def new_login_nonce() -> str:
    return secrets.token_urlsafe(24)


def same_origin(request: web.Request) -> bool:
    """Whether a state-changing request comes from the console's own pages: its ``Origin``
    (sent by browsers with every form POST), else its ``Referer``, names this host. A request
    with neither (a script, curl) passes: it carries no browser's cookies by accident; the
    forms' CSRF tokens and the SameSite=Strict cookies still apply."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if source is None:
        return True
    if source == "null":
        return False
    return urlsplit(source).netloc == request.host


def redirect(location: str) -> web.Response:
    """A 303 to ``location`` (a body that says nothing)."""
    return web.Response(status=303, headers={"Location": location})


def templates() -> jinja2.Environment:
    """The console's templates (HTML autoescaped; ``path_part`` percent-encodes a value for
    one segment of a path, ``/`` included)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["path_part"] = lambda value: quote(str(value), safe="")
    env.filters["utc"] = utc_text
    return env


@dataclass
class Console:
    """The console's parts: token access, session key, page sources."""

    access: ApiAccess
    key: bytes
    session_s: int
    secure_cookie: bool
    policy: PolicySource
    lift: LiftSource
    clock: Callable[[], float] = time.time
    env: jinja2.Environment = field(default_factory=templates)
    _ended: dict[str, int] = field(default_factory=dict)
    """Cookie values logged out before their expiry (pruned once expired)."""
    monitor: Monitor = field(default_factory=Monitor)
    """The Overview and Offers pages' sources, and the charts."""
    person: PersonSource = field(
        default_factory=lambda: StorePersonSource(MemoryProfileStore(), Catalogue())
    )
    simulator: Simulator = field(
        default_factory=lambda: Simulator(MemorySimulationSource((), (), ()))
    )
    audit_key: bytes | None = None
    """Key of the audit log's hash of a looked-up user id (``None``: :attr:`key`)."""

    def render(self, name: str, status: int = 200, **context: Any) -> web.Response:
        body = self.env.get_template(name).render(pages=PAGES, **context)
        return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")

    def session(self, request: web.Request) -> Session | None:
        """The request's live session, if any."""
        value = request.cookies.get(COOKIE_NAME)
        now = self.clock()
        session = verify(self.key, value, now)
        if session is None or value in self._ended:
            return None
        if Scope.CONSOLE not in self.access.scopes_of(session.client):
            return None  # revoked, or the scope was taken away
        return session

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        page = request.path
        if request.method not in SAFE_METHODS and not same_origin(request):
            return self._answered(request, self.render("cross_site.html", status=403))
        if page not in OPEN_PATHS:
            session = self.session(request)
            if session is None:
                return self._answered(request, redirect("/login"))
            request[CLIENT] = session.client
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            self._answered(request, exc)
            raise
        return self._answered(request, response)

    def _answered(self, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        """Log and count the answer (not the health checks; a login attempt is, by
        :meth:`login`), add the security headers."""
        if request.path != "/healthz" and not (
            request.path == "/login" and request.method == "POST"
        ):
            client = request.get(CLIENT, ANONYMOUS)
            page = f"console:{request.path}"
            detail = request.get(AUDIT, "")
            self.access.record(Answer(response.status, client), page, response.status, detail)
        response.headers.update(SECURITY_HEADERS)
        return response

    def audit(self, request: web.Request, detail: str) -> None:
        """Add ``detail`` to the request's access-log line."""
        request[AUDIT] = detail

    # --- open ----------------------------------------------------------------------------------
    def login_page(
        self, request: web.Request, status: int = 200, error: str | None = None
    ) -> web.Response:
        """The login form with the browser's login nonce: a cookie (``Path=/login``, HttpOnly,
        SameSite=Strict) and its CSRF token in the form, so only a form read by this browser
        can log it in (no login forced from another site). A nonce the browser already holds
        is kept, so that a second load of the page (another tab, the favicon's redirect) does
        not void a form already shown; a new one is drawn after each login."""
        held = request.cookies.get(LOGIN_COOKIE, "")
        nonce = held if LOGIN_NONCE.fullmatch(held) else new_login_nonce()
        response = self.render(
            "login.html",
            status=status,
            error=error,
            csrf_field=CSRF_FIELD,
            csrf=csrf_token(self.key, LOGIN_NONCE_LABEL + nonce),
        )
        response.set_cookie(
            LOGIN_COOKIE,
            nonce,
            max_age=LOGIN_FORM_S,
            path="/login",
            httponly=True,
            samesite="Strict",
            secure=self.secure_cookie,
        )
        return response

    async def login_form(self, request: web.Request) -> web.Response:
        return self.login_page(request)

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        nonce = request.cookies.get(LOGIN_COOKIE)
        proof = form.get(CSRF_FIELD)
        if nonce is None or not csrf_ok(
            self.key, LOGIN_NONCE_LABEL + nonce, proof if isinstance(proof, str) else None
        ):
            self.access.record(Answer(403, ANONYMOUS), LOGIN, 403, "login form not ours")
            return self.login_page(
                request, 403, "This login form expired or came from elsewhere: log in again."
            )
        token = str(form.get("token", "")).strip()[:MAX_TOKEN_CHARS]
        header = f"Bearer {token}" if token else None
        answer = self.access.check(header, Scope.CONSOLE, LOGIN)  # logs a refusal itself
        request[CLIENT] = answer.client
        if answer.status == 403:
            return self.render("forbidden.html", status=403, refused=answer.client)
        if answer.status != 200:
            return self.login_page(request, answer.status, answer.error)
        expires = int(self.clock()) + self.session_s
        response = redirect("/")
        response.del_cookie(LOGIN_COOKIE, path="/login")
        self.access.record(answer, LOGIN, response.status)
        response.set_cookie(
            COOKIE_NAME,
            sign(self.key, Session(answer.client, expires)),
            max_age=self.session_s,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self.secure_cookie,
        )
        return response

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def stylesheet(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(HERE / "static" / "console.css")

    # --- behind the session ----------------------------------------------------------------
    async def logout(self, request: web.Request) -> web.StreamResponse:
        value = request.cookies.get(COOKIE_NAME)
        session = verify(self.key, value, self.clock())
        now = self.clock()
        self._ended = {v: e for v, e in self._ended.items() if e > now}
        if value is not None and session is not None:
            self._ended[value] = session.expires_s
        response = redirect("/login")
        response.del_cookie(COOKIE_NAME, path="/")
        return response

    async def home(self, request: web.Request) -> web.Response:
        return redirect("/overview")

    async def policy_page(self, request: web.Request) -> web.Response:
        try:
            view = self.policy.policy_view()
        except PolicyError as exc:  # a broken file: the workers would refuse to start on it
            return self.render(
                "policy_error.html", status=500, current="policy", client=request[CLIENT], error=exc
            )
        return self.render(
            "policy.html",
            current="policy",
            client=request[CLIENT],
            view=view,
            sections=policy_sections(view.policy),
        )

    async def lift_page(self, request: web.Request) -> web.Response:
        counts = await self.lift.lift_counts()
        return self.render(
            "lift.html",
            current="lift",
            client=request[CLIENT],
            counts=counts,
            rows=lift_table(counts.channels, counts.days_observed),
        )

    # --- Overview, Offers, charts (agents/console/monitor.py) ----------------------------------
    async def overview_page(self, request: web.Request) -> web.Response:
        return await self.monitor.overview_page(self, request[CLIENT])

    async def offers_page(self, request: web.Request) -> web.Response:
        return await self.monitor.offers_page(self, request[CLIENT], dict(request.query))

    async def offer_page(self, request: web.Request) -> web.Response:
        return await self.monitor.offer_page(self, request[CLIENT], request.match_info["offer"])

    async def chart(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name == "events.png":
            return await self.monitor.events_chart()
        if name == "channels.png":
            return await self.monitor.channels_chart()
        if name == "lift.png":
            return await self.monitor.lift_chart(self.lift)
        raise web.HTTPNotFound()

    async def offer_chart(self, request: web.Request) -> web.Response:
        return await self.monitor.offer_chart(request.match_info["offer"])

    async def posterior_chart(self, request: web.Request) -> web.Response:
        return await self.monitor.posterior_chart(request.match_info["offer"])

    # --- Person, Simulate (agents/console/person.py, agents/console/simulate.py) -------------
    async def person_page(self, request: web.Request) -> web.Response:
        return await person_page(self, request, request[CLIENT])

    async def simulate_form(self, request: web.Request) -> web.Response:
        return await simulate_form(self, request, request[CLIENT])

    async def simulate_post(self, request: web.Request) -> web.Response:
        return await simulate_post(self, request, request[CLIENT])

    async def simulate_chart(self, request: web.Request) -> web.Response:
        return await simulate_chart(self, request, request[CLIENT])

    def application(self) -> web.Application:
        """The routes (no I/O until served)."""
        app = web.Application(middlewares=[self.guard])
        app.cleanup_ctx.append(self.monitor.background)
        app.router.add_get("/login", self.login_form)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/static/console.css", self.stylesheet)
        app.router.add_get("/", self.home)
        app.router.add_get("/policy", self.policy_page)
        app.router.add_get("/lift", self.lift_page)
        app.router.add_get("/overview", self.overview_page)
        app.router.add_get("/offers", self.offers_page)
        app.router.add_get("/offers/{offer}", self.offer_page)
        app.router.add_get("/charts/offers/{offer}.png", self.offer_chart)
        app.router.add_get("/charts/posteriors/{offer}.png", self.posterior_chart)
        app.router.add_get("/charts/{name}", self.chart)
        app.router.add_get("/person", self.person_page)
        app.router.add_get("/simulate", self.simulate_form)
        app.router.add_post("/simulate", self.simulate_post)
        app.router.add_get("/simulate/chart/{chart}.png", self.simulate_chart)
        return app


def build_console(settings: Settings) -> tuple[Console, MetricsLiftSource]:
    """The console of ``settings`` (no network until served)."""
    secret = settings.console_secret
    key = secret.get_secret_value().encode("utf-8") if secret is not None else new_key()
    access = ApiAccess(
        settings.api_tokens_file, settings.api_rate_per_s, settings.api_burst, CollectorRegistry()
    )
    lift = MetricsLiftSource(metrics_urls(settings))
    console = Console(
        access,
        key,
        settings.console_session_s,
        settings.console_secure_cookie,
        SettingsPolicySource(settings),
        lift,
        monitor=production_monitor(settings),
        person=redis_person_source(settings),
        simulator=Simulator(
            TopicSimulationSource(settings),
            settings.console_simulate_max_hours,
            settings.console_simulate_max_events,
        ),
        audit_key=pseudonym_secret(settings) or key,
    )
    return console, lift


async def serve(settings: Settings) -> None:
    """Serve the console on ``NBO_CONSOLE_HOST:NBO_CONSOLE_PORT`` until SIGTERM or SIGINT."""
    console, lift = build_console(settings)
    person = console.person
    follow = None
    if isinstance(person, RedisPersonSource):  # the catalogue, for the strongest tags
        follow = asyncio.create_task(person.follow(), name="console-catalogue")
    runner = web.AppRunner(console.application(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.console_host, settings.console_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await site.start()
        log.info(
            "console on http://%s:%d/ (log in with a token of scope console)",
            settings.console_host,
            settings.console_port,
        )
        await stop.wait()
    finally:
        await runner.cleanup()
        await lift.close()
        if follow is not None:
            follow.cancel()
        if isinstance(person, RedisPersonSource):
            await person.close()


def run_console(settings: Settings) -> None:
    """Run ``nbo console`` in this process."""
    asyncio.run(serve(settings))
