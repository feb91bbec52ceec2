"""Per-frame arrays spilled to a temporary file while a clip streams, and read back a block of frames at a time.

Kept in memory, a capture's landmark points (478 x 2 float32: 3.8 KB a frame) and the colours under them
(1.4 KB) would grow the process by some 170 MB per 10 minutes of 30 fps video. A FrameFile writes them out a
block of rows at a time and hands back copies of the rows asked for, so whoever walks a clip block by block
holds one block. The file is anonymous (tempfile.TemporaryFile, in the system's temporary folder): the OS
deletes it when the last handle to it closes, or when the process ends however it ends, so a cancelled or
failed capture leaves nothing behind; an array from mapped() holds its own handle and keeps the data for as
long as it lives.
"""

from __future__ import annotations

import mmap
import tempfile
import threading

import numpy as np


class TemporaryFileError(OSError):
    """A temporary frame or crop file could not be written or read back (a full disk, most likely)."""


class FrameFile:
    """An append-only (frames, *row_shape) array on disk, read back by frame: f[i], f[a:b] and f[indices] are copies.

    Usable where track_clip takes points: it has shape, ndim, dtype and len, and slices into arrays.
    """

    def __init__(self, row_shape: tuple[int, ...], dtype, block: int = 256):
        self.row_shape = tuple(int(s) for s in row_shape)
        self.dtype = np.dtype(dtype)
        self._row_bytes = self.dtype.itemsize * int(np.prod(self.row_shape, dtype=np.int64))
        self._buffer = np.empty((block, *self.row_shape), self.dtype)
        self._pending = 0  # rows in the buffer, not yet written
        self._written = 0  # rows in the file
        self._file = tempfile.TemporaryFile(prefix="likeness-frames-")
        # One seek-then-read at a time: two threads reading frames at once (the photometric refinement's
        # workers did) could each read from where the other had just moved the file: another frame's points.
        self._lock = threading.RLock()

    def append(self, row) -> None:
        self._buffer[self._pending] = row
        self._pending += 1
        if self._pending == len(self._buffer):
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            if self._pending:
                try:
                    self._file.seek(self._written * self._row_bytes)
                    self._file.write(memoryview(self._buffer[:self._pending]).cast("B"))
                except OSError as e:
                    raise TemporaryFileError(f"could not write a temporary frame file: {e}") from e
                self._written += self._pending
                self._pending = 0

    def __len__(self) -> int:
        return self._written + self._pending

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.row_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.row_shape)

    def _read(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((max(stop - start, 0), *self.row_shape), self.dtype)
        if len(out):
            with self._lock:
                self._flush()
                self._file.seek(start * self._row_bytes)
                if self._file.readinto(memoryview(out).cast("B")) != out.nbytes:
                    raise TemporaryFileError("the temporary frame file came back short")
        return out

    def __getitem__(self, key) -> np.ndarray:
        n = len(self)
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step == 1:
                return self._read(start, stop)
            key = np.arange(start, stop, step)
        if np.ndim(key) == 0:
            i = int(key)
            if not -n <= i < n:
                raise IndexError(f"frame {i} is outside the {n} frames")
            i %= n
            return self._read(i, i + 1)[0]
        idx = np.asarray(key)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        out = np.empty((len(idx), *self.row_shape), self.dtype)
        for k, i in enumerate(idx.ravel()):
            out[k] = self[int(i)]
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """The whole clip in memory (what the block reads avoid; for small clips and tests)."""
        out = self._read(0, len(self))
        return out if dtype is None else out.astype(dtype, copy=False)

    def mapped(self) -> np.ndarray:
        """A read-only np.memmap of every row, copying nothing; it keeps the file alive while it lives.

        Pages of it that are read count towards the process's memory until the OS needs them back.
        """
        self._flush()
        if not len(self):
            return np.empty(self.shape, self.dtype)
        self._file.flush()
        return np.memmap(self._file, self.dtype, mode="r", shape=self.shape)

    def close(self) -> None:
        """Give the file up (rows already handed out by mapped() stay readable)."""
        self._file.close()

    def __enter__(self) -> FrameFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def release_pages(array: np.ndarray) -> None:
    """Let the OS take back the pages of a read-only np.memmap read so far; the data stays on disk.

    Pages of a file mapping that were read count as the process's memory until it is under pressure, so
    walking a long mapped array block by block would otherwise leave all of it resident. A no-op for other
    arrays and where the OS has no madvise (Windows).
    """
    mm = getattr(array, "_mmap", None)  # np.memmap's mmap.mmap, shared by its views
    if isinstance(array, np.memmap) and array.mode == "r" and isinstance(mm, mmap.mmap) \
            and hasattr(mmap, "MADV_DONTNEED"):
        mm.madvise(mmap.MADV_DONTNEED)
