"""The kernel modules' lazy loader: one compile per process, whoever asks first and however many ask at once."""

from __future__ import annotations

import threading
import time

import pytest

from core.compiled import lazy_kernels


def test_compiles_once_for_threads_asking_together():
    calls = []

    def compile():
        calls.append(1)
        time.sleep(0.05)  # numba's cache reads take a while: the second thread arrives meanwhile
        return {"a": "kernel a", "b": "kernel b"}

    get = lazy_kernels(compile)
    seen = []
    threads = [threading.Thread(target=lambda name=name: seen.append(get(name))) for name in ("a", "b", "a")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert sorted(seen) == ["kernel a", "kernel a", "kernel b"]
    assert get("b") == "kernel b" and len(calls) == 1


def test_unknown_kernel_is_a_key_error():
    get = lazy_kernels(lambda: {"a": 1})
    with pytest.raises(KeyError):
        get("missing")
