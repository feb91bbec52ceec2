"""Second-order spherical-harmonics lighting (Ramamoorthi-Hanrahan irradiance) and vertex normals.

Convention used everywhere in Likeness: normals and lighting live in CAMERA space (x right, y up, z
towards the viewer), and `coeffs` (9, 3) are irradiance coefficients (the cosine-lobe convolution is
folded in), so shading = albedo * (sh_basis(n) @ coeffs) and they come out of a linear least-squares fit
of image colour / albedo against sh_basis directly. Uniform light of 1 is coeffs[0] = 1 / SH_C0.
"""

from __future__ import annotations

import numpy as np

SH_C0 = 0.282095  # 1 / (2 sqrt(pi))
SH_C1 = 0.488603  # sqrt(3 / (4 pi))
SH_C2 = 1.092548  # sqrt(15 / (4 pi))
SH_C3 = 0.315392  # sqrt(5 / (16 pi))
SH_C4 = 0.546274  # sqrt(15 / (16 pi))


def sh_basis(normals: np.ndarray) -> np.ndarray:
    """(..., 3) unit normals -> (..., 9) real SH basis, order l=0; l=1 (y, z, x); l=2 (xy, yz, 3z²-1, xz, x²-y²)."""
    n = np.asarray(normals)
    x, y, z = n[..., 0], n[..., 1], n[..., 2]
    return np.stack([
        np.full_like(x, SH_C0),
        SH_C1 * y, SH_C1 * z, SH_C1 * x,
        SH_C2 * x * y, SH_C2 * y * z, SH_C3 * (3 * z * z - 1), SH_C2 * x * z, SH_C4 * (x * x - y * y),
    ], axis=-1)


def shade(albedo: np.ndarray, normals: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """albedo (..., 3) * irradiance(normals (..., 3)) with coeffs (9, 3) -> (..., 3)."""
    coeffs = np.asarray(coeffs)
    if coeffs.shape != (9, 3):
        raise ValueError(f"SH coefficients must be (9, 3), got {coeffs.shape}")
    albedo = np.asarray(albedo)
    return albedo * (sh_basis(normals) @ coeffs.astype(albedo.dtype, copy=False))


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(V, 3) area-weighted unit normals of an outward (counter-clockwise) wound mesh; 0 for loose vertices."""
    from . import _kernels

    out = np.zeros((len(vertices), 3))
    _kernels.get("normals")(np.ascontiguousarray(vertices, np.float64), np.ascontiguousarray(triangles, np.int64), out)
    return out
