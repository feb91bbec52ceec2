"""The small interface every landmark backend offers: a still detector and a per-clip tracker."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


class LandmarkBackendError(RuntimeError):
    """A backend cannot run (missing weights, offline, bad options); the message is for the user."""


@dataclass
class FaceLandmarks:
    """One face in one frame, in full-frame pixels (x right, y down, pixel centres at integer coordinates)."""

    points: np.ndarray  # (N, 2) float32 pixels
    z: np.ndarray | None  # (N,) float32 relative depth in pixels (smaller is nearer), or None
    box: tuple[float, float, float, float]  # (x0, y0, x1, y1) pixels, the points' bounding box
    confidence: float  # 0..1, the backend's own face score
    detected: bool  # True when the face detector ran on this frame (first frame, or tracking was lost)

    @staticmethod
    def from_points(points: np.ndarray, z: np.ndarray | None, confidence: float,
                    detected: bool) -> FaceLandmarks:
        points = np.asarray(points, np.float32)
        x0, y0 = points.min(axis=0)
        x1, y1 = points.max(axis=0)
        return FaceLandmarks(points, None if z is None else np.asarray(z, np.float32),
                             (float(x0), float(y0), float(x1), float(y1)), float(confidence), detected)


def frame_image(frame: Any) -> np.ndarray:
    """A BGR uint8 image from a core.video Frame or a bare (H, W, 3) array."""
    image = getattr(frame, "image", frame)
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise LandmarkBackendError(
            f"expected a BGR uint8 image of shape (H, W, 3), got {getattr(image, 'shape', type(image))} "
            f"{getattr(image, 'dtype', '')}")
    return image


@runtime_checkable
class LandmarkBackend(Protocol):
    """detect() looks at one still; track() follows one face through a clip (detector only when needed).

    track yields exactly one item per input frame, None where no face was found, so callers can zip it
    with the frames. `job` (core.job.Job or None) gets job.step("landmarks", i, total) and may cancel.
    """

    name: str
    n_points: int

    def detect(self, image_bgr: np.ndarray) -> FaceLandmarks | None: ...

    def track(self, frames: Iterable[Any], job: Any = None,
              total: int = 0) -> Iterator[FaceLandmarks | None]: ...
