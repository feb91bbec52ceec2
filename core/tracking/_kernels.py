"""numba kernel for the bounded least-squares step of the per-frame fit, compiled lazily on first use.

Hand-written because the active-set loop is a handful of small dense solves whose numpy/scipy call
overhead (~30 us each) dominated the whole per-frame fit; compiled it costs a few microseconds.
cache=False: inside Blender the extension folder must not be written to.
"""

from __future__ import annotations

import numpy as np

_compiled: dict[str, object] = {}


def get(name: str):
    """The compiled kernel `name` (box_qp)."""
    if not _compiled:
        _compile()
    return _compiled[name]


def _compile() -> None:
    import numba

    @numba.njit(cache=False, nogil=True)
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
