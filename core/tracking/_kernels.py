"""numba kernels of the per-frame fit, compiled lazily on first use.

Hand-written because at ~500 landmarks the per-frame fit is a chain of small array steps whose numpy
call overhead (5-20 us each here, ~25 of them per iteration, plus ~30 us per scipy solve) was most of its
cost: the per-point projection/residual/gradient pass and the bounded least-squares step each become one
call. The big products (expression basis times weights, J^T J) stay with numpy's BLAS.
Compiled code is cached in the Likeness user cache (core/compiled.py), never beside the source.
"""

from __future__ import annotations

import numpy as np

_compiled: dict[str, object] = {}
_box_qp = None  # set by _compile(); gn_step calls it as a global (see there)


def get(name: str):
    """The compiled kernel `name` (box_qp)."""
    if not _compiled:
        _compile()
    return _compiled[name]


def _compile() -> None:
    from ..compiled import njit

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

    _compiled["box_qp"] = box_qp
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

    _compiled["gn_step"] = gn_step

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

    _compiled["project_points"] = project_points
