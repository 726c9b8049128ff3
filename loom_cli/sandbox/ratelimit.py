"""An optional per-minute request limit, per address for signed-in callers and per client IP otherwise."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from loom_cli.sandbox.errors import ApiError

WINDOW_SECONDS = 60.0


class RateLimiter:
    """A fixed one-minute window per key: the first request opens the window, `limit` fit in it."""

    def __init__(self, limit: int, *, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.clock = clock
        self._windows: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Count one request for `key`; raise 429 `rate_limited` with Retry-After when over the limit."""
        now = self.clock()
        with self._lock:
            if len(self._windows) > 10_000:
                self._forget_closed_windows(now)
            started, count = self._windows.get(key, (now, 0))
            if now - started >= WINDOW_SECONDS:
                started, count = now, 0
            if count >= self.limit:
                retry_after = max(1, math.ceil(started + WINDOW_SECONDS - now))
                raise ApiError(
                    429,
                    "rate_limited",
                    f"Too many requests: the limit is {self.limit} per minute; retry in {retry_after} seconds.",
                    details={"limit": self.limit, "retry_after": retry_after},
                    headers={"Retry-After": str(retry_after)},
                )
            self._windows[key] = (started, count + 1)

    def _forget_closed_windows(self, now: float) -> None:
        closed = [key for key, (started, _) in self._windows.items() if now - started >= WINDOW_SECONDS]
        for key in closed:
            del self._windows[key]
