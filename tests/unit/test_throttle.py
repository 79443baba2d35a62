"""The throttle's arithmetic: each process's share of a Backfill-wide limit, paid before
sending, from an empty bucket, on a simulated clock (no sleeping)."""

from __future__ import annotations

import pytest

from ferry.services.backfill.throttle import TokenBucket, share


class Clock:
    """Time that moves only when the bucket sleeps."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def bucket(clock: Clock, limit: float | None, members: int = 1) -> TokenBucket:
    return TokenBucket(limit, members, clock=clock, sleep=clock.sleep)


def sent_over_time(clock: Clock, b: TokenBucket, page: int, pages: int
                   ) -> list[tuple[float, int]]:
    """(time, documents paid for so far) after each page."""
    out, total = [], 0
    for _ in range(pages):
        assert b.acquire(page)
        total += page
        out.append((clock.t, total))
    return out


@pytest.mark.parametrize(("limit", "members", "expected"), [
    (400, 1, 400.0), (400, 2, 200.0), (300, 4, 75.0), (400, 0, 400.0), (None, 3, None)])
def test_a_share_is_the_limit_over_the_live_members(
        limit: float | None, members: int, expected: float | None) -> None:
    assert share(limit, members) == expected


def test_a_fresh_bucket_starts_empty_and_never_gets_ahead_of_its_rate() -> None:
    clock = Clock()
    b = bucket(clock, 100)
    for t, total in sent_over_time(clock, b, 50, 40):
        assert total <= 100 * t + 1e-6, (t, total)
    assert clock.t == pytest.approx(20.0, abs=0.3)  # 2,000 documents at 100/s


def test_members_share_the_limit_so_their_sum_stays_under_it() -> None:
    # Two processes' buckets on one clock, taking turns: together at most the limit.
    clock = Clock()
    a, b = bucket(clock, 400, members=2), bucket(clock, 400, members=2)
    total = 0
    for _ in range(100):
        for one in (a, b):
            assert one.acquire(100)
            total += 100
            assert total <= 400 * clock.t + 1e-6, (clock.t, total)
    assert a.page_limit() == 200


def test_a_lowered_share_applies_to_the_next_page() -> None:
    clock = Clock()
    b = bucket(clock, 400)
    sent_over_time(clock, b, 100, 8)
    b.set_members(4)
    start, rate = clock.t, 100
    assert b.rate == rate
    for t, total in sent_over_time(clock, b, 100, 10):
        assert total <= rate * (t - start) + rate + 1e-6  # at most one second's burst


def test_a_page_bigger_than_the_share_still_passes_at_the_share() -> None:
    # Read before the limit was lowered: it waits for its own size, not forever.
    clock = Clock()
    b = bucket(clock, 1000)
    b.set_limit(50)
    assert b.acquire(500)
    assert clock.t == pytest.approx(10.0, abs=0.3)


def test_held_and_expired_buckets_send_nothing() -> None:
    clock = Clock()
    b = bucket(clock, 100)
    b.hold(5.0)
    assert b.acquire(10)
    assert clock.t >= 5.0 + 0.1 - 1e-9  # no tokens accrued while held
    b.expire(clock.t)
    clock.t += 1
    stop_at = clock.t + 3
    assert not b.acquire(10, should_stop=lambda: clock.t >= stop_at)
    b.expire(float("inf"))
    assert b.acquire(10)


def test_no_limit_never_waits_and_a_new_limit_starts_empty() -> None:
    clock = Clock()
    b = bucket(clock, None)
    assert b.acquire(10_000) and clock.t == 0
    assert b.page_limit() is None
    clock.t = 100.0  # a long unthrottled spell earns nothing
    b.set_limit(10)
    assert b.acquire(10)
    assert clock.t >= 101.0 - 1e-9
