"""Resolving the console's worker endpoints (see :mod:`app.console.discovery`), at each read so
that workers that come and go are followed."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence

from app.console.discovery import expand, host_of

log = logging.getLogger(__name__)

RESOLVE_TIMEOUT_S = 2.0


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
