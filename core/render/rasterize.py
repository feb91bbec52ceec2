"""Z-buffer triangle rasterizer (image space and UV space) and attribute interpolation."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import _kernels
from .camera import Camera


@dataclass
class Fragments:
    """What covers each pixel. Pixel centres sit at integer coordinates (x = column, y = row).

    triangle: (H, W) int32 index into the triangles that were rasterized, -1 where empty.
    bary: (H, W, 3) float32 barycentric weights of the triangle's three corners (0 where empty).
    depth: (H, W) float32 depth of the nearest surface (smaller = nearer), inf where empty.
    """

    triangle: np.ndarray
    bary: np.ndarray
    depth: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool: covered pixels."""
        return self.triangle >= 0

    @property
    def shape(self) -> tuple[int, int]:
        return self.triangle.shape


def rasterize(
    points: np.ndarray,
    triangles: np.ndarray,
    width: int,
    height: int,
    perspective: bool | None = None,
    cull_back: bool | np.ndarray = False,
) -> Fragments:
    """Nearest triangle per pixel.

    points: (V, 3) [x_px, y_px, depth], smaller depth = nearer; triangles: (T, 3) vertex indices.
    perspective: barycentrics and depth interpolated perspective-correctly (depth must be camera
    depth > 0, as project_mesh gives; triangles touching depth <= 0 are dropped); None = on when every
    depth is positive, off otherwise (UV space, depth 0). cull_back drops triangles that are clockwise
    in a y-up view (the back of an outward-wound mesh after project_mesh): True for all, or a (T,) bool
    array choosing which triangles may be culled (closed parts; not surfaces seen from inside).
    """
    points = np.asarray(points, np.float64)
    triangles = np.ascontiguousarray(triangles, np.int64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be (V, 3), got {points.shape}")
    if triangles.ndim != 2 or triangles.shape[1] != 3:
        raise ValueError(f"triangles must be (T, 3), got {triangles.shape}")
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if triangles.size and (triangles.min() < 0 or triangles.max() >= len(points)):
        raise ValueError("triangle indices out of range")
    cull = np.broadcast_to(np.asarray(cull_back, np.bool_), (len(triangles),))
    if perspective is None:
        perspective = bool(np.all(points[:, 2] > 0))
    tri = np.full((height, width), -1, np.int32)
    bary = np.zeros((height, width, 3), np.float32)
    depth = np.full((height, width), np.inf, np.float32)
    if len(triangles):
        _kernels.get("raster")(
            np.ascontiguousarray(points[:, 0]), np.ascontiguousarray(points[:, 1]),
            np.ascontiguousarray(points[:, 2]), triangles, perspective, np.ascontiguousarray(cull), tri, bary,
            depth,
        )
    return Fragments(tri, bary, depth)


def interpolate(frags: Fragments, values: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Barycentric interpolation of vertex attributes over the covered pixels (0 elsewhere).

    values: (V, C) per vertex or (T, 3, C) per triangle corner (e.g. UVs: model.uvs[model.triangle_uvs]),
    or (V,) for one channel. triangles: those frags.triangle indexes. Returns (H, W, C) float32
    (or (H, W) for one channel).
    """
    values = np.asarray(values)
    triangles = np.asarray(triangles)
    per_corner = values.ndim == 3
    squeeze = values.ndim == 1
    if squeeze:
        values = values[:, None]
    if per_corner:
        flat = values.reshape(-1, values.shape[-1])
        rows = np.arange(flat.shape[0]).reshape(-1, 3)
    else:
        flat, rows = values, triangles
    out = np.zeros(frags.triangle.shape + (values.shape[-1],), np.float32)
    _kernels.get("gather")(frags.triangle, frags.bary, np.ascontiguousarray(rows, np.int64),
                           np.ascontiguousarray(flat, np.float64), out)
    return out[..., 0] if squeeze else out


def project_mesh(camera: Camera, vertices_cam: np.ndarray) -> np.ndarray:
    """(V, 3) camera-space vertices -> (V, 3) [x_px, y_px, depth] for rasterize (depth = -z, metres)."""
    vertices_cam = np.asarray(vertices_cam, np.float64)
    xy = camera.project(vertices_cam)
    return np.concatenate([xy, -vertices_cam[:, 2:3]], axis=1)


def uv_rasterize(model, size: int) -> Fragments:
    """Texel -> (triangle, barycentrics) of the ICT UV layout packed into one size x size atlas.

    Triangle ids index model.triangles; hidden sub-meshes (eyelashes, lacrimal fluid, eye occlusion and
    blend cards) are left out. Cached in memory per (model, size); treat the arrays as read-only.
    """
    return _uv_rasterize(model, int(size))


@lru_cache(maxsize=4)
def _uv_rasterize(model, size: int) -> Fragments:
    from .atlas import texture_coords, visible_triangles

    if size <= 0:
        raise ValueError(f"texture size must be positive, got {size}")
    keep = np.flatnonzero(visible_triangles(model))
    corners = texture_coords(model)[keep] * size - 0.5  # (K, 3, 2), texel centres at integers
    points = np.concatenate([corners.reshape(-1, 2), np.zeros((corners.shape[0] * 3, 1))], axis=1)
    frags = rasterize(points, np.arange(len(points)).reshape(-1, 3), size, size, perspective=False)
    covered = frags.triangle >= 0
    frags.triangle[covered] = keep[frags.triangle[covered]]
    for a in (frags.triangle, frags.bary, frags.depth):
        a.flags.writeable = False
    return frags
