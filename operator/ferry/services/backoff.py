"""The one way Ferry waits before trying again: exponential, capped, jittered."""

from __future__ import annotations

import random


def jittered(seconds: float, fraction: float = 0.1) -> float:
    """``seconds`` give or take ``fraction``, so many resources never retry in step."""
    return seconds * (1 + random.uniform(-fraction, fraction))


def delay(attempt: int, base: float, cap: float, fraction: float = 0.1,
          factor: float = 2.0) -> float:
    """attempt 0 -> base, times ``factor`` per attempt, never above cap, jittered by
    ``fraction`` (0: exact, for a polling schedule)."""
    return jittered(min(cap, base * factor ** max(0, attempt)), fraction)
