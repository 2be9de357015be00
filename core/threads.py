"""How many threads one job may use: ``HISCI_WORKER_THREADS``, else every core this process may run on.

``hicli serve --workers N`` gives each worker ``cores // N`` (unless the variable is set), so
N workers on one host do not each start a thread per core and fight over them; a chunk pool
of ``hicli run --jobs N`` pins each process to its share of cores, which this count follows.
Plugins read the count as ``ctx.threads`` and pass it to their kernels (ducc0 ``nthreads``,
``numba.set_num_threads``); :func:`limit_threads` caps the OpenMP/BLAS pools too.
"""

from __future__ import annotations

import os
import sys

THREADS_ENV = "HISCI_WORKER_THREADS"
POOL_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def worker_threads(environ: dict[str, str] | None = None) -> int:
    """``HISCI_WORKER_THREADS`` (a positive integer), else :func:`usable_cores`.

    Raises
    ------
    ValueError
        When the variable is set but is not a positive integer.
    """
    env = os.environ if environ is None else environ
    text = (env.get(THREADS_ENV) or "").strip()
    if not text:
        return usable_cores()
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{THREADS_ENV}={text!r}: give a positive whole number of threads per job, e.g. 2")
    return value


def share_per_worker(workers: int, cores: int | None = None) -> int:
    """Threads for each of ``workers`` workers on a host of ``cores`` cores (at least 1)."""
    return max(1, (cores or usable_cores()) // max(1, workers))


def limit_threads(threads: int) -> None:
    """Cap this process's thread pools at ``threads``: the OpenMP/BLAS variables (for pools
    not started yet), numba's pool when numba is loaded, and threadpoolctl's view of
    started BLAS/OpenMP pools when it is installed."""
    threads = max(1, int(threads))
    for var in POOL_VARS[:3]:
        os.environ[var] = str(threads)
    numba = sys.modules.get("numba")
    if numba is not None:
        try:
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        except Exception:  # noqa: BLE001 - no threading layer here: numba runs serially anyway
            pass
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(threads)
