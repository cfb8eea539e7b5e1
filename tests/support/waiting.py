"""Polling a condition against the real services, with a time limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def wait_for(check: Callable[[], Awaitable[bool]], timeout_s: float = 30.0) -> bool:
    """Await ``check`` every 0.2 s until it is true (``True``) or ``timeout_s`` passed
    (``False``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.2)
    return False
