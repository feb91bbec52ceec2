"""Per-frame lighting: second-order SH coefficients from the colours under the landmarks.

The image model is core.render's: colour = albedo * (sh_basis(normal) @ coeffs), normals in camera space,
pixel values used as they are (no gamma), as the synthetic generator renders. During the landmark pass
the pipeline keeps each frame's colours at its detected landmark pixels (L x 3 bytes a frame, no second
decoding pass); after the fit, each landmark's surface normal (the fitted head's, turned by the frame's
head rotation) gives 3 linear equations per landmark in the 27 coefficients, solved per frame as a
9 x 9 system with one round of outlier rejection (hair, glasses, highlights) and a light ridge (one
compiled pass, core.tracking._kernels.sh_light_fit). Albedo is one uniform skin colour: the fitted light
absorbs the real skin's tint.
"""

from __future__ import annotations

import numpy as np

from ..facemodel.model import FaceModel
from ..render.sh import vertex_normals
from . import _kernels

# A mid skin tone; with pixel values in [0, 1] the coefficients then describe the light.
SKIN_ALBEDO = np.array([0.60, 0.45, 0.38])
# Only a hemisphere of normals is ever seen, on which the constant, z and 3z^2-1 bands are nearly
# collinear: a light ridge (per sample) on the bands above the constant keeps them from trading off.
RIDGE = 0.01
FACING = 0.25  # cosine between normal and view direction below which a point is too oblique to use
MIN_POINTS = 20  # fewer usable points than this: no light for the frame (NaN)
KEEP_PERCENT = 80.0  # the refit keeps the points whose residual is within this percentile (hair, highlights)


def surface_normals(face_model: FaceModel, identity: np.ndarray | None, corners: np.ndarray,
                    bary: np.ndarray) -> np.ndarray:
    """(L, 3) unit model-space normals of the person's neutral head at surface points (corners (L, 3) vertex
    ids and barycentric weights (L, 3))."""
    v = face_model.identity_shape(identity).astype(np.float64)
    n = vertex_normals(v, face_model.triangles)
    out = np.einsum("lcj,lc->lj", n[corners], np.asarray(bary, np.float64))
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def sample_colours(image_bgr: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(L, 3) uint8 RGB at the pixels nearest to points (L, 2) (clamped to the image)."""
    h, w = image_bgr.shape[:2]
    xi = np.clip(np.rint(points[:, 0]).astype(np.intp), 0, w - 1)
    yi = np.clip(np.rint(points[:, 1]).astype(np.intp), 0, h - 1)
    return image_bgr[yi, xi, ::-1]


def fit_lighting(colours: np.ndarray, normals_model: np.ndarray, rotation: np.ndarray, points_cam: np.ndarray,
                 use: np.ndarray | None = None, albedo: np.ndarray | None = None) -> np.ndarray:
    """(N, 9, 3) SH coefficients (RGB), NaN for frames with too few usable points.

    colours (N, L, 3) uint8 RGB; normals_model (L, 3); rotation (N, 3, 3); points_cam (N, L, 3) the fitted
    surface points in camera space (for the view direction); use (L,) bool: points allowed at all.
    """
    colours = np.asarray(colours, np.float64) / 255.0
    n_frames, n_pts = colours.shape[:2]
    albedo = SKIN_ALBEDO if albedo is None else np.asarray(albedo, np.float64)
    use = np.ones(n_pts, bool) if use is None else np.asarray(use, bool)
    coeffs = np.empty((n_frames, 9, 3))

    def c(a):
        return np.ascontiguousarray(a, np.float64)

    # One compiled pass per frame (as numpy, the (N, L, 9) temporaries and a sort per round cost ~0.3 ms a
    # frame, a tenth of a frame's whole fit).
    _kernels.get("sh_light_fit")(c(normals_model), c(rotation), c(points_cam), colours, use, FACING, albedo,
                                 RIDGE * np.r_[0.0, np.ones(8)], MIN_POINTS, KEEP_PERCENT, coeffs)
    return coeffs
