"""FrameFile: per-frame arrays spilled to an anonymous temporary file, read back by frame and by block."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from core.io.capture import Capture
from core.io.framefile import FrameFile, release_pages


def _rows(n: int) -> np.ndarray:
    return np.arange(n * 5 * 2, dtype=np.float32).reshape(n, 5, 2)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_round_trip_by_frame_block_and_index():
    data = _rows(23)
    with FrameFile((5, 2), np.float32, block=4) as f:
        for row in data[:10]:
            f.append(row)
        assert f[3].tolist() == data[3].tolist()  # readable while rows are still buffered
        for row in data[10:]:
            f.append(row)
        assert len(f) == 23 and f.shape == (23, 5, 2) and f.ndim == 3 and f.dtype == np.float32
        assert np.array_equal(f[:], data) and np.array_equal(np.asarray(f), data)
        assert np.array_equal(f[5:17], data[5:17]) and np.array_equal(f[20:99], data[20:])
        assert np.array_equal(f[-1], data[-1]) and np.array_equal(f[2:20:3], data[2:20:3])
        assert np.array_equal(f[np.array([0, 22, 7])], data[[0, 22, 7]])
        mask = np.zeros(23, bool)
        mask[[1, 4]] = True
        assert np.array_equal(f[mask], data[mask])
        assert f[30:40].shape == (0, 5, 2)
        with pytest.raises(IndexError):
            f[23]
        block = f[0:4]
        block[:] = -1  # a copy: the file is untouched
        assert np.array_equal(f[0:4], data[:4])


def test_mapped_is_read_only_and_outlives_the_file(tmp_path):
    data = _rows(700)
    f = FrameFile((5, 2), np.float32, block=64)
    for row in data:
        f.append(row)
    m = f.mapped()
    f.close()
    assert isinstance(m, np.memmap) and not m.flags.writeable
    assert np.array_equal(m, data)
    release_pages(m)  # drops what was read; reading again goes back to the file
    assert np.array_equal(m[650:], data[650:])
    release_pages(np.zeros(3))  # not a memmap: nothing to do
    # Saved as the landmarks of a capture, it is the same .npz as an array in memory.
    cap = Capture(names=("a",), weights=np.zeros((700, 1)), tracked=np.ones(700, bool), rotation=np.zeros((700, 3)),
                  translation=np.zeros((700, 3)), timestamps=np.arange(700) / 30, fps=30.0, image_size=(64, 64),
                  focal=50.0, landmarks=m)
    back = Capture.load(cap.save(tmp_path / "c.npz"))
    assert back.landmarks.dtype == np.float32 and np.array_equal(back.landmarks, data)
    assert np.array_equal(back.weights, cap.weights) and np.array_equal(back.timestamps, cap.timestamps)
    with np.load(tmp_path / "c.npz") as z:
        assert set(z.files) == {"names", "weights", "tracked", "rotation", "translation", "timestamps", "identity",
                                "confidence", "frame_indices", "landmarks"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/fd")
def test_nothing_is_left_open():
    before = _open_fds()
    with FrameFile((5, 2), np.float32) as f:
        f.append(np.ones((5, 2)))
        m = f.mapped()
    del m
    with pytest.raises(RuntimeError), FrameFile((5, 2), np.float32) as f:
        f.append(np.ones((5, 2)))
        raise RuntimeError("a capture failed half way")
    assert _open_fds() == before


def test_rows_are_read_from_several_threads():
    # Reads seek and then read: without the file's lock two threads now and then got each other's rows.
    from concurrent.futures import ThreadPoolExecutor

    with FrameFile((478, 2), np.float32, block=64) as f:
        for i in range(500):
            f.append(np.full((478, 2), i, np.float32))
        with ThreadPoolExecutor(4) as pool:
            rows = list(pool.map(lambda i: float(f[i][0, 0]), list(range(500)) * 8))
        assert rows == [float(i) for i in range(500)] * 8
