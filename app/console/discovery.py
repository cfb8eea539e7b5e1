"""Which worker endpoints the console reads: each configured URL at every address its host
name resolves to (pure part; the resolving is :func:`agents.console.discovery.resolve_urls`).

A Kubernetes headless Service (``clusterIP: None``) resolves to the address of every ready
worker pod, so one configured URL, ``http://nbo-stream-workers:6066/metrics``, reaches each
worker however many KEDA runs; a literal address, or a name with one address, stays one URL.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

MAX_ENDPOINTS = 64
"""At most this many endpoints are read (more than any worker group has: it is bounded by the
partitions of user-events), so a resolver that answers with thousands cannot stall the page."""


def host_of(url: str) -> str | None:
    """The host name of ``url``, or None when it is a literal IP address (or has no host)."""
    host = urlsplit(url).hostname
    if not host:
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return None


def with_address(url: str, address: str) -> str:
    """``url`` with its host replaced by ``address`` (IPv6 in brackets), port and path kept."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def expand(urls: Sequence[str], addresses: Mapping[str, Iterable[str]]) -> list[str]:
    """Every URL once per address of its host (``addresses``: host -> its addresses, in any
    order; a host missing there, or with none, keeps its URL as written so the failure to
    reach it is shown). Sorted within a URL, duplicates dropped, at most
    :data:`MAX_ENDPOINTS`."""
    out: list[str] = []
    for url in urls:
        host = host_of(url)
        found = sorted(set(addresses.get(host, ()))) if host is not None else []
        for expanded in [with_address(url, a) for a in found] or [url]:
            if expanded not in out:
                out.append(expanded)
    return out[:MAX_ENDPOINTS]
