"""The dry-run's rate measurement: per-item seconds without the one-off cost of each call."""

from __future__ import annotations

import time

from ptdiag.engine.plan import _per_item


def test_per_item_rate_cancels_a_fixed_cost_per_call():
    fixed, per_item = 0.05, 0.002

    def work(n: int) -> int:
        time.sleep(fixed + n * per_item)
        return n

    rate, result = _per_item(work, 5, 25)
    assert result == 25
    assert abs(rate - per_item) / per_item < 0.3
    naive = (fixed + 5 * per_item) / 5  # what timing the small call alone gave: 6x too slow here
    assert abs(naive - per_item) / per_item > 3


def test_per_item_rate_is_floored_when_noise_swamps_the_difference():
    rate, _ = _per_item(lambda n: time.sleep(0.02), 2, 10)  # no per-item cost at all
    assert rate >= 0.25 * 0.02 / 10
