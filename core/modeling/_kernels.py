"""numba kernel of the albedo unwrapping, compiled lazily on first use.

Hand-written because a frame's unwrapping touches every texel of the atlas (up to ~600,000 at 1024) through
a dozen array steps (corner interpolation, view angle, depth test, SH shading, bilinear sample): as numpy
expressions each step wrote a texel-sized temporary and a 720p close-up spent ~50 ms a frame there; one pass
per texel does the same in a fraction. Compiled code is cached in the Likeness user cache (core/compiled.py).
"""

from __future__ import annotations

import numpy as np

from ..compiled import lazy_kernels, njit
from ..render.sh import SH_C0, SH_C1, SH_C2, SH_C3, SH_C4


def _compile() -> dict[str, object]:
    kernels: dict[str, object] = {}

    @njit(__name__, nogil=True)
    def unwrap(corners, bary, attrs, zbuf, depth_scale, image, lighting, min_cos, albedo_out, conf_out):
        """Per texel t (corners (T, 3) vertex ids, bary (T, 3)) of a frame: the albedo colour / shading and
        the confidence cos^2 of the view angle, or zeros where hidden, off-frame, too oblique or unlit.

        attrs (V, 9) per vertex: pixel x, y, depth; camera normal; camera point. zbuf (h, w): the nearest
        depth at depth_scale of the frame's resolution. image (H, W, 3) RGB; lighting (9, 3) SH irradiance.
        """
        height, width = image.shape[0], image.shape[1]
        zh, zw = zbuf.shape
        a = np.empty(9)
        basis = np.empty(9)
        for t in range(corners.shape[0]):
            albedo_out[t, 0] = 0.0
            albedo_out[t, 1] = 0.0
            albedo_out[t, 2] = 0.0
            conf_out[t] = 0.0
            for j in range(9):
                a[j] = 0.0
            for k in range(3):
                v = corners[t, k]
                b = bary[t, k]
                for j in range(9):
                    a[j] += b * attrs[v, j]
            px, py, pz = a[0], a[1], a[2]
            nx, ny, nz = a[3], a[4], a[5]
            n_len = np.sqrt(nx * nx + ny * ny + nz * nz)
            p_len = np.sqrt(a[6] * a[6] + a[7] * a[7] + a[8] * a[8])
            cos = -(nx * a[6] + ny * a[7] + nz * a[8]) / max(n_len * p_len, 1e-12)
            if not (cos > min_cos and px >= 0.0 and px <= width - 1 and py >= 0.0 and py <= height - 1):
                continue
            xi = min(max(int(np.rint((px + 0.5) * depth_scale - 0.5)), 0), zw - 1)
            yi = min(max(int(np.rint((py + 0.5) * depth_scale - 0.5)), 0), zh - 1)
            if pz > zbuf[yi, xi] + 0.003:  # behind the nearest surface: hidden
                continue
            x, y, z = nx / n_len, ny / n_len, nz / n_len
            basis[0] = SH_C0
            basis[1] = SH_C1 * y
            basis[2] = SH_C1 * z
            basis[3] = SH_C1 * x
            basis[4] = SH_C2 * x * y
            basis[5] = SH_C2 * y * z
            basis[6] = SH_C3 * (3.0 * z * z - 1.0)
            basis[7] = SH_C2 * x * z
            basis[8] = SH_C4 * (x * x - y * y)
            x0 = min(int(px), width - 2) if width > 1 else 0
            y0 = min(int(py), height - 2) if height > 1 else 0
            fx = px - x0
            fy = py - y0
            x1 = min(x0 + 1, width - 1)
            y1 = min(y0 + 1, height - 1)
            lit = True
            for c in range(3):
                s = 0.0
                for j in range(9):
                    s += basis[j] * lighting[j, c]
                if s <= 0.05:
                    lit = False
                colour = ((1 - fy) * ((1 - fx) * image[y0, x0, c] + fx * image[y0, x1, c])
                          + fy * ((1 - fx) * image[y1, x0, c] + fx * image[y1, x1, c]))
                albedo_out[t, c] = colour / max(s, 1e-6)
            if not lit:
                albedo_out[t, 0] = 0.0
                albedo_out[t, 1] = 0.0
                albedo_out[t, 2] = 0.0
                continue
            conf_out[t] = cos * cos

    @njit(__name__, nogil=True)
    def add_dynamic(a, c, buf_c, buf_ca, s_uu):
        """One frame's samples (albedo a (T, 3), confidence c (T,)) into the regression's frame buffers
        buf_c (T,) = c and buf_ca (3, T) = c a, and its running sum s_uu (T, 3) += c a^2."""
        for t in range(a.shape[0]):
            ct = c[t]
            buf_c[t] = ct
            for ch in range(3):
                ca = ct * a[t, ch]
                buf_ca[ch, t] = ca
                s_uu[t, ch] += ca * a[t, ch]

    @njit(__name__, nogil=True)
    def add_static(a, c, w, s_cu, s_c, s_cw):
        """One frame's samples into the static map's sums: s_cu (T, 3) += c a, s_c (T,) += c and
        s_cw (T, k) += c w for the frame's dynamic-shape weights w (k,)."""
        for t in range(a.shape[0]):
            ct = c[t]
            if ct == 0.0:
                continue
            s_c[t] += ct
            for ch in range(3):
                s_cu[t, ch] += ct * a[t, ch]
            for k in range(w.shape[0]):
                s_cw[t, k] += ct * w[k]

    kernels["unwrap"] = unwrap
    kernels["add_dynamic"] = add_dynamic
    kernels["add_static"] = add_static
    return kernels


get = lazy_kernels(_compile)  # get(name): unwrap, add_dynamic, add_static
