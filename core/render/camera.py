"""Pinhole camera and head pose conventions (right-handed, Y up, the camera looking down -Z)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Camera:
    """Principal point at the image centre, square pixels. Pixel rows grow downwards."""

    width: int
    height: int
    focal: float  # pixels

    @property
    def center(self) -> tuple[float, float]:
        return (self.width - 1) / 2.0, (self.height - 1) / 2.0

    def matrix(self) -> np.ndarray:
        """(3, 3) OpenCV-style intrinsics for a camera looking down +Z with Y down (see to_opencv)."""
        cx, cy = self.center
        return np.array([[self.focal, 0, cx], [0, self.focal, cy], [0, 0, 1]], np.float64)

    def project(self, points: np.ndarray) -> np.ndarray:
        """points (..., 3) in camera space -> (..., 2) pixels (x right, y down)."""
        cx, cy = self.center
        z = -points[..., 2]
        return np.stack([cx + self.focal * points[..., 0] / z, cy - self.focal * points[..., 1] / z], axis=-1)

    @staticmethod
    def from_fov(width: int, height: int, fov_degrees: float) -> Camera:
        """Horizontal field of view -> focal length in pixels."""
        return Camera(width, height, 0.5 * width / np.tan(np.radians(fov_degrees) / 2))


def euler_to_matrix(degrees: np.ndarray) -> np.ndarray:
    """(..., 3) XYZ Euler degrees -> (..., 3, 3) R = Rz @ Ry @ Rx (Blender's XYZ mode, scipy 'xyz')."""
    a = np.radians(np.asarray(degrees, np.float64))
    cx, cy, cz = np.cos(a[..., 0]), np.cos(a[..., 1]), np.cos(a[..., 2])
    sx, sy, sz = np.sin(a[..., 0]), np.sin(a[..., 1]), np.sin(a[..., 2])
    r = np.empty(a.shape[:-1] + (3, 3))
    r[..., 0, 0] = cy * cz
    r[..., 0, 1] = sx * sy * cz - cx * sz
    r[..., 0, 2] = cx * sy * cz + sx * sz
    r[..., 1, 0] = cy * sz
    r[..., 1, 1] = sx * sy * sz + cx * cz
    r[..., 1, 2] = cx * sy * sz - sx * cz
    r[..., 2, 0] = -sy
    r[..., 2, 1] = sx * cy
    r[..., 2, 2] = cx * cy
    return r


def matrix_to_euler(r: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation -> (..., 3) XYZ Euler degrees, the inverse of euler_to_matrix."""
    r = np.asarray(r, np.float64)
    y = np.arcsin(np.clip(-r[..., 2, 0], -1.0, 1.0))
    x = np.arctan2(r[..., 2, 1], r[..., 2, 2])
    z = np.arctan2(r[..., 1, 0], r[..., 0, 0])
    return np.degrees(np.stack([x, y, z], axis=-1))


def transform(points: np.ndarray, rotation_degrees: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Model space (..., V, 3) -> camera space with one pose (3,), (3,)."""
    return points @ euler_to_matrix(rotation_degrees).T.astype(points.dtype) + np.asarray(translation, points.dtype)
