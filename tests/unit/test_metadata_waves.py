"""Index creations run a few at a time, in waves: a stop seen after a wave keeps every
later job from starting, and a job's error surfaces once its wave has ended."""

from __future__ import annotations

import threading

import pytest

from ferry.services.metadata.waves import in_waves


def test_every_job_runs_in_waves_of_the_width() -> None:
    seen: list[int] = []
    lock = threading.Lock()
    width = 3
    inside = [0]
    most = [0]
    gate = threading.Barrier(width)

    def job(n: int) -> None:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        if n < 6:  # the two full waves: all of a wave's jobs are in flight together
            gate.wait(timeout=10)
        with lock:
            inside[0] -= 1
            seen.append(n)

    assert in_waves([lambda n=n: job(n) for n in range(7)], width, lambda: False) == 7
    assert sorted(seen) == list(range(7))
    assert most[0] == width
    # A wave starts after the one before it ended.
    assert set(seen[:3]) == {0, 1, 2} and set(seen[3:6]) == {3, 4, 5}


def test_a_stop_after_a_wave_keeps_later_jobs_from_starting() -> None:
    ran: list[int] = []
    stopped = threading.Event()

    def job(n: int) -> None:
        ran.append(n)
        if n == 1:
            stopped.set()

    jobs = [lambda n=n: job(n) for n in range(10)]
    assert in_waves(jobs, 4, stopped.is_set) == 4
    assert sorted(ran) == [0, 1, 2, 3]
    # A stop already true before the first wave: nothing runs.
    assert in_waves(jobs, 4, lambda: True) == 0
    assert in_waves([], 4, lambda: False) == 0


def test_an_error_is_raised_after_its_wave_the_first_in_job_order() -> None:
    ran: list[int] = []

    def job(n: int) -> None:
        ran.append(n)
        if n in (1, 2):
            raise ValueError(f"job {n}")

    with pytest.raises(ValueError, match="job 1"):
        in_waves([lambda n=n: job(n) for n in range(8)], 4, lambda: False)
    assert sorted(ran) == [0, 1, 2, 3]
