"""The copy rate limit: one process's share of ``spec.throttle.maxDocsPerSecond``, paid
for by its workers page by page before each bulk is sent (:class:`TokenBucket`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def share(limit: float | None, members: int) -> float | None:
    """One process's documents per second of a Backfill-wide limit (None: no limit)."""
    return limit / max(1, members) if limit else None


class TokenBucket:
    """One process's share of ``spec.throttle.maxDocumentsPerSecond``, shared by its
    workers: ``limit / members``, where ``members`` is the number of live processes
    copying for the Backfill (kept by ``pool.Membership``), so the shares add up to the
    limit over all processes. Both change at runtime.

    Tokens are paid before a bulk is sent; the bucket starts empty and holds at most
    one second of its share (or the one page asked for, when a page is bigger), so a
    process never sends more than ``share * t``. ``hold`` keeps a process from sending
    until every other process has counted it (a joiner), ``expire`` from sending once
    its membership may have lapsed (the others may already share its part)."""

    def __init__(self, limit: float | None, members: int = 1,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limit, self.members = limit, max(1, members)
        self._clock, self._sleep = clock, sleep
        self._allowance = 0.0
        self._last = clock()
        self._ready_at = 0.0
        self._valid_until = float("inf")
        # The largest page a worker waits to pay for: tokens accrue up to it, so a page
        # read before the share was lowered is not starved by smaller ones.
        self._want = 0
        self._lock = threading.Lock()

    @property
    def rate(self) -> float | None:
        return share(self.limit, self.members)

    def set_limit(self, limit: float | None) -> None:
        """A new Backfill-wide limit (None: none); the time so far is paid at the old
        rate."""
        with self._lock:
            self._refill(self._clock())
            self.limit = limit

    def set_members(self, members: int) -> None:
        with self._lock:
            self._refill(self._clock())
            self.members = max(1, members)

    def hold(self, until: float) -> None:
        """Send nothing before ``until`` (on this bucket's clock); no tokens accrue."""
        with self._lock:
            self._ready_at = until
            self._allowance, self._last = 0.0, max(self._last, until)

    def expire(self, at: float) -> None:
        """Send nothing after ``at`` until the next ``expire`` moves it on."""
        with self._lock:
            self._valid_until = at

    def page_limit(self) -> int | None:
        """The largest page worth asking for: one second of the share."""
        rate = self.rate
        return max(1, int(rate)) if rate else None

    def _refill(self, now_: float) -> None:
        rate = self.rate
        if rate and now_ > self._last:
            self._allowance = min(max(rate, self._want), self._allowance
                                  + (now_ - self._last) * rate)
        self._last = max(self._last, now_)

    def acquire(self, n: int, should_stop: Callable[[], bool] = lambda: False) -> bool:
        """Pay for ``n`` documents, waiting as long as it takes; False when asked to
        stop first."""
        while True:
            with self._lock:
                now_ = self._clock()
                self._want = max(self._want, n)
                self._refill(now_)
                rate = self.rate
                if not rate:
                    self._want = 0
                    return True
                if self._ready_at <= now_ <= self._valid_until and self._allowance >= n:
                    self._allowance -= n
                    if n >= self._want:
                        self._want = 0
                    return True
                if now_ < self._ready_at:
                    wait = self._ready_at - now_
                elif now_ > self._valid_until:
                    wait = 1.0
                else:
                    wait = (n - self._allowance) / rate
            if should_stop():
                return False
            # Short naps: a raised limit or a member gone takes effect at once.
            self._sleep(min(max(wait, 0.001), 0.25))
