"""Per-frame lighting: second-order SH coefficients from the colours of a frame at visible face vertices.

The image model is core.render's: colour = albedo * (sh_basis(normal) @ coeffs), normals in camera space.
With the fitted pose, each sample vertex's pixel colour and normal give 3 linear equations per vertex in
the 27 coefficients; a least-squares fit with one round of outlier rejection (hair, glasses, highlights)
costs well under a millisecond. Albedo is one uniform skin colour unless given per sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..facemodel.model import FaceModel
from ..render.sh import sh_basis, vertex_normals

# A mid skin tone (linear RGB); the fitted lighting absorbs the difference to the real skin's colour.
SKIN_ALBEDO = np.array([0.60, 0.45, 0.38])
RIDGE = 0.01  # per sample, on SH bands 1-8


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


@dataclass(frozen=True, eq=False)
class LightingSampler:
    """The face vertices whose colours are sampled, with their neutral positions and normals (model space).

    vertices: (S,) ids; neutral (S, 3); normals (S, 3); expressions (E, 3S) flat, for the posed positions.
    """

    vertices: np.ndarray
    neutral: np.ndarray
    normals: np.ndarray
    expressions: np.ndarray
    albedo: np.ndarray  # (S, 3) linear RGB

    @classmethod
    def build(cls, model: FaceModel, identity: np.ndarray | None, count: int = 1500, albedo=None) -> LightingSampler:
        """Evenly thinned skin vertices of the face (no eyes, no mouth inside: those are in other sub-meshes).

        Normals come from the neutral head of this person and are turned with the head; expressions bend
        them only locally, which the low-order SH does not resolve anyway.
        """
        start, stop = model.submeshes["narrow_face"]
        neutral_all = model.identity_shape(identity).astype(np.float64)
        face_tris = model.triangles[(model.triangles < stop).all(1)]
        normals_all = vertex_normals(neutral_all, face_tris)
        ids = np.arange(start, stop)
        ids = ids[np.linalg.norm(normals_all[ids], axis=1) > 0.5]
        ids = ids[np.linspace(0, len(ids) - 1, min(count, len(ids))).astype(int)]
        alb = np.broadcast_to(SKIN_ALBEDO if albedo is None else np.asarray(albedo, np.float64), (len(ids), 3))
        return cls(ids, neutral_all[ids], normals_all[ids],
                   np.ascontiguousarray(model.expressions[:, ids], np.float64).reshape(len(model.expressions), -1),
                   np.array(alb))


def fit_sh(image_bgr: np.ndarray, sampler: LightingSampler, weights: np.ndarray, rotation: np.ndarray,
           translation: np.ndarray, focal: float, linear: bool = True) -> np.ndarray:
    """(9, 3) SH coefficients (RGB) of one frame, or NaN where too few vertices were visible.

    image_bgr: (H, W, 3) uint8; weights (E,), rotation (3, 3), translation (3,): the frame's fit.
    linear: convert the image from sRGB to linear first (the renderer's space).
    """
    h, w = image_bgr.shape[:2]
    p = sampler.neutral + (np.asarray(weights, np.float64) @ sampler.expressions).reshape(-1, 3)
    v = p @ rotation.T + translation
    n = sampler.normals @ rotation.T
    z = -v[:, 2]
    x = (w - 1) / 2.0 + focal * v[:, 0] / z
    y = (h - 1) / 2.0 - focal * v[:, 1] / z
    view = -v / np.sqrt((v * v).sum(1, keepdims=True))
    keep = ((n * view).sum(1) > 0.3) & (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    if keep.sum() < 30:
        return np.full((9, 3), np.nan)
    xi, yi = np.rint(x[keep]).astype(int), np.rint(y[keep]).astype(int)
    colour = image_bgr[yi, xi, ::-1] / 255.0
    if linear:
        colour = srgb_to_linear(colour)
    basis = sh_basis(n[keep])  # (S, 9)
    alb = sampler.albedo[keep]
    # Only a hemisphere of normals is ever seen, on which the constant, z and 3z^2-1 bands are nearly
    # collinear: a light ridge on the bands above the constant keeps the fit from trading them off wildly.
    ridge = RIDGE * np.r_[0.0, np.ones(8)]
    coeffs = np.zeros((9, 3))
    use = np.ones(len(basis), bool)
    for _ in range(2):  # fit, drop the worst residuals (hair, glasses, highlights), refit
        b = basis[use]
        k = float(use.sum())
        for c in range(3):
            a = b * alb[use, c : c + 1]
            coeffs[:, c] = np.linalg.solve(a.T @ a + k * np.diag(ridge), a.T @ colour[use, c])
        resid = np.abs(alb * (basis @ coeffs) - colour).sum(1)
        use = resid <= max(np.percentile(resid, 80), 1e-6)
    return coeffs
