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

        try:
            return FanBackend(**options)
        except ImportError as e:  # e.g. inside Blender, whose extension does not bundle torch
            raise LandmarkBackendError(
                f"the face-alignment (FAN) backend needs torch and face-alignment, which are not installed here "
                f"({e.name}); use the MediaPipe backend") from e
    raise LandmarkBackendError(f"unknown landmark backend {name!r}; choose one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "FaceLandmarks", "LandmarkBackend", "LandmarkBackendError", "get_backend"]
