"""The dry-run's rate measurement: per-item seconds without the one-off cost of each call."""

from __future__ import annotations

import time

import pytest

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


def test_other_load_counts_other_processes_not_this_one():
    import subprocess
    import sys

    from ptdiag.engine.plan import OtherLoad

    load = OtherLoad()
    time.sleep(0.6)
    background, _ = load.stop()  # whatever else the machine runs meanwhile (a quiet machine: about 0)
    if background is None:
        pytest.skip("no /proc/stat on this system")
    load = OtherLoad()
    deadline = time.perf_counter() + 0.6
    while time.perf_counter() < deadline:  # this process busy: not "other" load
        pass
    own, _ = load.stop()
    spinner = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 3: pass"])
    try:
        time.sleep(0.3)  # let it start
        load = OtherLoad()
        time.sleep(1.0)
        other, seconds = load.stop()
    finally:
        spinner.kill()
    assert seconds >= 1.0
    assert other > own + 0.5  # one spinning process is about one core
    assert own < background + 0.5  # this process's own core is not counted


def test_busy_means_a_quarter_of_a_core_or_more():
    from dataclasses import replace

    from ptdiag.engine.plan import BUSY_CORES, Rates

    quiet = Rates(1, 1, 1, 1, 0, 1, 1)
    assert not quiet.busy and not replace(quiet, other_load=BUSY_CORES / 2).busy
    assert replace(quiet, other_load=BUSY_CORES).busy
