"""Textured, SH-lit rendering of the ICT head (the synthetic generator's and the fitter's image model)."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from . import _kernels
from .atlas import texture_coords, visible_triangles
from .camera import Camera
from .rasterize import Fragments, project_mesh, rasterize
from .sh import vertex_normals


@lru_cache(maxsize=4)
def _render_tables(model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(visible triangle ids (K,), their vertex ids (K, 3) int64, their atlas coords (K, 3, 2))."""
    keep = np.flatnonzero(visible_triangles(model))
    return (keep, np.ascontiguousarray(model.triangles[keep], np.int64),
            np.ascontiguousarray(texture_coords(model)[keep], np.float64))


def sample_texture(texture: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Bilinear lookup: texture (S, S, C), coords (N, 2) atlas [0, 1] (x right, y down) -> (N, C) float32."""
    size_y, size_x = texture.shape[:2]
    tex = texture if texture.dtype == np.float32 else texture.astype(np.float32)
    mx = (coords[:, 0] * size_x - 0.5).astype(np.float32).reshape(-1, 1)
    my = (coords[:, 1] * size_y - 0.5).astype(np.float32).reshape(-1, 1)
    # cv2.remap takes at most 32767 rows in a map: fold the pixel list into a wide 2-D map.
    n = len(mx)
    cols = 1024
    rows = -(-n // cols)
    pad = rows * cols - n
    mx = np.concatenate([mx.ravel(), np.zeros(pad, np.float32)]).reshape(rows, cols)
    my = np.concatenate([my.ravel(), np.zeros(pad, np.float32)]).reshape(rows, cols)
    out = cv2.remap(tex, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(rows * cols, -1)[:n]


def render_face(
    model,
    camera: Camera,
    vertices_cam: np.ndarray,
    albedo_map: np.ndarray,
    sh: np.ndarray,
    background: np.ndarray | tuple | None = None,
    cull_back: bool = True,
) -> tuple[np.ndarray, Fragments]:
    """Render the head: atlas albedo (see core.render.atlas) times SH irradiance at interpolated normals.

    vertices_cam: (V, 3) camera-space metres; albedo_map: (S, S, 3) float in [0, 1] (channel order is kept:
    RGB in gives RGB out); sh: (9, 3) camera-space irradiance coefficients (core.render.sh);
    background: None (black), a colour (3,) or an (H, W, 3) image. Returns the linear image (H, W, 3)
    float32 (not clipped) and the fragments, whose triangle ids index model.triangles. cull_back skips
    triangles facing away (about 1/3 faster; the ICT head is closed where it can be seen from).
    """
    vertices_cam = np.asarray(vertices_cam, np.float64)
    if vertices_cam.shape != model.neutral.shape:
        raise ValueError(f"vertices_cam must be {model.neutral.shape}, got {vertices_cam.shape}")
    albedo_map = np.asarray(albedo_map)
    if albedo_map.ndim != 3 or albedo_map.shape[2] != 3:
        raise ValueError(f"albedo_map must be (S, S, 3), got {albedo_map.shape}")
    keep, tris, tex_corners = _render_tables(model)
    h, w = camera.height, camera.width
    frags = rasterize(project_mesh(camera, vertices_cam), tris, w, h, perspective=True, cull_back=cull_back)
    normals = vertex_normals(vertices_cam, model.triangles)
    if background is None:
        image = np.zeros((h, w, 3), np.float32)
    else:
        bg = np.asarray(background, np.float32)
        image = np.broadcast_to(bg, (h, w, 3)).copy() if bg.ndim == 1 else bg.astype(np.float32, copy=True)
        if image.shape != (h, w, 3):
            raise ValueError(f"background must be (3,) or {(h, w, 3)}, got {bg.shape}")
    tex = np.ascontiguousarray(albedo_map, np.float32)
    _kernels.get("shade_pixels")(frags.triangle, frags.bary, tris, normals, tex_corners,
                                 np.asarray(sh, np.float64).reshape(9, 3), tex, image)
    mask = frags.triangle >= 0
    frags.triangle[mask] = keep[frags.triangle[mask]]
    return image, frags


def eye_centres(model, vertices: np.ndarray) -> np.ndarray:
    """(2, 3) eyeball rotation centres [left, right]: sphere fits to the eyeball meshes of vertices (V, 3)."""
    out = []
    for side in ("left", "right"):
        a, b = model.submeshes[f"eyeball_{side}"]
        p = np.asarray(vertices[a:b], np.float64)
        lhs = np.c_[2 * p, np.ones(len(p))]
        out.append(np.linalg.lstsq(lhs, (p**2).sum(1), rcond=None)[0][:3])
    return np.array(out)


def rotate_eyes(model, vertices: np.ndarray, gaze: np.ndarray, centres: np.ndarray | None = None) -> np.ndarray:
    """Turn the eyeballs (incl. irises) of model-space vertices (V, 3) by gaze (2, 2) [left, right] x [yaw, pitch].

    Degrees, as core.tracking.gaze: yaw about y (towards +x positive), pitch about x (down positive);
    R = Ry(yaw) @ Rx(pitch) about each eyeball centre. The ICT eyeLook shapes move only the lids.
    """
    from .camera import euler_to_matrix

    out = np.array(vertices, copy=True)
    centres = eye_centres(model, vertices) if centres is None else centres
    for eye, side in enumerate(("left", "right")):
        yaw, pitch = np.asarray(gaze, np.float64)[eye]
        rot = euler_to_matrix(np.array([pitch, yaw, 0.0]))  # Rz @ Ry @ Rx with z = 0
        a, b = model.submeshes[f"eyeball_{side}"]
        c = centres[eye]
        out[a:b] = ((out[a:b] - c) @ rot.T + c).astype(out.dtype)
    return out


def to_uint8_bgr(image: np.ndarray) -> np.ndarray:
    """A linear RGB float image (H, W, 3) -> uint8 BGR for OpenCV (clipped, rounded)."""
    return np.round(np.clip(image[..., ::-1], 0.0, 1.0) * 255.0).astype(np.uint8)


def render_frame(
    model,
    identity: np.ndarray | None,
    weights: np.ndarray | None,
    rotation_deg: np.ndarray,
    translation: np.ndarray,
    camera: Camera,
    albedo: np.ndarray,
    sh: np.ndarray,
    background: np.ndarray | tuple | None = None,
    gaze: np.ndarray | None = None,
    extra_expressions: np.ndarray | None = None,
) -> np.ndarray:
    """One still, uint8 BGR (H, W, 3): the ICT head with identity (100,), weights (53,), head pose
    (v_cam = R @ v + t, XYZ Euler degrees, metres), atlas albedo (S, S, 3) RGB and SH (9, 3).

    gaze (2, 2) turns the eyeballs (see rotate_eyes); extra_expressions (53, V, 3) adds per-shape deltas
    (a subject's personal corrections) to the generic ones.
    """
    from .camera import transform

    v = model.vertices(identity, weights).astype(np.float64)
    if extra_expressions is not None and weights is not None:
        v += np.tensordot(np.asarray(weights, np.float64), extra_expressions, axes=1)
    if gaze is not None:
        v = rotate_eyes(model, v, gaze)
    v_cam = transform(v, np.asarray(rotation_deg, np.float64), np.asarray(translation, np.float64))
    image, _ = render_face(model, camera, v_cam, albedo, sh, background)
    return to_uint8_bgr(image)
