"""The reconnect back-off policy (kafka_sink.net.backoff), with the randomness pinned."""

from __future__ import annotations

import pytest

from kafka_sink.net.backoff import JITTER, Backoff


@pytest.mark.parametrize(("draw", "spread"), [(0.0, 1 - JITTER), (0.5, 1.0), (1.0, 1 + JITTER)])
def test_each_failure_doubles_the_wait_up_to_the_maximum(draw: float, spread: float) -> None:
    backoff = Backoff(0.05, 1.0, uniform=lambda: draw)
    waits = [backoff.delay(failures) for failures in range(1, 9)]
    expected = [min(min(0.05 * 2**n, 1.0) * spread, 1.0) for n in range(8)]
    assert waits == pytest.approx(expected)
    assert max(waits) <= 1.0  # jitter never takes a wait past the maximum


def test_a_long_run_of_failures_does_not_overflow() -> None:
    assert Backoff(0.05, 1.0, uniform=lambda: 0.5).delay(10_000) == pytest.approx(1.0)


@pytest.mark.parametrize(("draw", "wait"), [(0.0, 1.0), (1.0, 1.0 - JITTER)])
def test_a_refused_authentication_waits_the_longest(draw: float, wait: float) -> None:
    assert Backoff(0.05, 1.0, uniform=lambda: draw).longest() == pytest.approx(wait)


def test_no_back_off_at_all_is_allowed() -> None:
    assert Backoff(0.0, 0.0).delay(3) == 0.0
