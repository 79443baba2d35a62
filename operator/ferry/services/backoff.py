"""Delays between retries: exponential, capped, jittered."""

from __future__ import annotations

import random


def jittered(seconds: float, fraction: float = 0.1) -> float:
    return seconds * (1 + random.uniform(-fraction, fraction))


def exponential(attempt: int, base: float, cap: float) -> float:
    """attempt 0 -> base, doubling, never above cap, with 10% jitter."""
    return jittered(min(cap, base * (2 ** max(0, attempt))))
