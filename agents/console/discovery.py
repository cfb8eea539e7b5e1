"""Reading the workers' ``/metrics`` for the console: the endpoints resolved at each read (see
:mod:`app.console.discovery`), so that workers that come and go are followed, then every one
read in parallel."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import aiohttp

from app.console.discovery import expand, host_of

log = logging.getLogger(__name__)

RESOLVE_TIMEOUT_S = 2.0
SCRAPE_TIMEOUT_S = 2.0
"""How long the console waits for one worker's /metrics."""

T = TypeVar("T")


async def _addresses(host: str) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_S
        )
    except (OSError, TimeoutError) as exc:
        log.warning("console: cannot resolve %s: %s", host, exc)
        return []
    return [str(info[4][0]) for info in infos]


async def resolve_urls(urls: Sequence[str]) -> list[str]:
    """``urls`` expanded to every address of their hosts (a host that does not resolve keeps
    its URL, whose read then fails visibly)."""
    hosts = sorted({h for h in map(host_of, urls) if h is not None})
    found = await asyncio.gather(*(_addresses(h) for h in hosts))
    return expand(urls, dict(zip(hosts, found, strict=True)))


@dataclass
class MetricsReader(Generic[T]):
    """Every worker's ``/metrics`` behind ``urls`` (:func:`resolve_urls` at each read), in
    parallel, each within :data:`SCRAPE_TIMEOUT_S`, read with ``parse(url, text)``; a worker
    that does not answer, or whose text ``parse`` refuses (``ValueError``), is logged at
    ``level`` and read as ``None``. One HTTP session, opened at the first read."""

    urls: Sequence[str]
    parse: Callable[[str, str], T]
    level: int = logging.WARNING
    _session: aiohttp.ClientSession | None = field(default=None, repr=False)

    async def read(self) -> list[tuple[str, T | None]]:
        """Each resolved URL with what ``parse`` made of its text (``None``: unreadable)."""
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_S)
            self._session = aiohttp.ClientSession(timeout=timeout)
        urls = await resolve_urls(self.urls)  # a headless Service: one URL per worker pod
        answers = await asyncio.gather(*(self._one(self._session, u) for u in urls))
        return list(zip(urls, answers, strict=True))

    async def _one(self, session: aiohttp.ClientSession, url: str) -> T | None:
        try:
            async with session.get(url) as response:
                response.raise_for_status()
                return self.parse(url, await response.text())
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.log(self.level, "console: cannot read %s: %s", url, exc)
            return None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
