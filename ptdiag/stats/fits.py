"""Many small scikit-learn fits: one BLAS thread per fit, independent fits spread over the allowed cores.

L-BFGS on a few thousand feature rows spends its time in matrix-vector products that are too small to share
between BLAS threads, so independent one-thread fits side by side are several times faster than one multi-threaded
fit at a time (`benchmarks/bench_support.py` measures it; the figures are in docs/VALIDATION.md). One thread per
fit also makes every fit's numbers independent of the machine's core count (results agree with multi-threaded BLAS
to float rounding).

Pure numpy/scikit-learn/joblib: no torch import.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from joblib import Parallel, delayed
from threadpoolctl import threadpool_info, threadpool_limits

T = TypeVar("T")
R = TypeVar("R")


def fit_workers() -> int:
    """How many fits may run at once: the BLAS pool's current size (the cores, or a job's thread allowance)."""
    sizes = [pool.get("num_threads", 1) for pool in threadpool_info() if pool.get("user_api") == "blas"]
    return max(1, max(sizes, default=1))


_SHARED_BLAS = False


@contextlib.contextmanager
def shared_blas() -> Iterator[None]:
    """Within the block fits run one at a time on all BLAS threads, the library default (benchmarks compare it with
    one thread per fit, side by side)."""
    global _SHARED_BLAS
    previous, _SHARED_BLAS = _SHARED_BLAS, True
    try:
        yield
    finally:
        _SHARED_BLAS = previous


def single_threaded():
    """Context in which BLAS uses one thread (for a sequential chain of small fits)."""
    return contextlib.nullcontext() if _SHARED_BLAS else threadpool_limits(limits=1, user_api="blas")


def map_fits(fn: Callable[[T], R], items: Iterable[T], workers: int | None = None) -> list[R]:
    """`[fn(item) for item in items]`, in order, with one BLAS thread per call and up to `workers` calls at once.

    Threads, not processes: the fits release the GIL in BLAS and share the feature matrix without copies.
    """
    items = list(items)
    workers = 1 if _SHARED_BLAS else min(workers or fit_workers(), len(items)) or 1
    with single_threaded():
        if workers == 1:
            return [fn(item) for item in items]
        return Parallel(n_jobs=workers, prefer="threads")(delayed(fn)(item) for item in items)
