"""The token bucket paces calls without real sleeping (a fake clock)."""

from __future__ import annotations

import pytest

from archiver.ratelimit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_calls_are_paced_at_the_rate_after_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, burst=2, clock=clock, sleep=clock.sleep)
    waits = [bucket.acquire() for _ in range(12)]
    assert waits[:2] == [0.0, 0.0]
    assert all(w == pytest.approx(0.1) for w in waits[2:])
    assert clock.now == pytest.approx(1.0)


def test_idle_time_refills_up_to_the_burst_only() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=5.0, burst=3, clock=clock, sleep=clock.sleep)
    clock.now = 100.0
    assert [bucket.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.acquire() == pytest.approx(0.2)


def test_invalid_rate_is_rejected() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0)


def test_callers_arriving_together_queue_behind_each_other() -> None:
    clock = FakeClock()
    slept: list[float] = []
    bucket = TokenBucket(rate=10.0, burst=1, clock=clock, sleep=slept.append)  # the clock stands still
    assert [bucket.acquire() for _ in range(4)] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert slept == pytest.approx([0.1, 0.2, 0.3])  # each waits for the tokens of those ahead of it


def test_by_default_a_missed_slot_is_made_up_once_and_the_pace_never_exceeds_two_plus_rate_times_t() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=18.0, clock=clock, sleep=clock.sleep)  # the Lambda's default pace
    clock.now = 0.09  # the first request comes late (the first page had to be listed and checked first)
    starts = []
    for _ in range(200):
        bucket.acquire()
        starts.append(clock.now)
    assert starts[:2] == [0.09, 0.09]  # the slot missed at the start is used, not lost
    assert starts[2] == pytest.approx(0.09 + 1 / 18)
    assert starts[-1] == pytest.approx(0.09 + 198 / 18)  # one slot ahead of a burst of 1, never more
    for first, start in enumerate(starts):
        window = [s for s in starts[first:] if s < start + 1.0]
        assert len(window) <= 2 + 18  # any one-second window: at most the burst plus a second's pace


def test_a_burst_below_one_is_rejected() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=1.0, burst=0.5)
