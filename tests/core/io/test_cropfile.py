"""CropFile: face crops round-trip through the temporary file (JPEG, close to the original), read safely from
several threads at once, and leave nothing behind when closed."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from core.io.cropfile import CropFile, FaceCrop
from core.io.framefile import TemporaryFileError


def _crop(seed: int) -> np.ndarray:
    """A smooth image (as a blurred face crop is) that JPEG keeps within a few grey levels."""
    y, x = np.mgrid[0:90, 0:70]
    rng = np.random.default_rng(seed)
    f = rng.uniform(0.03, 0.1, 3)
    return np.stack([127 + 100 * np.sin(f[c] * x + f[(c + 1) % 3] * y + seed) for c in range(3)], -1).astype(np.uint8)


def test_crops_come_back_close_to_what_was_stored():
    with CropFile() as crops:
        for i in (7, 2, 30):
            crops.add(i, FaceCrop(_crop(i), (i, 2 * i), 0.5 + i / 100))
        assert len(crops) == 3 and 2 in crops and 3 not in crops
        assert crops.frames().tolist() == [2, 7, 30] and list(crops) == [2, 7, 30]
        for i in (2, 7, 30):
            crop, origin, scale = crops[i]
            assert origin == (i, 2 * i) and scale == 0.5 + i / 100 and crop.shape == (90, 70, 3)
            assert np.abs(crop.astype(int) - _crop(i)).mean() < 2.0
        assert crops.nbytes < 3 * 90 * 70 * 3  # stored compressed
        with pytest.raises(KeyError):
            crops[3]


def test_crops_are_read_from_several_threads():
    with CropFile() as crops:
        for i in range(40):
            crops.add(i, FaceCrop(_crop(i), (i, 0)))
        with ThreadPoolExecutor(4) as pool:
            origins = list(pool.map(lambda i: crops[i][1][0], list(range(40)) * 5))
        assert origins == list(range(40)) * 5


def test_closing_leaves_no_file():
    crops = CropFile()
    crops.add(0, FaceCrop(_crop(0), (0, 0)))
    fd = crops._file.fileno()
    crops.close()
    with pytest.raises(OSError):
        os.fstat(fd)


def test_a_failed_write_is_a_temporary_file_error():
    class FullDisk:
        def seek(self, offset):
            pass

        def write(self, data):
            raise OSError(28, "No space left on device")

        def close(self):
            pass

    crops = CropFile()
    crops._file.close()
    crops._file = FullDisk()
    with pytest.raises(TemporaryFileError, match="No space left"):
        crops.add(0, FaceCrop(_crop(0), (0, 0)))
    assert len(crops) == 0
