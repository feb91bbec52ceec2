"""The per-clip unknowns: camera focal length and identity, fitted jointly on a few keyframes."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..threads import one_blas_thread
from . import _kernels
from .linear import LandmarkModel
from .solver import FitState, FrameSolver, SolverSettings, initial_pose, rodrigues

# metres: an identity step that moves no landmark point further than this ends the joint rounds. The steps
# shrink fast (real and synthetic clips: 0.7-3 mm, 0.3-1.6, 0.002-0.06, 0.001-0.014, < 0.001); stopping at
# three rounds instead of five moved no point more than 0.013 mm, far below the detector's noise.
CONVERGED = 2e-5


@dataclass
class KeyframeFit:
    """identity (K,); focal (pixels); states: one FitState per keyframe; cost: mean data cost per keyframe."""

    identity: np.ndarray
    focal: float
    states: list[FitState]
    cost: float
    rms: float  # pixels, mean over keyframes
    settings: SolverSettings  # what it was fitted with (the landmark noise among them)


def select_keyframes(points: np.ndarray, valid: np.ndarray, count: int) -> np.ndarray:
    """Indices of up to `count` valid frames that differ most (pose and expression), spread over the clip.

    points: (N, L, 2). Each frame becomes a descriptor (its landmarks centred and scaled to unit size);
    farthest-point sampling from the most typical frame picks varied frames, which separate identity
    from expression better than neighbours would.
    """
    idx = np.flatnonzero(valid)
    if len(idx) <= count:
        return idx
    # Descriptors from at most ~600 evenly spread frames: a long clip need not be scanned whole.
    cand = idx[np.linspace(0, len(idx) - 1, min(len(idx), 600)).round().astype(int)]
    cand = np.unique(cand)
    p = points[cand].astype(np.float64)
    p = p - p.mean(1, keepdims=True)
    p /= np.sqrt((p**2).sum((1, 2), keepdims=True) / p.shape[1]) + 1e-9
    desc = p.reshape(len(cand), -1)
    mean = desc.mean(0)
    chosen = [int(np.argmin(((desc - mean) ** 2).sum(1)))]
    dist = ((desc - desc[chosen[0]]) ** 2).sum(1)
    while len(chosen) < count:
        k = int(np.argmax(dist))
        chosen.append(k)
        dist = np.minimum(dist, ((desc - desc[k]) ** 2).sum(1))
    return np.sort(cand[chosen])


class _KeyframeSystem:
    """Builds one keyframe's Gauss-Newton system in identity, pose and weights for _joint_step.

    The per-point pass is the frame solver's compiled one (residuals, pose columns, R^T d r / d v per row);
    the identity and weights columns are its directions contracted with the bases, and J^T J is one float32
    product (as in FrameSolver._linearize: half the time of float64, the same steps to ~1e-6).
    """

    def __init__(self, lm: LandmarkModel):
        n_pts, n_id, n_exp = lm.n_points, lm.n_identity, lm.n_expressions
        self.id_per_point = np.ascontiguousarray(lm.identity.transpose(1, 0, 2))  # (L, K, 3)
        self.id_flat = np.ascontiguousarray(lm.identity.reshape(n_id, n_pts * 3))  # (K, 3L)
        self.jac = np.empty((2 * n_pts, n_id + 6 + n_exp), np.float32)
        self._pose = np.empty((2 * n_pts, 6 + n_exp), np.float32)  # the kernel's columns: pose, then weights
        self._r = np.empty((n_pts, 2))
        self._hr = np.empty((n_pts, 3))
        self._dr = np.empty((2, n_pts, 3))
        self._columns = _kernels.get("basis_columns")

    def __call__(self, solver: FrameSolver, x: np.ndarray, st: FitState) -> tuple[np.ndarray, np.ndarray]:
        """Gauss-Newton matrix (K + 6 + E)^2 and gradient of one frame's data term, columns [identity |
        rotation, translation | weights]."""
        n_pts, n_id = solver.lm.n_points, len(self.id_flat)
        scale = -st.translation[2] / (solver.focal * solver.settings.sigma)
        m = solver.base + (st.weights @ solver.flat).reshape(n_pts, 3)
        grad = np.empty(n_id + 6 + solver.lm.n_expressions)
        pose_grad = np.empty(6 + solver.lm.n_expressions)
        solver._kernel(m, st.rotation, st.translation, x, solver.cw, solver.focal, solver.cx, solver.cy, scale,
                       self._r, self._hr, pose_grad, True, self._pose, self._dr)
        hr = self._hr.ravel()
        grad[:n_id] = self.id_flat @ hr  # both bases act in model space: (R^T d) . basis
        grad[n_id:n_id + 6] = pose_grad[:6]
        grad[n_id + 6:] = solver.flat @ hr
        j = self.jac
        j[:, n_id:n_id + 6] = self._pose[:, :6]
        self._columns(self.id_per_point, self._dr, j, 0)
        self._columns(solver.per_point, self._dr, j, n_id + 6)
        return (j.T @ j).astype(np.float64), grad


def _joint_step(solver: FrameSolver, system: _KeyframeSystem, xs: np.ndarray, states: list[FitState],
                identity: np.ndarray, prior: float) -> tuple[np.ndarray, list[FitState]]:
    """One Gauss-Newton step on identity and every keyframe's pose and weights together.

    The frames' blocks are eliminated (Schur complement) so the identity step accounts for how each frame
    would re-pose and re-express itself; weights at a bound and pushed outwards stay there, the rest are
    clipped into [0, 1] after the step.
    """
    n_id = len(identity)
    s_mat = prior * np.eye(n_id)
    s_vec = prior * identity.copy()
    per_frame = []
    for x, st in zip(xs, states):
        h, g = system(solver, x, st)
        w = st.weights
        g[n_id + 6:] += solver.l1 + 2 * solver.l2 * w
        k = np.arange(n_id + 6, len(g))
        h[k, k] += 2 * solver.l2
        gf = g[n_id:]
        held = np.r_[np.zeros(6, bool), ((w <= 0) & (gf[6:] > 0)) | ((w >= 1) & (gf[6:] < 0))]
        free = np.flatnonzero(~held) + n_id
        hff = h[np.ix_(free, free)] + 1e-9 * np.eye(len(free))
        hfi = h[free, :n_id]
        sol = np.linalg.solve(hff, np.c_[hfi, g[free]])
        s_mat += h[:n_id, :n_id] - hfi.T @ sol[:, :n_id]
        s_vec += g[:n_id] - hfi.T @ sol[:, n_id]
        per_frame.append((free, sol))
    d_id = -np.linalg.solve(s_mat, s_vec)
    new_states = []
    for st, (free, sol) in zip(states, per_frame):
        d = np.zeros(6 + len(st.weights))
        d[free - n_id] = -(sol[:, n_id] + sol[:, :n_id] @ d_id)
        new_states.append(FitState(rodrigues(d[:3]) @ st.rotation, st.translation + d[3:6],
                                   np.clip(st.weights + d[6:], 0.0, 1.0)))
    return identity + d_id, new_states


def fit_keyframes(lm: LandmarkModel, xs: np.ndarray, focal: float, center: tuple[float, float],
                  point_weights: np.ndarray | None = None, settings: SolverSettings | None = None,
                  identity_prior: float = 30.0, rounds: int = 5, identity: np.ndarray | None = None,
                  fit_identity: bool = True, states: list[FitState | None] | None = None) -> KeyframeFit:
    """Identity shared by keyframes xs (F, L, 2) and each one's pose and weights.

    Starts each keyframe from its entry in `states` where given (a fit of the same keyframe, e.g. before the
    noise level changed or in the focal search), else from a perspective-n-point pose and a per-frame fit;
    then `rounds` joint Gauss-Newton steps on everything (see _joint_step), each followed by a bounded per-frame polish.
    identity_prior: strength of the N(0, 1) prior on identity coefficients, in landmark-noise units
    (larger = closer to the average head). Stops before `rounds` once a step moves no point of the head
    more than CONVERGED.
    """
    settings = settings or SolverSettings()
    identity = np.zeros(lm.n_identity) if identity is None else np.asarray(identity, np.float64).copy()
    solver = FrameSolver(lm, identity, focal, center, point_weights, settings)
    mask = None if point_weights is None else np.asarray(point_weights) > 0
    states = [None] * len(xs) if states is None else list(states)
    for k, (x, st) in enumerate(zip(xs, states)):
        if st is not None:
            states[k] = st.copy()
            continue
        st = initial_pose(solver.base, x, focal, center, mask)
        st.weights = np.zeros(lm.n_expressions)
        states[k] = solver.solve(x, st, iterations=4, exact=True)[0]
    system = _KeyframeSystem(lm)
    for _ in range(rounds if fit_identity else 0):
        new_identity, states = _joint_step(solver, system, xs, states, identity, identity_prior)
        moved = np.abs(lm.base(new_identity) - lm.base(identity)).max()
        identity = new_identity
        solver = FrameSolver(lm, identity, focal, center, point_weights, settings)
        states = [solver.solve(x, st, iterations=1, exact=True)[0] for x, st in zip(xs, states)]
        if moved < CONVERGED:
            break
    costs, rmss = [], []
    for x, st in zip(xs, states):
        e = ((solver.project(st) - x) ** 2).sum(1) * solver.c
        depth_px = -st.translation[2] / (focal * settings.sigma)  # pixels -> noise units at this depth
        costs.append(float(e.sum()) * depth_px**2 + float(solver.l1 @ st.weights + solver.l2 @ st.weights**2))
        rmss.append(float(np.sqrt(e.sum() / solver.c_sum)))
    cost = float(np.mean(costs)) + identity_prior * float(identity @ identity) / max(len(xs), 1)
    return KeyframeFit(identity, focal, states, cost, float(np.mean(rmss)), settings)


def estimate_focal(lm: LandmarkModel, xs: np.ndarray, width: int, height: int,
                   point_weights: np.ndarray | None = None, settings: SolverSettings | None = None,
                   fovs: tuple[float, ...] = (30.0, 40.0, 50.0, 60.0, 75.0), rounds: int = 5,
                   search_rounds: int = 2, noise: Callable[[KeyframeFit], SolverSettings] | None = None,
                   **kw) -> KeyframeFit:
    """The keyframe fit at the horizontal field of view (degrees) that explains the keyframes best.

    noise: the settings for the full fit from the winning search fit (the landmark noise its residuals tell,
    see core.tracking.tracker), None: `settings` throughout.

    Landmarks constrain focal length only weakly (perspective changes a face's shape by a few percent),
    so a coarse grid and the midpoints between its neighbours (cheap fits of `search_rounds` joint steps,
    walked from the narrowest view while the cost falls: the first local minimum), then the full fit at the
    winner is as good as a continuous search. The grid's fits use every
    other keyframe (from 8 up): the same focal on s32 and on every dev and held-out synthetic seed, and a
    quarter less time, the fixed cost a short clip feels most.
    """
    center = ((width - 1) / 2.0, (height - 1) / 2.0)

    search = xs[::2] if len(xs) >= 8 else xs

    def fit(fov: float, r: int, identity=None, frames=search, states=None) -> KeyframeFit:
        focal = 0.5 * width / np.tan(np.radians(fov) / 2)
        return fit_keyframes(lm, frames, focal, center, point_weights, settings, rounds=r, identity=identity,
                             states=states, **kw)

    # The grid and the midpoints between its neighbours, walked from the narrow end while the cost falls: on
    # all six real clips and six synthetic ones the cost rises with the field of view from the grid's narrow
    # end on (the detector's bias, above), so two search fits decide (the walk over the grid points first,
    # then the midpoints around the best, took three, with the same winner wherever the cost has one minimum).
    # Two at a time, one per core (each fit is a chain of small products, one BLAS thread each): the walk
    # takes at least two steps, and a pair's second fit where the first ended it costs no wall time. The same
    # winner as one at a time.
    order = sorted(fovs)
    steps = [order[0]] + [f for lo, hi in zip(order, order[1:]) for f in (0.5 * (lo + hi), hi)]
    best: tuple[float, KeyframeFit] | None = None
    with one_blas_thread(), ThreadPoolExecutor(max_workers=2, thread_name_prefix="likeness-focal") as pool:
        rose = False
        for k in range(0, len(steps), 2):
            pair = steps[k:k + 2]
            for fov, trial in zip(pair, pool.map(lambda fov: fit(fov, search_rounds), pair)):
                rose = best is not None and trial.cost >= best[1].cost
                if rose:
                    break
                best = (fov, trial)
            if rose:
                break
    if noise is not None:
        settings = noise(best[1])  # fit() reads it
    # The search's keyframes start from where its winning fit left them (the same focal); the others cold.
    start = [None] * len(xs)
    if search is not xs:
        start[::2] = best[1].states
    else:
        start = best[1].states
    return fit(best[0], rounds, best[1].identity, xs, states=start)
