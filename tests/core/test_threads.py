"""one_blas_thread: BLAS on one thread inside, the caller's setting back afterwards, also when it raises."""

import pytest

from core.threads import blas_threads, one_blas_thread


def test_one_thread_inside_and_restored_after():
    before = blas_threads()
    with one_blas_thread():
        assert blas_threads() == 1
        with one_blas_thread():  # nested: still one, and the outer limit survives the inner exit
            assert blas_threads() == 1
        assert blas_threads() == 1
    assert blas_threads() == before

    @one_blas_thread()
    def fails():
        assert blas_threads() == 1
        raise ValueError("inside")

    for _ in range(2):  # the decorator enters afresh on every call
        with pytest.raises(ValueError):
            fails()
        assert blas_threads() == before
