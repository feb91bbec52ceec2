"""How Likeness's numerics share the cores: the per-frame fits and the modeling call BLAS from one thread."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from threadpoolctl import ThreadpoolController, threadpool_info


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS (OpenBLAS, numpy's) limited to one thread inside: `with one_blas_thread():` or `@one_blas_thread()`.

    A frame's products are small (its J^T J is (59, 956) @ (956, 59)) and the modeling's memory-bound, so a
    second BLAS thread gains little, and between calls OpenBLAS's idle thread spins (sched_yield) on the core
    that decodes the video, runs the compiled passes and, in Blender, the interface. Measured on 2 cores:
    track_clip's frame loop on 3,600 frames 2.4-3.1 s with 7.9-9.5 s of CPU for the whole call, one thread
    2.0-2.2 s with 4.1-4.4 s; bench/model.py's 60-second clip 22.1 s with 42 s of CPU (18.6 s of it spinning
    in the kernel), one thread 18.3-19.9 s with 21-23 s. The keyframe fit too (session 17): its focal search
    fits two fields of view at once, one BLAS thread each (s32's stage 0.11-0.14 -> 0.09-0.10 s, median of
    six runs each, three pairs of runs). The limit is process-wide (threadpoolctl) and restored on the way out.
    """
    with _blas().limit(limits=1, user_api="blas"):
        yield


@lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    """The process's BLAS libraries, found once: threadpool_limits looks them up on every entry (1.5 ms, a
    few entries per capture). numba's np.linalg goes through scipy's own OpenBLAS, which the first kernel using
    it loads: loaded here first so that the limit reaches it too. (Only the FAN backend's torch loads a BLAS
    later, and nothing of it runs inside the limit.)"""
    import scipy.linalg.cython_lapack  # noqa: F401

    return ThreadpoolController()


def blas_threads() -> int:
    """The most threads any loaded BLAS library would use now (1 inside one_blas_thread)."""
    return max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default=1)
