"""The two points of a run's time: no new work after the margin, no request after the cut-off."""

from __future__ import annotations

from archiver.budget import Budget


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Context:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_work_stops_at_the_margin_and_requests_at_the_reserve() -> None:
    clock = Clock()
    budget = Budget(30.0, clock, cutoff_seconds=43.0)  # 60 s left, margin 30, reserve 17
    clock.now += 29.9
    assert not budget.expired() and not budget.cut_off()
    clock.now += 0.1
    assert budget.expired() and not budget.cut_off()
    clock.now += 13.0
    assert budget.cut_off()


def test_the_cut_off_never_comes_before_the_end_of_work() -> None:
    clock = Clock()
    budget = Budget(5.0, clock, cutoff_seconds=0.0)  # reserve larger than the margin
    clock.now += 4.9
    assert not budget.cut_off()
    clock.now += 0.1
    assert budget.expired() and budget.cut_off()


def test_from_a_lambda_context() -> None:
    budget = Budget.from_context(Context(60_000), margin_seconds=30.0, reserve_seconds=17.0)
    assert not budget.expired() and not budget.cut_off()
    assert Budget.from_context(Context(10_000), 30.0, 17.0).cut_off()  # less left than either: both at once
    assert Budget.from_context(Context(10_000), 30.0, 17.0).expired()


def test_without_a_lambda_context_nothing_expires() -> None:
    class NotLambda:
        def get_remaining_time_in_millis(self) -> None:
            return None

    for context in (None, object(), NotLambda()):
        budget = Budget.from_context(context, 30.0, 17.0)
        assert not budget.expired() and not budget.cut_off()
