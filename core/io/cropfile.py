"""Face crops of chosen frames in a temporary file: the photometric refinement need not decode the clip again.

The landmark pass already has every frame in hand; keeping the face crops of the frames the refinement will
read (every few frames) saves decoding the whole clip a second time (720p h264: ~3.3 ms a frame here, more
than the refinement's own share). A 720p face crop is ~0.5 MB raw; stored as JPEG at quality 95 it is ~50 KB,
and it lives in an anonymous temporary file like core.io.framefile's arrays, so memory stays flat in the
clip's length and nothing is left behind when a capture fails or is cancelled. The refinement blurs the crop
(sigma 2 pixels) before it compares it, far beyond what JPEG at this quality changes.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from typing import NamedTuple

import cv2
import numpy as np

from .framefile import TemporaryFileError

JPEG_QUALITY = 95


class FaceCrop(NamedTuple):
    """The face's part of a video frame. image (h, w, 3) BGR uint8; origin (x, y): its top-left corner in the
    frame (pixels); scale: image pixels per frame pixel (a big face is kept smaller: see face_crop)."""

    image: np.ndarray
    origin: tuple[int, int]
    scale: float = 1.0


class CropFile:
    """{frame index: FaceCrop}, on disk.

    Frames are added in any order, each once; reading one decodes it again.
    """

    def __init__(self):
        self._file = tempfile.TemporaryFile(prefix="likeness-crops-")
        self._index: dict[int, tuple[int, int, tuple[int, int], float]] = {}  # frame -> offset, length, origin, scale
        self._end = 0
        self._lock = threading.Lock()  # the refinement's workers read crops at the same time: one seek at a time

    def add(self, frame: int, crop: FaceCrop) -> None:
        ok, data = cv2.imencode(".jpg", crop.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise TemporaryFileError(f"could not encode the face crop of frame {frame}")
        with self._lock:
            try:
                self._file.seek(self._end)
                self._file.write(data.tobytes())
            except OSError as e:
                raise TemporaryFileError(f"could not write the temporary face crop file: {e}") from e
            self._index[int(frame)] = (self._end, len(data), (int(crop.origin[0]), int(crop.origin[1])),
                                       float(crop.scale))
            self._end += len(data)

    def __getitem__(self, frame: int) -> FaceCrop:
        offset, length, origin, scale = self._index[int(frame)]
        with self._lock:
            self._file.seek(offset)
            data = np.frombuffer(self._file.read(length), np.uint8)
        crop = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if crop is None:
            raise TemporaryFileError(f"the stored face crop of frame {frame} could not be decoded")
        return FaceCrop(crop, origin, scale)

    def __contains__(self, frame) -> bool:
        return int(frame) in self._index

    def __len__(self) -> int:
        return len(self._index)

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._index))

    def frames(self) -> np.ndarray:
        """(K,) the stored frame indices, ascending."""
        return np.array(sorted(self._index), np.int64)

    @property
    def nbytes(self) -> int:
        return self._end

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CropFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
