"""Landmark backends behind one small interface: MediaPipe (default, 478 points) and FAN (68 points)."""

from __future__ import annotations

from .base import FaceLandmarks, LandmarkBackend, LandmarkBackendError

BACKENDS = ("mediapipe", "fan")


def get_backend(name: str = "mediapipe", **options) -> LandmarkBackend:
    """A ready backend by name; options go to its constructor (e.g. face_index=1, device="cpu")."""
    if name == "mediapipe":
        from .mediapipe import MediaPipeBackend

        return MediaPipeBackend(**options)
    if name == "fan":
        from .fan import FanBackend

        return FanBackend(**options)
    raise LandmarkBackendError(f"unknown landmark backend {name!r}; choose one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "FaceLandmarks", "LandmarkBackend", "LandmarkBackendError", "get_backend"]
