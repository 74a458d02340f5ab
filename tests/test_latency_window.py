"""The adaptive hedge delay, the sans-IO part (README, "Hedged requests"): the
last 128 latencies of a host, the warm-up's rule (no hedge for the first 5
answers, then 4 times their median until 20), then the nearest-rank quantile,
re-sorted once every 8 new samples; and what a host's hedging snapshot says."""

from __future__ import annotations

import pytest

from resilient_http import HedgePolicy
from resilient_http._hedging import HedgeState, LatencyWindow


def window(*samples: float) -> LatencyWindow:
    latency = LatencyWindow()
    for seconds in samples:
        latency.add(seconds)
    return latency


def test_no_hedge_before_the_first_five_answers() -> None:
    latency = window(0.1, 0.1, 0.1, 0.1)
    assert latency.delay(0.95) is None
    latency.add(0.1)
    assert latency.delay(0.95) == pytest.approx(0.4)


def test_during_the_warm_up_the_delay_is_four_times_the_median() -> None:
    # the upper median of an even count: the 4th of 0.1 .. 0.6
    assert window(0.6, 0.1, 0.5, 0.2, 0.4, 0.3).delay(0.95) == pytest.approx(1.6)
    nineteen = window(*[0.01 * n for n in range(1, 20)])  # 0.01 .. 0.19
    assert nineteen.delay(0.5) == pytest.approx(4 * 0.10)
    assert nineteen.quantile(0.5) is None  # not warm yet


def test_from_twenty_answers_the_delay_is_the_quantile() -> None:
    latency = window(*[0.01 * n for n in range(1, 21)])  # 0.01 .. 0.20
    assert latency.delay(0.5) == pytest.approx(0.10)
    assert latency.delay(0.95) == pytest.approx(0.19)
    assert latency.delay(1.0) == pytest.approx(0.20)


@pytest.mark.parametrize(
    ("q", "expected"), [(0.01, 1), (0.5, 50), (0.95, 95), (0.99, 99), (0.999, 100), (1.0, 100)]
)
def test_the_quantile_is_the_nearest_rank(q: float, expected: int) -> None:
    latency = window(*reversed(range(1, 101)))
    assert latency.quantile(q) == expected


def test_the_window_keeps_the_last_128_answers() -> None:
    latency = window(*[1.0] * 128)
    assert len(latency) == 128
    for _ in range(127):
        latency.add(5.0)
    assert len(latency) == 128
    assert latency.quantile(0.004) == 1.0  # one old answer left
    latency.add(5.0)
    assert latency.quantile(0.005) == 5.0


def test_the_quantile_is_re_sorted_once_every_eight_new_answers() -> None:
    latency = window(*[1.0] * 20)
    assert latency.quantile(0.9) == 1.0
    for _ in range(7):
        latency.add(100.0)
    assert latency.quantile(0.9) == 1.0  # 7 new answers: the last value still holds
    latency.add(100.0)
    assert latency.quantile(0.9) == 100.0  # the 8th: re-sorted


def test_asking_for_another_quantile_is_answered_at_once() -> None:
    latency = window(*[float(n) for n in range(1, 21)])
    assert latency.quantile(0.5) == 10.0
    latency.add(100.0)
    assert latency.quantile(0.95) == 20.0  # not the cached median
    assert latency.quantile(0.5) == 11.0  # nor the cached p95


def test_a_fixed_delay_needs_no_warm_up() -> None:
    hedge = HedgeState(HedgePolicy(delay=0.25))
    assert hedge.delay() == 0.25
    assert hedge.snapshot() == {"sent": 0, "won": 0, "delay": 0.25, "latency_samples": 0}


def test_the_snapshot_tells_the_learned_delay_and_the_counts() -> None:
    hedge = HedgeState(HedgePolicy(quantile=0.5))
    assert hedge.snapshot() == {"sent": 0, "won": 0, "delay": None, "latency_samples": 0}
    for n in range(1, 21):
        hedge.latency.add(n / 3000)
    hedge.sent, hedge.won = 3, 1
    assert hedge.snapshot() == {"sent": 3, "won": 1, "delay": 0.0033, "latency_samples": 20}
    assert hedge.delay() == pytest.approx(10 / 3000)


def test_the_snapshot_of_a_warming_host_shows_the_warm_up_delay() -> None:
    hedge = HedgeState(HedgePolicy())
    for _ in range(5):
        hedge.latency.add(0.02)
    assert hedge.snapshot()["delay"] == 0.08
