"""numba with its compiled-code cache in the Likeness user cache, so only the first run pays for compiling.

numba's own default writes __pycache__ beside the source, which inside Blender is the extension folder
(never written to); the user cache (LIKENESS_CACHE_DIR, the extension's user directory in Blender) is.
"""

from __future__ import annotations

from .facemodel.cache import default_cache_dir


def njit(**options):
    """numba.njit(cache=True, **options) with the cache under <likeness cache>/numba."""
    import numba

    if not numba.config.CACHE_DIR:  # a user's own NUMBA_CACHE_DIR wins
        numba.config.CACHE_DIR = str(default_cache_dir() / "numba")
    return numba.njit(cache=True, **options)
