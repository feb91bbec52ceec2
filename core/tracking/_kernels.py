"""numba kernels of the per-frame fit, compiled lazily on first use.

Hand-written because at ~500 landmarks the per-frame fit is a chain of small array steps whose numpy
call overhead (5-20 us each here, ~25 of them per iteration, plus ~30 us per scipy solve) was most of its
cost: the per-point projection/residual/gradient pass and the bounded least-squares step each become one
call. The big products (expression basis times weights, J^T J) stay with numpy's BLAS.
Compiled code is cached in the Likeness user cache (core/compiled.py), never beside the source.
"""

from __future__ import annotations

import numpy as np

from ..compiled import lazy_kernels, njit
from ..render.sh import SH_C0, SH_C1, SH_C2, SH_C3, SH_C4

_box_qp = None  # set by _compile(); gn_step calls it as a global (see there)
_bilinear = None  # likewise for photometric_rows
_sh_row = None  # likewise for the lighting fits


def _compile() -> dict[str, object]:
    kernels: dict[str, object] = {}

    @njit(__name__, nogil=True)
    def box_qp(h, g, lo, hi, iterations):
        n = g.shape[0]
        d = np.zeros(n)
        held = np.zeros(n, np.bool_)
        at_hi = np.zeros(n, np.bool_)
        for i in range(n):
            if lo[i] >= 0.0 and g[i] > 0.0:
                held[i] = True
            elif hi[i] <= 0.0 and g[i] < 0.0:
                held[i] = True
                at_hi[i] = True
        for _ in range(iterations):
            m = 0
            for i in range(n):
                if held[i]:
                    d[i] = hi[i] if at_hi[i] else lo[i]
                else:
                    m += 1
            free = np.empty(m, np.int64)
            k = 0
            for i in range(n):
                if not held[i]:
                    free[k] = i
                    k += 1
            a = np.empty((m, m))
            b = np.empty(m)
            for r in range(m):
                i = free[r]
                s = -g[i]
                for j in range(n):
                    if held[j]:
                        s -= h[i, j] * d[j]
                b[r] = s
                for c in range(m):
                    a[r, c] = h[i, free[c]]
            # Cholesky in place (the matrix is a Gauss-Newton matrix plus positive priors).
            ok = True
            for r in range(m):
                s = a[r, r]
                for c in range(r):
                    s -= a[r, c] * a[r, c]
                if s <= 1e-300:
                    ok = False
                    break
                a[r, r] = np.sqrt(s)
                for q in range(r + 1, m):
                    t = a[q, r]
                    for c in range(r):
                        t -= a[q, c] * a[r, c]
                    a[q, r] = t / a[r, r]
            if not ok:
                break
            for r in range(m):
                s = b[r]
                for c in range(r):
                    s -= a[r, c] * b[c]
                b[r] = s / a[r, r]
            for r in range(m - 1, -1, -1):
                s = b[r]
                for c in range(r + 1, m):
                    s -= a[c, r] * b[c]
                b[r] = s / a[r, r]
            violated = False
            for r in range(m):
                i = free[r]
                d[i] = b[r]
                if d[i] < lo[i]:
                    held[i] = True
                    at_hi[i] = False
                    violated = True
                elif d[i] > hi[i]:
                    held[i] = True
                    at_hi[i] = True
                    violated = True
            if violated:
                continue
            released = False
            for i in range(n):
                if held[i]:
                    gi = g[i]
                    for j in range(n):
                        gi += h[i, j] * d[j]
                    if (at_hi[i] and gi > 0.0) or ((not at_hi[i]) and gi < 0.0):
                        held[i] = False
                        released = True
            if not released:
                break
        for i in range(n):
            d[i] = min(max(d[i], lo[i]), hi[i])
        return d

    kernels["box_qp"] = box_qp
    # gn_step calls it as a module global: numba cannot reuse a cached function that calls a closure
    # variable (it recompiled gn_step, ~5 s, in every process), but it can one that calls a global.
    global _box_qp
    _box_qp = box_qp

    @njit(__name__, nogil=True)
    def gn_step(hess, grad, diag, rot, trans, w, prev_rot, prev_trans, prev_w, has_prev, l1, l2, temporal,
                t_rot, t_trans, held, out_rot):
        """Priors, bounds, the bounded step and the update of one Gauss-Newton iteration (in place).

        hess (n, n), grad (n,): the data term (n = 6 + E); diag (n,): the priors' curvature; rot (3, 3),
        trans (3,), w (E,): the state, updated (the new rotation goes to out_rot); held (E,) bool: weights
        that stay where they are. Priors: l1 * w + l2 * w^2 (per shape), and with has_prev
        temporal * |w - prev_w|^2 + t_rot * |log(R prev_R^T)|^2 + t_trans * |t - prev_t|^2.
        """
        n = grad.shape[0]
        h = hess.copy()
        g = grad.copy()
        lo = np.empty(n)
        hi = np.empty(n)
        for i in range(n):
            h[i, i] += diag[i]
        for i in range(6):
            lo[i] = -np.inf
            hi[i] = np.inf
        for e in range(n - 6):
            g[6 + e] += l1[e] + 2.0 * l2[e] * w[e]
            if has_prev:
                g[6 + e] += 2.0 * temporal * (w[e] - prev_w[e])
            if held[e]:
                lo[6 + e] = 0.0
                hi[6 + e] = 0.0
            else:
                lo[6 + e] = -w[e]
                hi[6 + e] = 1.0 - w[e]
        if has_prev:
            m = np.zeros((3, 3))  # rot @ prev_rot^T, written out (numba's matmul costs seconds to compile)
            for i in range(3):
                for j in range(3):
                    for k in range(3):
                        m[i, j] += rot[i, k] * prev_rot[j, k]
            c = min(max((m[0, 0] + m[1, 1] + m[2, 2] - 1.0) / 2.0, -1.0), 1.0)
            theta = np.arccos(c)
            k = 0.5 if theta < 1e-6 else theta / (2.0 * np.sin(theta))
            g[0] += 2.0 * t_rot * k * (m[2, 1] - m[1, 2])
            g[1] += 2.0 * t_rot * k * (m[0, 2] - m[2, 0])
            g[2] += 2.0 * t_rot * k * (m[1, 0] - m[0, 1])
            for i in range(3):
                g[3 + i] += 2.0 * t_trans * (trans[i] - prev_trans[i])
        d = _box_qp(h, g, lo, hi, 10)
        # rotation: exp(d[:3]) @ rot (Rodrigues)
        theta = np.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
        inc = np.zeros((3, 3))
        inc[0, 0] = inc[1, 1] = inc[2, 2] = 1.0
        if theta > 1e-12:
            x, y, z = d[0] / theta, d[1] / theta, d[2] / theta
            sn, cs = np.sin(theta), np.cos(theta)
            t = 1.0 - cs
            inc[0, 0], inc[0, 1], inc[0, 2] = cs + t * x * x, t * x * y - sn * z, t * x * z + sn * y
            inc[1, 0], inc[1, 1], inc[1, 2] = t * x * y + sn * z, cs + t * y * y, t * y * z - sn * x
            inc[2, 0], inc[2, 1], inc[2, 2] = t * x * z - sn * y, t * y * z + sn * x, cs + t * z * z
        for i in range(3):
            for j in range(3):
                out_rot[i, j] = inc[i, 0] * rot[0, j] + inc[i, 1] * rot[1, j] + inc[i, 2] * rot[2, j]
        for i in range(3):
            trans[i] += d[3 + i]
        for e in range(n - 6):
            w[e] = min(max(w[e] + d[6 + e], 0.0), 1.0)

    kernels["gn_step"] = gn_step

    @njit(__name__, nogil=True, fastmath=True)
    def project_points(m, rot, t, x, cw, focal, cx, cy, scale, out_r, out_hr, out_grad, want_jac, jac, out_dr):
        """One pass over the model-space points m (L, 3) of a frame (see FrameSolver._linearize).

        Out: residuals out_r (L, 2) in noise units; out_hr (L, 3) = R^T (sum over the point's rows of
        r * d r / d v_cam), which the weights gradient contracts with the expression basis; out_grad[:6]
        the rotation (left increment) and translation gradient. With want_jac: the pose columns of jac
        (2L, 6 + E; rows x then y) and out_dr (2, L, 3) = R^T d r / d v_cam per row, for the weights columns.
        """
        n = m.shape[0]
        for k in range(6):
            out_grad[k] = 0.0
        for i in range(n):
            q0 = rot[0, 0] * m[i, 0] + rot[0, 1] * m[i, 1] + rot[0, 2] * m[i, 2]
            q1 = rot[1, 0] * m[i, 0] + rot[1, 1] * m[i, 1] + rot[1, 2] * m[i, 2]
            q2 = rot[2, 0] * m[i, 0] + rot[2, 1] * m[i, 1] + rot[2, 2] * m[i, 2]
            iz = -1.0 / (q2 + t[2])
            px = (q0 + t[0]) * iz
            py = (q1 + t[1]) * iz
            sa = scale * cw[i]
            rx = (cx + focal * px - x[i, 0]) * sa
            ry = (cy - focal * py - x[i, 1]) * sa
            out_r[i, 0] = rx
            out_r[i, 1] = ry
            a = focal * iz * sa
            # h = rx * d rx/dv + ry * d ry/dv, with d rx/dv = a (1, 0, px), d ry/dv = a (0, -1, -py)
            h0 = a * rx
            h1 = -a * ry
            h2 = a * (rx * px - ry * py)
            out_grad[0] += q1 * h2 - q2 * h1
            out_grad[1] += q2 * h0 - q0 * h2
            out_grad[2] += q0 * h1 - q1 * h0
            out_grad[3] += h0
            out_grad[4] += h1
            out_grad[5] += h2
            for j in range(3):
                out_hr[i, j] = rot[0, j] * h0 + rot[1, j] * h1 + rot[2, j] * h2
            if want_jac:
                ap0 = a * px
                ap1 = a * py
                jx = jac[i]
                jy = jac[n + i]
                jx[0] = q1 * ap0
                jx[1] = q2 * a - q0 * ap0
                jx[2] = -q1 * a
                jy[0] = -q1 * ap1 + q2 * a
                jy[1] = q0 * ap1
                jy[2] = -q0 * a
                jx[3] = a
                jx[4] = 0.0
                jx[5] = ap0
                jy[3] = 0.0
                jy[4] = -a
                jy[5] = -ap1
                for j in range(3):
                    out_dr[0, i, j] = a * rot[0, j] + ap0 * rot[2, j]
                    out_dr[1, i, j] = -a * rot[1, j] - ap1 * rot[2, j]

    kernels["project_points"] = project_points

    @njit(__name__, nogil=True, fastmath=True)
    def basis_columns(per_point, dr, jac, col0):
        """The columns of a basis (identity or expressions) in the landmark Jacobian: jac[i, col0 + k] =
        per_point[i, k] . dr[0, i] (x rows), jac[L + i, col0 + k] = per_point[i, k] . dr[1, i] (y rows), with
        per_point (L, K, 3) the basis per point and dr (2, L, 3) project_points' out_dr. numpy's batched matmul
        of L tiny (K, 3) @ (3, 1) products took ~0.16 ms a call for the 53 expressions."""
        n = per_point.shape[0]
        for i in range(n):
            x0, x1, x2 = dr[0, i, 0], dr[0, i, 1], dr[0, i, 2]
            y0, y1, y2 = dr[1, i, 0], dr[1, i, 1], dr[1, i, 2]
            row_x = jac[i]
            row_y = jac[n + i]
            for k in range(per_point.shape[1]):
                a, b, c = per_point[i, k, 0], per_point[i, k, 1], per_point[i, k, 2]
                row_x[col0 + k] = a * x0 + b * x1 + c * x2
                row_y[col0 + k] = a * y0 + b * y1 + c * y2

    kernels["basis_columns"] = basis_columns

    @njit(__name__, nogil=True, fastmath=True)
    def bilinear(image, x, y):
        """image (H, W) at pixel (x, y), the border replicated (cv2.remap's INTER_LINEAR, BORDER_REPLICATE)."""
        h, w = image.shape
        x = min(max(x, 0.0), w - 1.0)
        y = min(max(y, 0.0), h - 1.0)
        x0 = min(int(x), w - 2)
        y0 = min(int(y), h - 2)
        fx = x - x0
        fy = y - y0
        top = image[y0, x0] * (1.0 - fx) + image[y0, x0 + 1] * fx
        bottom = image[y0 + 1, x0] * (1.0 - fx) + image[y0 + 1, x0 + 1] * fx
        return top * (1.0 - fy) + bottom * fy

    global _bilinear
    _bilinear = bilinear

    @njit(__name__, nogil=True, fastmath=True)
    def photometric_rows(idx, base, exp_t, n0, dn_t, albedo, w, rot, t, light, luma, gray, gx, gy, focal, cx, cy,
                         ox, oy, noise, huber, weight, out_r, out_jac):
        """The photometric term at the samples idx (U,) (see core.tracking.photometric): Huber-weighted
        residuals out_r (U,) and Jacobian out_jac (U, 6 + E) in noise units, one pass per sample.

        Per sample s: position base[s] + exp_t[s] @ w (exp_t (S, 3, E)), normal n0[s] + dn_t[s] @ w, grey
        prediction albedo[s] . luma x SH shading (light (9, 3) irradiance in camera space); the image grey
        level and gradients are read bilinearly at the projection (origin ox, oy: the crop's corner).
        """
        n_exp = w.shape[0]
        # The per-shape sums run in float32, the tables' own precision: numba then vectorizes them (the pass
        # ~0.4x the time of float64 sums; the residuals 5e-7 noise units apart).
        w32 = w.astype(np.float32)
        c1, c2, c3, c4, c0 = 0.488603, 1.092548, 0.315392, 0.546274, 0.282095
        m = np.empty(3)
        nm = np.empty(3)
        lc = np.empty(9)
        rq = np.empty(3)
        rr = np.empty(3)
        for u in range(idx.shape[0]):
            s = idx[u]
            for j in range(3):
                pm = np.float32(0.0)
                pn = np.float32(0.0)
                for e in range(n_exp):
                    pm += exp_t[s, j, e] * w32[e]
                    pn += dn_t[s, j, e] * w32[e]
                m[j] = base[s, j] + pm
                nm[j] = n0[s, j] + pn
            norm = np.sqrt(nm[0] * nm[0] + nm[1] * nm[1] + nm[2] * nm[2])
            x = (rot[0, 0] * nm[0] + rot[0, 1] * nm[1] + rot[0, 2] * nm[2]) / norm
            y = (rot[1, 0] * nm[0] + rot[1, 1] * nm[1] + rot[1, 2] * nm[2]) / norm
            z = (rot[2, 0] * nm[0] + rot[2, 1] * nm[1] + rot[2, 2] * nm[2]) / norm
            for k in range(9):
                lc[k] = (albedo[s, 0] * luma[0] * light[k, 0] + albedo[s, 1] * luma[1] * light[k, 1]
                         + albedo[s, 2] * luma[2] * light[k, 2])
            pred = (c0 * lc[0] + c1 * (y * lc[1] + z * lc[2] + x * lc[3])
                    + c2 * (x * y * lc[4] + y * z * lc[5] + x * z * lc[7]) + c3 * (3.0 * z * z - 1.0) * lc[6]
                    + c4 * (x * x - y * y) * lc[8])
            # d pred / d camera normal (the SH basis's derivatives)
            d0 = c1 * lc[3] + c2 * (y * lc[4] + z * lc[7]) + 2.0 * c4 * x * lc[8]
            d1 = c1 * lc[1] + c2 * (x * lc[4] + z * lc[5]) - 2.0 * c4 * y * lc[8]
            d2 = c1 * lc[2] + c2 * (y * lc[5] + x * lc[7]) + 6.0 * c3 * z * lc[6]
            q0 = rot[0, 0] * m[0] + rot[0, 1] * m[1] + rot[0, 2] * m[2]
            q1 = rot[1, 0] * m[0] + rot[1, 1] * m[1] + rot[1, 2] * m[2]
            q2 = rot[2, 0] * m[0] + rot[2, 1] * m[1] + rot[2, 2] * m[2]
            iz = -1.0 / (q2 + t[2])
            px = (q0 + t[0]) * iz
            py = (q1 + t[1]) * iz
            sx = cx + focal * px - ox
            sy = cy - focal * py - oy
            r = (_bilinear(gray, sx, sy) - pred) / noise
            a = abs(r)
            sw = np.sqrt((huber / a if a > huber else 1.0) * weight)
            out_r[u] = r * sw
            g = sw / noise
            f = focal * iz
            ix = _bilinear(gx, sx, sy)
            iy = _bilinear(gy, sx, sy)
            r0 = ix * f * g
            r1 = -iy * f * g
            r2 = f * (ix * px - iy * py) * g
            # d image / d pose through the projection, less d prediction / d pose through the normal
            jac = out_jac[u]
            jac[0] = q1 * r2 - q2 * r1 - (y * d2 - z * d1) * g
            jac[1] = q2 * r0 - q0 * r2 - (z * d0 - x * d2) * g
            jac[2] = q0 * r1 - q1 * r0 - (x * d1 - y * d0) * g
            jac[3] = r0
            jac[4] = r1
            jac[5] = r2
            for j in range(3):  # R^T row and R^T d: the weights act in model space
                rr[j] = rot[0, j] * r0 + rot[1, j] * r1 + rot[2, j] * r2
                rq[j] = (rot[0, j] * d0 + rot[1, j] * d1 + rot[2, j] * d2) * g
            a0, a1, a2 = np.float32(rr[0]), np.float32(rr[1]), np.float32(rr[2])
            b0, b1, b2 = np.float32(rq[0]), np.float32(rq[1]), np.float32(rq[2])
            for e in range(n_exp):
                jac[6 + e] = (a0 * exp_t[s, 0, e] + a1 * exp_t[s, 1, e] + a2 * exp_t[s, 2, e]
                              - b0 * dn_t[s, 0, e] - b1 * dn_t[s, 1, e] - b2 * dn_t[s, 2, e])

    kernels["photometric_rows"] = photometric_rows

    @njit(__name__, nogil=True, fastmath=True)
    def disc_misfit(u, ic, axes, cos_a, soft, out):
        """The iris search's score (core.tracking.iris): for each candidate axes[k] (K, 3), a soft disc
        1 / (1 + exp(-(u . axis - cos_a) / soft)) over the eye pixels' directions u (P, 3) is compared with
        their centred intensities ic (P,) (mean zero); out[k] += the share of their variance the disc leaves
        unexplained (a disc brighter than its surround explains nothing). One pass per candidate, no
        (P, K) temporaries, and without the GIL: the refinement's other thread runs meanwhile."""
        n = u.shape[0]
        total = 0.0
        for p in range(n):
            total += ic[p] * ic[p]
        total = max(total, 1e-9)
        for k in range(axes.shape[0]):
            ax, ay, az = axes[k, 0], axes[k, 1], axes[k, 2]
            s1 = 0.0
            s2 = 0.0
            cov = 0.0
            for p in range(n):
                d = 1.0 / (1.0 + np.exp(-((u[p, 0] * ax + u[p, 1] * ay + u[p, 2] * az) - cos_a) / soft))
                s1 += d
                s2 += d * d
                cov += ic[p] * d
            var = s2 - s1 * s1 / n + 1e-9
            explained = cov * cov / var if cov < 0.0 else 0.0
            out[k] += (total - explained) / total

    kernels["disc_misfit"] = disc_misfit

    @njit(__name__, nogil=True)
    def one_euro(x, t, min_cutoff, beta, d_cutoff, out):
        """The causal one-euro filter (core.tracking.smoothing.one_euro) of x (N, D) at times t (N,) into out."""
        n, dims = x.shape
        if n == 0:
            return
        prev = x[0].copy()
        dprev = np.zeros(dims)
        out[0] = prev
        for i in range(1, n):
            dt = max(t[i] - t[i - 1], 1e-4)
            ad = 1.0 / (1.0 + 1.0 / (2 * np.pi * d_cutoff * dt))
            for j in range(dims):
                dprev[j] += ad * ((x[i, j] - prev[j]) / dt - dprev[j])
                a = 1.0 / (1.0 + 1.0 / (2 * np.pi * (min_cutoff + beta * abs(dprev[j])) * dt))
                prev[j] += a * (x[i, j] - prev[j])
                out[i, j] = prev[j]

    kernels["one_euro"] = one_euro

    @njit(__name__, nogil=True, fastmath=True)
    def sh_row(x, y, z, basis, p):
        """basis[p] = core.render.sh.sh_basis of the unit normal (x, y, z): the same constants and order."""
        basis[p, 0] = SH_C0
        basis[p, 1] = SH_C1 * y
        basis[p, 2] = SH_C1 * z
        basis[p, 3] = SH_C1 * x
        basis[p, 4] = SH_C2 * x * y
        basis[p, 5] = SH_C2 * y * z
        basis[p, 6] = SH_C3 * (3 * z * z - 1)
        basis[p, 7] = SH_C2 * x * z
        basis[p, 8] = SH_C4 * (x * x - y * y)

    global _sh_row
    _sh_row = sh_row

    @njit(__name__, nogil=True, fastmath=True)
    def sh_light_fit(normals, rotation, points, colours, use, facing, albedo, ridge, min_points, keep, out):
        """Per frame, the SH light of core.tracking.lighting.fit_lighting: the points' camera-space normals
        (rotation (N, 3, 3) @ normals (L, 3)) facing the camera by more than `facing` (cosine with the view
        direction from points (N, L, 3)) and allowed by use (L,) give weighted normal equations in the 9 bands
        (a ridge on the bands above the constant, per sample), solved; the residuals' `keep` percentile
        (linear, as np.percentile) is the outlier cut; refitted. colours (N, L, 3) in [0, 1], albedo (3,);
        out (N, 9, 3): NaN where fewer than min_points."""
        n = rotation.shape[0]
        n_pts = normals.shape[0]
        basis = np.empty((n_pts, 9))
        ok = np.empty(n_pts, np.bool_)
        resid = np.empty(n_pts)
        kept = np.empty(n_pts)
        for f in range(n):
            rot = rotation[f]
            for p in range(n_pts):
                x = rot[0, 0] * normals[p, 0] + rot[0, 1] * normals[p, 1] + rot[0, 2] * normals[p, 2]
                y = rot[1, 0] * normals[p, 0] + rot[1, 1] * normals[p, 1] + rot[1, 2] * normals[p, 2]
                z = rot[2, 0] * normals[p, 0] + rot[2, 1] * normals[p, 1] + rot[2, 2] * normals[p, 2]
                d = np.sqrt(points[f, p, 0] ** 2 + points[f, p, 1] ** 2 + points[f, p, 2] ** 2)
                ok[p] = use[p] and -(x * points[f, p, 0] + y * points[f, p, 1] + z * points[f, p, 2]) > facing * d
                _sh_row(x, y, z, basis, p)
            coeffs = np.zeros((9, 3))
            for rnd in range(2):
                ata = np.zeros((9, 9))
                atb = np.zeros((9, 3))
                count = 0
                for p in range(n_pts):
                    if not ok[p]:
                        continue
                    count += 1
                    for i in range(9):
                        b = basis[p, i]
                        for j in range(i, 9):
                            ata[i, j] += b * basis[p, j]
                        for c in range(3):
                            atb[i, c] += b * colours[f, p, c]
                if count < min_points:
                    coeffs[:] = np.nan
                    break
                for i in range(9):
                    ata[i, i] += count * ridge[i]
                    for j in range(i):
                        ata[i, j] = ata[j, i]
                    for c in range(3):
                        atb[i, c] /= albedo[c]
                coeffs = np.linalg.solve(ata, atb)
                if rnd == 1:
                    break
                m = 0
                for p in range(n_pts):
                    r = 0.0
                    for c in range(3):
                        s = 0.0
                        for i in range(9):
                            s += basis[p, i] * coeffs[i, c]
                        r += abs(albedo[c] * s - colours[f, p, c])
                    resid[p] = r
                    if ok[p]:
                        kept[m] = r
                        m += 1
                srt = np.sort(kept[:m])
                pos = keep / 100.0 * (m - 1)
                lo = int(np.floor(pos))
                hi = min(lo + 1, m - 1)
                cut = srt[lo] + (pos - lo) * (srt[hi] - srt[lo])
                for p in range(n_pts):
                    if resid[p] > cut:
                        ok[p] = False
            out[f] = coeffs

    kernels["sh_light_fit"] = sh_light_fit

    @njit(__name__, nogil=True, fastmath=True)
    def robust_light(normals, albedo, colours, out):
        """core.tracking.photometric's frame light, in one pass: per channel c, colours[:, c] ~ albedo[:, c] *
        sh_basis(normals) @ out[:, c] (normals, albedo, colours (U, 3); out (9, 3)), least squares with a ridge
        of 1e-3 U, refitted once with the weights min(1, 2.5 s / |r|), s = 1.4826 median |r| + 1e-4 of the
        first fit's residuals r (numpy, ~25 calls: 1.3 ms a frame; this: a tenth)."""
        u = normals.shape[0]
        basis = np.empty((u, 9))
        for p in range(u):
            _sh_row(normals[p, 0], normals[p, 1], normals[p, 2], basis, p)
        wt = np.ones(u)
        r = np.empty(u)
        for c in range(3):
            wt[:] = 1.0
            for rnd in range(2):
                ata = np.zeros((9, 9))
                atb = np.zeros(9)
                for p in range(u):
                    a = albedo[p, c]
                    wa = wt[p] * a
                    for i in range(9):
                        bi = wa * basis[p, i]
                        for j in range(i, 9):
                            ata[i, j] += bi * a * basis[p, j]
                        atb[i] += bi * colours[p, c]
                for i in range(9):
                    ata[i, i] += 1e-3 * u
                    for j in range(i):
                        ata[i, j] = ata[j, i]
                coef = np.linalg.solve(ata, atb)
                out[:, c] = coef
                if rnd == 1:
                    break
                for p in range(u):
                    sh = 0.0
                    for i in range(9):
                        sh += basis[p, i] * coef[i]
                    r[p] = abs(albedo[p, c] * sh - colours[p, c])
                s = 1.4826 * np.median(r) + 1e-4
                for p in range(u):
                    wt[p] = min(1.0, 2.5 * s / max(r[p], 1e-9))

    kernels["robust_light"] = robust_light

    @njit(__name__, nogil=True, fastmath=True)
    def project_vertices(v, rotation, translation, focal, cx, cy, vc, points):
        """core.tracking.photometric's camera-space vertices vc = v @ rotation.T + translation (V, 3) and their
        rasterizer points (V, 3): pixel x, y (y down) and depth -z, in one pass (numpy: five calls, 0.5 ms)."""
        for i in range(v.shape[0]):
            for r in range(3):
                vc[i, r] = rotation[r, 0] * v[i, 0] + rotation[r, 1] * v[i, 1] + rotation[r, 2] * v[i, 2] \
                    + translation[r]
            iz = -1.0 / vc[i, 2]
            points[i, 0] = cx + focal * vc[i, 0] * iz
            points[i, 1] = cy - focal * vc[i, 1] * iz
            points[i, 2] = -vc[i, 2]

    @njit(__name__, nogil=True, fastmath=True)
    def usable_samples(vc, points, normals, inner, depth, scale, slack, width, height, min_cos, out):
        """out (V,) bool: the vertices away from the mesh's borders (inner), inside the image (width x height
        pixels) by 2 pixels, facing the camera by more than min_cos (the cosine of the normal with the direction
        to the camera) and not hidden: at most slack behind the coarse z-buffer's depth (h, w) at their
        nearest pixel there (scale: its pixels per image pixel)."""
        dh, dw = depth.shape
        for i in range(vc.shape[0]):
            x, y = points[i, 0], points[i, 1]
            if not (inner[i] and x > 2 and x < width - 3 and y > 2 and y < height - 3):
                out[i] = False
                continue
            xi = min(max(int(np.rint((x + 0.5) * scale - 0.5)), 0), dw - 1)
            yi = min(max(int(np.rint((y + 0.5) * scale - 0.5)), 0), dh - 1)
            if not points[i, 2] <= depth[yi, xi] + slack:
                out[i] = False
                continue
            norm = np.sqrt(vc[i, 0] ** 2 + vc[i, 1] ** 2 + vc[i, 2] ** 2)
            out[i] = -(normals[i, 0] * vc[i, 0] + normals[i, 1] * vc[i, 1] + normals[i, 2] * vc[i, 2]) > min_cos * norm

    kernels["project_vertices"] = project_vertices
    kernels["usable_samples"] = usable_samples

    @njit(__name__, nogil=True)
    def iris_gaze(iris_px, rotation, translation, centers, radius, rest, focal, cx, cy, out):
        """core.tracking.gaze.gaze_from_iris, frame by frame: the tracking loop asks for one frame at a time,
        where its ~25 numpy calls cost a quarter of the frame's fit. rest (2, 2): the rest gaze's angles."""
        for f in range(iris_px.shape[0]):
            rot = rotation[f]
            for e in range(2):
                r0 = (iris_px[f, e, 0] - cx) / focal
                r1 = -(iris_px[f, e, 1] - cy) / focal
                norm = np.sqrt(r0 * r0 + r1 * r1 + 1.0)
                r0, r1, r2 = r0 / norm, r1 / norm, -1.0 / norm
                c = np.empty(3)
                for i in range(3):
                    c[i] = (rot[i, 0] * centers[e, 0] + rot[i, 1] * centers[e, 1] + rot[i, 2] * centers[e, 2]
                            + translation[f, i])
                b = r0 * c[0] + r1 * c[1] + r2 * c[2]
                closest2 = c[0] * c[0] + c[1] * c[1] + c[2] * c[2] - b * b
                s = b - np.sqrt(max(radius * radius - closest2, 0.0))
                d0, d1, d2 = r0 * s - c[0], r1 * s - c[1], r2 * s - c[2]
                norm = np.sqrt(d0 * d0 + d1 * d1 + d2 * d2)
                h = np.empty(3)
                for j in range(3):  # R^T d: the head's frame
                    h[j] = (rot[0, j] * d0 + rot[1, j] * d1 + rot[2, j] * d2) / norm
                out[f, e, 0] = np.degrees(np.arctan2(h[0], h[2])) - rest[e, 0]
                out[f, e, 1] = np.degrees(-np.arcsin(min(max(h[1], -1.0), 1.0))) - rest[e, 1]

    kernels["iris_gaze"] = iris_gaze

    @njit(__name__, nogil=True)
    def normal_deltas(base, exp_t, tris, n0, out):
        """out (S, 3, E) float32: the unit vertex normals of base (S, 3) plus each expression's delta exp_t (S, 3,
        E), less n0 (S, 3), base's own: core.render.sh.vertex_normals's arithmetic, the same to the bit (53
        calls of it from numpy took half as long again: each shape's vertices, its difference, the copies)."""
        n_v, n_e = base.shape[0], exp_t.shape[2]
        acc = np.empty((n_v, 3))
        v = np.empty((n_v, 3))
        for e in range(n_e):
            for i in range(n_v):
                for c in range(3):
                    v[i, c] = base[i, c] + exp_t[i, c, e]
            acc[:] = 0.0
            for t in range(tris.shape[0]):
                i0, i1, i2 = tris[t, 0], tris[t, 1], tris[t, 2]
                ax, ay, az = v[i1, 0] - v[i0, 0], v[i1, 1] - v[i0, 1], v[i1, 2] - v[i0, 2]
                bx, by, bz = v[i2, 0] - v[i0, 0], v[i2, 1] - v[i0, 1], v[i2, 2] - v[i0, 2]
                cx, cy, cz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
                for i in (i0, i1, i2):
                    acc[i, 0] += cx
                    acc[i, 1] += cy
                    acc[i, 2] += cz
            for i in range(n_v):
                x, y, z = acc[i, 0], acc[i, 1], acc[i, 2]
                n = np.sqrt(x**2 + y**2 + z**2)
                if n > 0.0:
                    x, y, z = x / n, y / n, z / n
                out[i, 0, e] = x - n0[i, 0]
                out[i, 1, e] = y - n0[i, 1]
                out[i, 2, e] = z - n0[i, 2]

    kernels["normal_deltas"] = normal_deltas
    return kernels


# get(name): box_qp, gn_step, project_points, basis_columns, photometric_rows, disc_misfit, one_euro,
# sh_light_fit, iris_gaze, project_vertices, usable_samples, normal_deltas
get = lazy_kernels(_compile)
