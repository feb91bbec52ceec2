"""Fitting head pose and expression weights to 2D landmarks, one frame at a time (Gauss-Newton, box bounds).

The per-frame problem has 59 unknowns (3 rotation, 3 translation, 53 weights in [0, 1]) against ~1000
residuals in units of the landmark noise. Each Gauss-Newton step is a small bounded quadratic program
(weights stay in [0, 1]; an active-set solve compiled with numba, see _kernels). Priors: L1 and L2 on the
weights (sparsity), and L2 on the change of weights and pose from the previous frame (temporal).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from . import _kernels
from .linear import LandmarkModel


@dataclass
class FitState:
    """Pose and weights of one frame: v_cam = rotation @ v_model + translation."""

    rotation: np.ndarray  # (3, 3)
    translation: np.ndarray  # (3,) metres
    weights: np.ndarray  # (E,) in [0, 1]

    def copy(self) -> FitState:
        return FitState(self.rotation.copy(), self.translation.copy(), self.weights.copy())


@dataclass(frozen=True)
class SolverSettings:
    """Priors in units of the landmark noise: a prior of strength k on x costs k * x^2, like k residuals.

    sigma: the landmark noise in metres at the face (residuals are divided by it, converted to pixels).
    """

    sigma: float = 0.0015
    sparsity: float = 2.0  # L1 on weights (weights >= 0 so it is linear)
    ridge: float = 2.0  # L2 on weights
    temporal: float = 1.0  # L2 on the change of weights from the previous frame
    temporal_rotation: float = 2000.0  # per radian^2 of change from the previous frame
    temporal_translation: float = 2e5  # per metre^2
    iterations: int = 4
    # Per-shape multipliers of sparsity/ridge (E,), e.g. more for shapes landmarks barely see; None = 1.
    shape_prior: np.ndarray | None = field(default=None, compare=False)


def rodrigues(v: np.ndarray) -> np.ndarray:
    """Axis-angle (3,) radians -> (3, 3) rotation (scalar arithmetic: these are called per iteration)."""
    x, y, z = float(v[0]), float(v[1]), float(v[2])
    theta = math.sqrt(x * x + y * y + z * z)
    if theta < 1e-12:
        return np.eye(3)
    x, y, z = x / theta, y / theta, z / theta
    s, c = math.sin(theta), math.cos(theta)
    t = 1.0 - c
    return np.array([
        [c + t * x * x, t * x * y - s * z, t * x * z + s * y],
        [t * x * y + s * z, c + t * y * y, t * y * z - s * x],
        [t * x * z - s * y, t * y * z + s * x, c + t * z * z],
    ])


def rotation_log(r: np.ndarray) -> np.ndarray:
    """(3, 3) rotation -> axis-angle (3,) radians."""
    c = min(max((r[0, 0] + r[1, 1] + r[2, 2] - 1.0) / 2.0, -1.0), 1.0)
    theta = math.acos(c)
    w = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    if theta < 1e-6:
        return 0.5 * w
    return (theta / (2.0 * math.sin(theta))) * w


def box_qp(h: np.ndarray, g: np.ndarray, lo: np.ndarray, hi: np.ndarray, iterations: int = 10) -> np.ndarray:
    """min 0.5 d^T h d + g^T d subject to lo <= d <= hi (use +-inf for free variables): projected Newton.

    Variables that leave their box are clamped and held; held variables whose gradient points back inside
    are released. A handful of rounds suffices for the small, well-conditioned systems met here.
    """
    return _kernels.get("box_qp")(np.ascontiguousarray(h, np.float64), np.ascontiguousarray(g, np.float64),
                                  np.ascontiguousarray(lo, np.float64), np.ascontiguousarray(hi, np.float64),
                                  iterations)


class FrameSolver:
    """Fits one frame's pose and weights for a fixed identity and camera.

    lm: the clip's LandmarkModel; identity (K,) or None; focal, center: pixels;
    point_weights (L,): trust in each landmark (0 drops it).

    Speed: the gradient is exact every iteration, but the Gauss-Newton matrix J^T J (the one expensive
    product, (59, 2L) @ (2L, 59)) is formed once per solve, at the warm start, and reused by the later
    iterations of that solve; the iteration still converges to the exact optimum (the gradient decides
    where it stops). Reusing it across frames as well was tried: in the pose/expression valleys of real
    detector points the stale matrix let the pose drift by degrees, so it is not done.
    """

    def __init__(self, lm: LandmarkModel, identity: np.ndarray | None, focal: float, center: tuple[float, float],
                 point_weights: np.ndarray | None = None, settings: SolverSettings | None = None):
        self.lm = lm
        self.settings = settings or SolverSettings()
        self.focal = float(focal)
        self.cx, self.cy = float(center[0]), float(center[1])
        self._center = np.array([self.cx, self.cy])
        self._fsign = np.array([self.focal, -self.focal])
        self._sign = np.array([1.0, -1.0])
        self.base = lm.base(identity)  # (L, 3)
        n_exp, n_pts = lm.n_expressions, lm.n_points
        self.flat = np.ascontiguousarray(lm.expressions.reshape(n_exp, n_pts * 3))  # (E, 3L)
        self.per_point = np.ascontiguousarray(lm.expressions.transpose(1, 0, 2))  # (L, E, 3)
        c = np.ones(n_pts) if point_weights is None else np.asarray(point_weights, np.float64)
        self.c = c
        self.cw = np.sqrt(c)
        self.c_sum = float(c.sum())
        s = self.settings
        prior = np.ones(n_exp) if s.shape_prior is None else np.asarray(s.shape_prior, np.float64)
        self.l1 = s.sparsity * prior
        self.l2 = s.ridge * prior
        self._hess: np.ndarray | None = None
        # Work buffers for the per-point pass (one solver per clip, one thread).
        self._jac = np.empty((2 * n_pts, 6 + n_exp), np.float32)
        self._r = np.empty((n_pts, 2))
        self._hr = np.empty((n_pts, 3))
        self._dr = np.empty((2, n_pts, 3))
        self._kernel = _kernels.get("project_points")
        self._step = _kernels.get("gn_step")
        self._columns = _kernels.get("basis_columns")
        self.hessians = 0  # how many times J^T J was formed (for benchmarks)

    def fork(self) -> FrameSolver:
        """The same solver with its own work buffers, for another thread (the model arrays are shared)."""
        other = copy.copy(self)
        other._hess = None
        other._jac, other._r = np.empty_like(self._jac), np.empty_like(self._r)
        other._hr, other._dr = np.empty_like(self._hr), np.empty_like(self._dr)
        return other

    def _linearize(self, x: np.ndarray, st: FitState, scale: float, hessian: bool):
        """Residuals (L, 2), gradient (6 + E,) of the data term at st, and its Gauss-Newton matrix or None.

        The per-point pass is one compiled call (_kernels.project_points); the expression basis products
        and J^T J are BLAS calls. Rotation is a left increment exp(delta) @ R, so d v = delta x q.
        """
        n_pts = self.lm.n_points
        m = self.base + (st.weights @ self.flat).reshape(n_pts, 3)
        grad = np.empty(6 + self.lm.n_expressions)
        self._kernel(m, st.rotation, st.translation, x, self.cw, self.focal, self.cx, self.cy, scale, self._r,
                     self._hr, grad, hessian, self._jac, self._dr)
        grad[6:] = self.flat @ self._hr.ravel()  # weights act in model space: (R^T d) . e
        if not hessian:
            return self._r, grad, None
        j = self._jac  # float32: halves the cost of the one big product
        self._columns(self.per_point, self._dr, j, 6)
        return self._r, grad, (j.T @ j).astype(np.float64)

    def solve(self, x: np.ndarray, init: FitState, prev: FitState | None = None, iterations: int | None = None,
              exact: bool = False, hold: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[FitState, float]:
        """Fit to landmarks x (L, 2) pixels from init; prev (or None) anchors the temporal priors.

        exact: form J^T J at every iteration (cold starts, keyframes). hold: (indices, values) of weights
        fixed for this solve (e.g. eyeLook weights from the gaze). Returns the new state and the weighted
        RMS landmark error in pixels at the returned state's last linearisation.
        """
        s = self.settings
        st = init.copy()
        n_exp = self.lm.n_expressions
        held = np.zeros(n_exp, bool)
        if hold is not None:
            st.weights[hold[0]] = hold[1]
            held[hold[0]] = True
        diag = np.empty(6 + n_exp)  # the priors' curvature, constant over the iterations
        if prev is None:
            diag[:6] = 1e-6
            diag[6:] = 2 * self.l2
            prev_state = st  # unused: has_prev is False
        else:
            diag[:3] = 2 * s.temporal_rotation
            diag[3:6] = 2 * s.temporal_translation
            diag[6:] = 2 * (self.l2 + s.temporal)
            prev_state = prev
        iterations = s.iterations if iterations is None else iterations
        r = None
        step = self._step
        rot = np.empty((3, 3))
        for it in range(iterations):
            scale = max(-st.translation[2], 1e-3) / (self.focal * s.sigma)  # pixels -> noise units
            fresh = exact or it == 0
            r, grad, hess = self._linearize(x, st, scale, fresh)
            if fresh:
                self._hess = hess
                self.hessians += 1
            step(self._hess, grad, diag, st.rotation, st.translation, st.weights, prev_state.rotation,
                 prev_state.translation, prev_state.weights, prev is not None, self.l1, self.l2, s.temporal,
                 s.temporal_rotation, s.temporal_translation, held, rot)
            st.rotation = rot.copy()
        rms = self.rms(x, st) if r is None else float(np.sqrt((r * r).sum() / self.c_sum)) / scale
        return st, rms

    def project(self, st: FitState) -> np.ndarray:
        """(L, 2) pixels of the model points for a state."""
        m = self.base + (st.weights @ self.flat).reshape(self.lm.n_points, 3)
        v = m @ st.rotation.T + st.translation
        iz = -1.0 / v[:, 2]
        return np.stack([self.cx + self.focal * v[:, 0] * iz, self.cy - self.focal * v[:, 1] * iz], axis=1)

    def rms(self, x: np.ndarray, st: FitState) -> float:
        e = ((self.project(st) - x) ** 2).sum(1)
        return float(np.sqrt((e * self.c).sum() / self.c_sum))


def warm_up() -> None:
    """Load the compiled per-frame kernels now: numba's imports and cache reads cost ~0.7 s once per process,
    which capture_frames spends on a thread during the landmark pass instead of before the first fit."""
    rng = np.random.default_rng(0)
    lm = LandmarkModel(rng.normal(size=(6, 3)) * 0.05, np.zeros((1, 6, 3)), rng.normal(size=(2, 6, 3)) * 0.01,
                       ("a", "b"))
    solver = FrameSolver(lm, np.zeros(1), 500.0, (50.0, 50.0))
    st = FitState(np.eye(3), np.array([0.0, 0.0, -0.5]), np.zeros(2))
    solver.solve(solver.project(st) + 0.5, st, st, iterations=1, hold=(np.array([0]), np.zeros(1)))
    # the keyframe fit's own kernels and code paths (joint step, cold starts): ~50 ms of a first capture's fit
    from .keyframes import fit_keyframes

    xs = np.stack([solver.project(st), solver.project(st) + 0.5])
    fit_keyframes(lm, xs, 500.0, (50.0, 50.0), rounds=1)


_CV_FLIP = np.diag([1.0, -1.0, -1.0])  # OpenCV camera (y down, +z forward) <-> ours (y up, -z forward)


def initial_pose(base: np.ndarray, x: np.ndarray, focal: float, center: tuple[float, float],
                 mask: np.ndarray | None = None) -> FitState:
    """A first pose from a perspective-n-point solve of the neutral points base (L, 3) to pixels x (L, 2)."""
    idx = np.arange(len(base)) if mask is None else np.flatnonzero(mask)
    k = np.array([[focal, 0, center[0]], [0, focal, center[1]], [0, 0, 1]], np.float64)
    ok, rvec, tvec = cv2.solvePnP(base[idx].astype(np.float64), x[idx].astype(np.float64), k, None,
                                  flags=cv2.SOLVEPNP_EPNP)
    if ok:
        ok, rvec, tvec = cv2.solvePnP(base[idx].astype(np.float64), x[idx].astype(np.float64), k, None,
                                      rvec, tvec, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok or tvec[2, 0] <= 0:
        # Fall back to a frontal head at the depth that matches the landmarks' spread.
        spread_px = float(np.ptp(x[idx], axis=0).max())
        spread_m = float(np.ptp(base[idx], axis=0)[:2].max())
        depth = focal * spread_m / max(spread_px, 1.0)
        c = x[idx].mean(0)
        t = np.array([(c[0] - center[0]) * depth / focal, -(c[1] - center[1]) * depth / focal, -depth])
        return FitState(np.eye(3), t, np.zeros(0))
    r_cv = cv2.Rodrigues(rvec)[0]
    return FitState(_CV_FLIP @ r_cv, _CV_FLIP @ tvec[:, 0], np.zeros(0))


def with_weights(st: FitState, n_exp: int) -> FitState:
    return replace(st, weights=np.zeros(n_exp)) if len(st.weights) != n_exp else st
