"""glibc allocator thresholds (ptdiag.engine.allocator): freed memory is reused instead of faulted in again."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

# A "training step": six 8 MB arrays alive together, then all freed. Faults counted over 20 steps after 2 warm-ups.
CHILD = """
import resource
import numpy as np
from ptdiag.engine.allocator import keep_freed_memory
applied = keep_freed_memory()
def step():
    blocks = [np.ones(1 << 20) for _ in range(6)]
    del blocks
step(); step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's")


def _faults(**env: str) -> tuple[str, int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "PTDIAG_KEEP"))}
    out = subprocess.run([sys.executable, "-c", CHILD], env={**clean, **env}, capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0], int(out[1])


@glibc_only
def test_freed_memory_is_reused_without_page_faults():
    applied, faults = _faults()
    _, faults_default = _faults(PTDIAG_KEEP_FREED_MEMORY="0")
    assert applied == "True"
    assert faults_default > 20 * 1000  # glibc's defaults: each step faults ≥ 4 MB of what it freed in again
    assert faults < faults_default / 20


@glibc_only
def test_users_own_malloc_settings_win():
    applied, _ = _faults(MALLOC_TRIM_THRESHOLD_="131072")
    assert applied == "False"
