"""numba with its compiled-code cache in the Likeness user cache, so only the first run pays for compiling.

numba's own default writes __pycache__ beside the source, which inside Blender is the extension folder
(never written to); the user cache (LIKENESS_CACHE_DIR, the extension's user directory in Blender) is.
The cache is kept apart per import name of this package (`core` from a checkout, `bl_ext.<repo>.likeness.core`
in Blender, `likeness.core` in the add-on tests): a cached kernel refers to its module by name, and loading
one compiled under another name fails.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from .facemodel.cache import default_cache_dir


def njit(module: str, **options):
    """Decorator: numba.njit(cache=True, **options), cached under <cache>/numba/<package import name>.

    module: the calling module's __name__.
    """
    import numba

    base = Path(os.environ.get("NUMBA_CACHE_DIR") or default_cache_dir() / "numba")
    package = module.rsplit(".core.", 1)[0] if ".core." in module else "core"

    def decorate(function):
        # numba reads CACHE_DIR when the dispatcher is made, so setting it around the decoration is enough.
        previous = numba.config.CACHE_DIR
        numba.config.CACHE_DIR = str(base / package)
        try:
            return numba.njit(cache=True, **options)(function)
        finally:
            numba.config.CACHE_DIR = previous

    return decorate


def lazy_kernels(compile: Callable[[], dict[str, object]]) -> Callable[[str], object]:
    """A kernel module's get(name): compile() (which njit-decorates its kernels and returns them by name) runs
    on the first call only, under a lock, since a warm-up thread and the caller may ask at the same time."""
    kernels: dict[str, object] = {}
    lock = threading.Lock()

    def get(name: str):
        if not kernels:
            with lock:
                if not kernels:
                    kernels.update(compile())
        return kernels[name]

    return get
