"""Per-key request rate limits, answered with 429 and Retry-After.

The request rate is a fixed one-minute window per key, counted in Redis so every web
process shares it (in memory in the embedded mode). If the counter store is down the
limiter lets requests through and logs it: losing rate limiting for a while is better
than refusing every archivist because of a cache. Per-owner quotas on jobs live with
the jobs (`tintype.jobs.quotas`).
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)
WINDOW = 60


class RateLimiter:
    """`hit(name, limit)` counts one request; returns seconds to wait when over the limit."""

    def __init__(self, url: str) -> None:
        self.redis = None
        if url.startswith(("redis://", "rediss://")):
            import redis

            self.redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.counts: dict[tuple[str, int], int] = {}
        self.lock = threading.Lock()

    def hit(self, name: str, limit: int) -> int | None:
        now = time.time()
        window = int(now // WINDOW)
        count = self._count(name, window)
        if count is None or count <= limit:
            return None
        return int(WINDOW - now % WINDOW) + 1

    def _count(self, name: str, window: int) -> int | None:
        if self.redis is None:
            with self.lock:
                self.counts = {k: v for k, v in self.counts.items() if k[1] >= window}
                self.counts[(name, window)] = self.counts.get((name, window), 0) + 1
                return self.counts[(name, window)]
        key = f"tintype:rate:{name}:{window}"
        try:
            with self.redis.pipeline() as pipe:
                count, _ = pipe.incr(key).expire(key, WINDOW * 2).execute()
            return int(count)
        except Exception:  # noqa: BLE001 - fail open, see the module docstring
            log.warning("rate-limit store unavailable; letting the request through", exc_info=True)
            return None
