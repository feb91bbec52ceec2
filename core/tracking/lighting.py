"""Per-frame lighting: second-order SH coefficients from the colours under the landmarks.

The image model is core.render's: colour = albedo * (sh_basis(normal) @ coeffs), normals in camera space,
pixel values used as they are (no gamma), as the synthetic generator renders. During the landmark pass
the pipeline keeps each frame's colours at its detected landmark pixels (L x 3 bytes a frame, no second
decoding pass); after the fit, each landmark's surface normal (the fitted head's, turned by the frame's
head rotation) gives 3 linear equations per landmark in the 27 coefficients. All frames are solved at
once as batched 9 x 9 systems, with one round of outlier rejection (hair, glasses, highlights) and a
light ridge. Albedo is one uniform skin colour: the fitted light absorbs the real skin's tint.
"""

from __future__ import annotations

import numpy as np

from ..facemodel.model import FaceModel
from ..render.sh import sh_basis, vertex_normals

# A mid skin tone; with pixel values in [0, 1] the coefficients then describe the light.
SKIN_ALBEDO = np.array([0.60, 0.45, 0.38])
# Only a hemisphere of normals is ever seen, on which the constant, z and 3z^2-1 bands are nearly
# collinear: a light ridge (per sample) on the bands above the constant keeps them from trading off.
RIDGE = 0.01
FACING = 0.25  # cosine between normal and view direction below which a point is too oblique to use


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
    # batched matmuls, not einsum: numpy's einsum runs these contractions unblocked, 5x slower
    normals = np.asarray(normals_model, np.float64) @ np.asarray(rotation, np.float64).transpose(0, 2, 1)
    view = -points_cam / np.linalg.norm(points_cam, axis=-1, keepdims=True)
    ok = (normals * view).sum(-1) > FACING
    if use is not None:
        ok &= np.asarray(use, bool)[None]
    basis = sh_basis(normals)  # (N, L, 9)
    ridge = RIDGE * np.r_[0.0, np.ones(8)]
    coeffs = np.full((n_frames, 9, 3), np.nan)
    for _ in range(2):  # fit; drop the worst 20 % of residuals per frame; refit
        wgt = ok.astype(np.float64)
        count = wgt.sum(1)
        at = (basis * wgt[..., None]).transpose(0, 2, 1)  # (N, 9, L)
        ata = at @ basis + count[:, None, None] * np.diag(ridge)
        atb = (at @ colours) / albedo  # colour / albedo per channel
        good = count >= 20
        coeffs[good] = np.linalg.solve(ata[good], atb[good])
        coeffs[~good] = np.nan
        pred = albedo * (basis @ np.nan_to_num(coeffs))
        resid = np.abs(pred - colours).sum(-1)
        ok &= resid <= masked_percentile(resid, ok, 80.0)[:, None]
    return coeffs


def masked_percentile(values: np.ndarray, mask: np.ndarray, q: float) -> np.ndarray:
    """(N,) the q-th percentile of each row of values (N, L) over its entries where mask, interpolated
    linearly as np.nanpercentile does; inf for a row with none. One sort for all rows: nanpercentile loops
    over them in Python (it was most of the lighting stage's time)."""
    s = np.sort(np.where(mask, values, np.inf), axis=1)
    k = mask.sum(1)
    pos = q / 100.0 * np.maximum(k - 1, 0)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, np.maximum(k - 1, 0))
    rows = np.arange(len(values))
    a, b = s[rows, lo], s[rows, hi]
    frac = pos - lo
    with np.errstate(invalid="ignore"):
        out = np.where(frac > 0, a + frac * (b - a), a)
    return np.where(k > 0, out, np.inf)
