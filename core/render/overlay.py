"""Drawing fitted meshes and landmarks over video frames (PNG overlays for checking a fit)."""

from __future__ import annotations

import cv2
import numpy as np

_SHIFT = 4  # cv2 fixed-point bits: sub-pixel line ends
_SCALE = 1 << _SHIFT


def mesh_edges(triangles: np.ndarray) -> np.ndarray:
    """(T, 3) triangles -> (E, 2) unique undirected edges."""
    t = np.asarray(triangles)
    e = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)


def draw_mesh_overlay(
    image: np.ndarray,
    points2d: np.ndarray,
    triangles: np.ndarray,
    color: tuple[int, int, int] = (0, 255, 0),
    alpha: float = 0.5,
    front_only: bool = True,
    thickness: int = 1,
) -> np.ndarray:
    """Wireframe of triangles at points2d (V, 2) pixels blended over image (H, W, 3) uint8 BGR; returns a copy.

    front_only drops triangles wound clockwise on screen in a y-up sense (the back of an outward-wound
    mesh seen through project_mesh), which hides the far side of the head and the inside of the mouth.
    """
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError("image must be (H, W, 3) uint8")
    p = np.asarray(points2d, np.float64)[:, :2]
    t = np.asarray(triangles)
    if front_only:
        a, b, c = p[t[:, 0]], p[t[:, 1]], p[t[:, 2]]
        area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
        t = t[area < 0]
    finite = np.all(np.isfinite(p), axis=1)
    edges = mesh_edges(t) if len(t) else np.zeros((0, 2), int)
    edges = edges[finite[edges[:, 0]] & finite[edges[:, 1]]]
    fixed = np.round(np.nan_to_num(p) * _SCALE).astype(np.int32)
    layer = image.copy()
    lines = fixed[edges].reshape(-1, 2, 2)
    cv2.polylines(layer, list(lines), False, color, thickness, cv2.LINE_AA, _SHIFT)
    return cv2.addWeighted(layer, alpha, image, 1 - alpha, 0)


def draw_points(
    image: np.ndarray, points2d: np.ndarray, color: tuple[int, int, int] = (0, 0, 255), radius: int = 2,
    visible: np.ndarray | None = None,
) -> np.ndarray:
    """Filled dots at points2d (N, 2) on a copy of image (H, W, 3) uint8; hidden points (visible False) hollow."""
    out = image.copy()
    p = np.asarray(points2d, np.float64)[:, :2]
    for i, (x, y) in enumerate(p):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        filled = visible is None or bool(visible[i])
        centre = (int(round(x * _SCALE)), int(round(y * _SCALE)))
        cv2.circle(out, centre, radius * _SCALE, color, -1 if filled else 1, cv2.LINE_AA, _SHIFT)
    return out
