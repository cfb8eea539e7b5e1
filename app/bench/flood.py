"""A client that hammers the lookups while the benchmark drains events: one thread sending
``GET /users/<id>/offers`` to ``nbo api`` back to back with one token (over its rate, most
answers are 429), counting the answers by status. The event stream's rate under the flood,
against its rate without it in the same run, is the figure (``nbo bench``: the lookups must
not slow the stream down)."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections import Counter


class LookupFlood:
    """Requests ``url`` with ``token`` in a loop on a thread, from :meth:`start` to
    :meth:`stop`."""

    def __init__(self, url: str, token: str, threads: int = 1) -> None:
        self._request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        self._lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self.started_s = 0.0
        self.stopped_s = 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(self._request, timeout=5) as resp:
                    resp.read()
                    status = int(resp.status)
            except urllib.error.HTTPError as err:
                err.read()
                status = int(err.code)
            except OSError:
                status = 0  # not answered
                time.sleep(0.01)
            with self._lock:
                self.statuses[status] += 1

    def start(self) -> None:
        self.started_s = time.monotonic()
        for thread in self._threads:
            thread.start()

    def stop(self) -> dict[str, object]:
        """Stop; the requests made, per second, and by status."""
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        self.stopped_s = time.monotonic()
        total = sum(self.statuses.values())
        seconds = max(self.stopped_s - self.started_s, 1e-9)
        return {
            "requests": total,
            "requests_per_s": total / seconds,
            "by_status": {str(k): v for k, v in sorted(self.statuses.items())},
        }
