"""The per-frame solver, the bounded QP and the keyframe identity fit on exact synthetic projections."""

from __future__ import annotations

import numpy as np
import pytest

from core.render.camera import euler_to_matrix, matrix_to_euler
from core.tracking.keyframes import _KeyframeSystem, fit_keyframes, select_keyframes
from core.tracking.solver import FitState, FrameSolver, SolverSettings, box_qp, initial_pose, rodrigues, rotation_log

SIZE = 512
FOCAL = 0.5 * SIZE / np.tan(np.radians(40) / 2)
CENTER = ((SIZE - 1) / 2, (SIZE - 1) / 2)


def project(points, rot, t):
    v = points @ euler_to_matrix(rot).T + t
    return np.stack([CENTER[0] + FOCAL * v[:, 0] / -v[:, 2], CENTER[1] - FOCAL * v[:, 1] / -v[:, 2]], axis=1)


def _problem(lm, rng, identity=None, rot_range=25.0):
    w = np.zeros(53)
    k = rng.choice(53, 6, replace=False)
    w[k] = rng.uniform(0.2, 1.0, 6)
    rot = rng.uniform(-rot_range, rot_range, 3)
    t = np.array([rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03), -rng.uniform(0.45, 0.7)])
    return w, rot, t, project(lm.points(identity, w), rot, t)


def test_box_qp_matches_a_reference_solver():
    from scipy.optimize import Bounds, minimize

    rng = np.random.default_rng(0)
    for _ in range(20):
        n = 15
        a = rng.normal(size=(30, n))
        h = a.T @ a + 0.1 * np.eye(n)
        g = rng.normal(size=n) * 5
        lo = np.full(n, -np.inf)
        hi = np.full(n, np.inf)
        lo[4:] = -rng.uniform(0, 1, n - 4)
        hi[4:] = lo[4:] + 1
        d = box_qp(h, g, lo, hi)
        assert np.all(d >= lo - 1e-12) and np.all(d <= hi + 1e-12)

        def f(x, h=h, g=g):
            return 0.5 * x @ h @ x + g @ x, h @ x + g

        ref = minimize(f, np.clip(np.zeros(n), lo, hi), jac=True, bounds=Bounds(lo, hi), method="L-BFGS-B",
                       options={"ftol": 1e-15, "gtol": 1e-12})
        assert 0.5 * d @ h @ d + g @ d <= ref.fun + 1e-6 * abs(ref.fun)


def test_rotation_helpers_are_inverse():
    v = np.array([0.3, -0.2, 0.5])
    assert np.allclose(rotation_log(rodrigues(v)), v)
    assert np.allclose(rodrigues(v) @ rodrigues(v).T, np.eye(3))


def test_recovers_pose_and_weights_from_exact_points(stand_in):
    rng = np.random.default_rng(1)
    solver = FrameSolver(stand_in, None, FOCAL, CENTER, settings=SolverSettings(sparsity=0.05, ridge=0.05))
    for _ in range(4):
        w, rot, t, x = _problem(stand_in, rng)
        st = initial_pose(stand_in.mean, x, FOCAL, CENTER)
        st.weights = np.zeros(53)
        st, rms = solver.solve(x, st, iterations=12, exact=True)
        assert rms < 0.05
        assert np.abs(matrix_to_euler(st.rotation) - rot).max() < 0.2
        assert np.abs(st.translation - t).max() < 2e-3
        assert np.abs(st.weights - w).mean() < 0.02
        assert st.weights.min() >= 0 and st.weights.max() <= 1


def test_noisy_points_still_close_and_bounds_hold(stand_in):
    rng = np.random.default_rng(2)
    solver = FrameSolver(stand_in, None, FOCAL, CENTER)
    errs = []
    for _ in range(4):
        w, rot, t, x = _problem(stand_in, rng)
        x = x + rng.normal(scale=1.0, size=x.shape)
        st = initial_pose(stand_in.mean, x, FOCAL, CENTER)
        st.weights = np.zeros(53)
        st, rms = solver.solve(x, st, iterations=10, exact=True)
        assert 0.8 < rms < 2.0  # about the noise (1 px per axis)
        assert np.abs(matrix_to_euler(st.rotation) - rot).max() < 1.0
        assert st.weights.min() >= 0 and st.weights.max() <= 1
        errs.append(np.abs(st.weights - w).mean())
    assert np.mean(errs) < 0.05


def test_tracking_a_sequence(stand_in):
    """Warm-started frames (J^T J formed once per frame) follow a moving, changing face."""
    rng = np.random.default_rng(3)
    n = 60
    s = np.linspace(0, 1, n)
    rots = np.stack([10 * np.sin(2 * np.pi * s), 15 * np.sin(2 * np.pi * s * 1.5), 5 * np.cos(np.pi * s)], 1)
    weights = np.zeros((n, 53))
    for k in rng.choice(53, 8, replace=False):
        weights[:, k] = np.clip(np.sin(2 * np.pi * s * rng.uniform(1, 3) + rng.uniform(0, 6)), 0, 1)
    t = np.array([0.0, 0.0, -0.55])
    solver = FrameSolver(stand_in, None, FOCAL, CENTER)
    x0 = project(stand_in.points(None, weights[0]), rots[0], t)
    st = initial_pose(stand_in.mean, x0, FOCAL, CENTER)
    st.weights = np.zeros(53)
    st, _ = solver.solve(x0, st, iterations=10, exact=True)
    prev = st
    rot_err, w_err = [], []
    for i in range(1, n):
        x = project(stand_in.points(None, weights[i]), rots[i], t) + rng.normal(scale=0.5, size=(478, 2))
        st, _ = solver.solve(x, prev, prev)
        prev = st
        rot_err.append(np.abs(matrix_to_euler(st.rotation) - rots[i]).max())
        w_err.append(np.abs(st.weights - weights[i]).mean())
    assert np.mean(rot_err) < 0.5
    assert np.mean(w_err) < 0.04


def test_hold_fixes_weights(stand_in):
    rng = np.random.default_rng(4)
    w, rot, t, x = _problem(stand_in, rng)
    solver = FrameSolver(stand_in, None, FOCAL, CENTER)
    init = FitState(euler_to_matrix(rot), t, np.zeros(53))
    st, _ = solver.solve(x, init, iterations=3, hold=(np.array([5, 9]), np.array([0.25, 0.75])))
    assert st.weights[5] == pytest.approx(0.25) and st.weights[9] == pytest.approx(0.75)


def test_keyframes_recover_identity(stand_in):
    rng = np.random.default_rng(5)
    identity = rng.normal(size=100)
    frames = [_problem(stand_in, rng, identity, rot_range=20) for _ in range(30)]
    xs = np.stack([f[3] for f in frames]) + rng.normal(scale=0.5, size=(30, 478, 2))
    keys = select_keyframes(xs, np.ones(30, bool), 10)
    assert len(keys) == 10 and len(set(keys.tolist())) == 10
    fit = fit_keyframes(stand_in, xs[keys], FOCAL, CENTER, identity_prior=3.0)
    true_shape = stand_in.base(identity)
    generic = np.linalg.norm(stand_in.mean - stand_in.mean.mean(0) - true_shape + true_shape.mean(0), axis=1).mean()
    fitted = stand_in.base(fit.identity)
    err = np.linalg.norm(fitted - fitted.mean(0) - true_shape + true_shape.mean(0), axis=1).mean()
    assert err < 0.5 * generic  # the fitted head is much closer to the person than the average head
    rot_err = [np.abs(matrix_to_euler(s.rotation) - frames[k][1]).max() for s, k in zip(fit.states, keys)]
    assert np.mean(rot_err) < 1.0


def test_keyframe_system_is_the_residuals_derivative(stand_in):
    """The joint step's per-frame system: gradient J^T r and J^T J of the landmark residuals in [identity |
    rotation, translation | weights], checked against finite differences of the residuals themselves."""
    rng = np.random.default_rng(11)
    identity = 0.5 * rng.normal(size=100)
    w, rot, t, x = _problem(stand_in, rng, identity)
    x = x + rng.normal(scale=2.0, size=x.shape)  # a misfit, so the gradient is not zero
    st = FitState(euler_to_matrix(rot + 2.0), t + 0.004, np.clip(w + 0.1, 0, 1))
    solver = FrameSolver(stand_in, identity, FOCAL, CENTER)
    hess, grad = _KeyframeSystem(stand_in)(solver, x, st)

    def residuals(d):  # d = [identity, rotation (left increment), translation, weights] step
        s = FrameSolver(stand_in, identity + d[:100], FOCAL, CENTER)
        moved = FitState(rodrigues(d[100:103]) @ st.rotation, st.translation + d[103:106], st.weights + d[106:])
        scale = -st.translation[2] / (FOCAL * s.settings.sigma)  # the system's units: the start's depth
        return ((s.project(moved) - x) * scale).T.ravel()

    r0 = residuals(np.zeros(159))
    eps = 1e-6
    jac = np.stack([(residuals(eps * e) - residuals(-eps * e)) / (2 * eps) for e in np.eye(159)], axis=1)
    assert np.allclose(grad, jac.T @ r0, rtol=1e-4, atol=1e-6 * np.abs(grad).max())
    assert np.allclose(hess, jac.T @ jac, rtol=1e-3, atol=1e-5 * np.abs(hess).max())


def test_keyframes_warm_start_keeps_a_converged_fit(stand_in):
    """fit_keyframes(states=...) starts from given states (the tracker's refit after the noise estimate):
    from a converged fit, more rounds change little; from no start it re-runs the cold start."""
    rng = np.random.default_rng(6)
    identity = rng.normal(size=100)
    xs = np.stack([_problem(stand_in, rng, identity, rot_range=20)[3] for _ in range(8)])
    fit = fit_keyframes(stand_in, xs, FOCAL, CENTER, identity_prior=3.0)
    again = fit_keyframes(stand_in, xs, FOCAL, CENTER, identity_prior=3.0, identity=fit.identity, rounds=2,
                          states=fit.states)
    assert np.abs(again.identity - fit.identity).max() < 0.05
    assert again.rms <= fit.rms * 1.01
    assert all(a is not b for a, b in zip(again.states, fit.states))  # the given states are not changed in place


def test_warm_up_loads_the_fitting_kernels_in_a_fresh_process():
    """capture_frames warms the kernels up during the landmark pass; the fit then finds them loaded."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "from core.tracking import _kernels\n"
        "from core.tracking.solver import warm_up\n"
        "warm_up()\n"
        "import numpy as np\n"
        "from core.tracking.linear import LandmarkModel\n"
        "from core.tracking.solver import FitState, FrameSolver\n"
        "rng = np.random.default_rng(1)\n"  # a fit of another size, as a clip's would be: no new compilation
        "lm = LandmarkModel(rng.normal(size=(40, 3)) * .05, rng.normal(size=(3, 40, 3)) * .01,\n"
        "                  rng.normal(size=(7, 40, 3)) * .01, tuple('abcdefg'))\n"
        "solver = FrameSolver(lm, np.zeros(3), 900.0, (320.0, 240.0))\n"
        "st = FitState(np.eye(3), np.array([0.0, 0.0, -0.6]), np.zeros(7))\n"
        "solver.solve(solver.project(st) + 1.0, st, exact=True)\n"
        "print(len(_kernels.get('gn_step').signatures), len(_kernels.get('project_points').signatures))\n"
    )
    root = Path(__file__).resolve().parents[3]
    r = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert [int(v) for v in r.stdout.split()[-2:]] == [1, 1]


def test_basis_columns_are_the_per_point_products():
    from core.tracking import _kernels

    rng = np.random.default_rng(11)
    per_point, dr = rng.normal(size=(30, 7, 3)), rng.normal(size=(2, 30, 3))
    jac = np.zeros((60, 12), np.float32)
    _kernels.get("basis_columns")(per_point, dr, jac, 4)
    np.testing.assert_allclose(jac[:30, 4:11], np.einsum("ikc,ic->ik", per_point, dr[0]), rtol=1e-6)
    np.testing.assert_allclose(jac[30:, 4:11], np.einsum("ikc,ic->ik", per_point, dr[1]), rtol=1e-6)
    assert not jac[:, :4].any() and not jac[:, 11:].any()  # the other columns untouched


@pytest.mark.parametrize("true_fov, fits", [(40.0, 3), (55.0, 7)])
def test_focal_walk_stops_at_the_first_rise(stand_in, monkeypatch, true_fov, fits):
    """estimate_focal walks 40, 45, 50, 55, 60, ... degrees while the cost falls, two fits at a time: exact points
    seen through a 55-degree lens stop it at 55 (60 costs more; its pair's 67.5 was fitted beside it), a 40-degree
    one after the first two search fits."""
    import core.tracking.keyframes as keyframes

    rng = np.random.default_rng(9)
    focal = 0.5 * SIZE / np.tan(np.radians(true_fov) / 2)
    identity = rng.normal(size=100)
    xs = []
    for _ in range(8):
        w, rot, t, _ = _problem(stand_in, rng, identity, rot_range=30)
        t[2] *= focal / FOCAL  # the same face size in the picture
        v = stand_in.points(identity, w) @ euler_to_matrix(rot).T + t
        xs.append(np.stack([CENTER[0] + focal * v[:, 0] / -v[:, 2], CENTER[1] - focal * v[:, 1] / -v[:, 2]], 1))
    calls = []
    real = keyframes.fit_keyframes
    monkeypatch.setattr(keyframes, "fit_keyframes", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    fit = keyframes.estimate_focal(stand_in, np.stack(xs), SIZE, SIZE, fovs=(40.0, 50.0, 60.0, 75.0),
                                   identity_prior=3.0)
    assert fit.focal == pytest.approx(focal)
    assert len(calls) == fits  # the search fits (in pairs), then the full fit at the winner


def test_focal_search_hands_its_winner_to_the_noise_estimate(stand_in, monkeypatch):
    """estimate_focal(noise=...) asks for the full fit's settings once, with the winning search fit, and the
    full fit (the only one at them) carries them: the tracker fits the keyframes once at the landmark noise."""
    import core.tracking.keyframes as keyframes
    from core.tracking.solver import SolverSettings

    rng = np.random.default_rng(4)
    identity = rng.normal(size=100)
    xs = []
    for _ in range(8):
        w, rot, t, _ = _problem(stand_in, rng, identity, rot_range=30)
        v = stand_in.points(identity, w) @ euler_to_matrix(rot).T + t
        xs.append(np.stack([CENTER[0] + FOCAL * v[:, 0] / -v[:, 2], CENTER[1] - FOCAL * v[:, 1] / -v[:, 2]], 1))
    asked, used = [], []
    real = keyframes.fit_keyframes
    monkeypatch.setattr(keyframes, "fit_keyframes", lambda *a, **k: used.append(a[5]) or real(*a, **k))
    noisy = SolverSettings(sigma=0.004)

    def noise(search):
        asked.append(search)
        return noisy

    fit = keyframes.estimate_focal(stand_in, np.stack(xs), SIZE, SIZE, fovs=(40.0, 50.0, 60.0, 75.0),
                                   identity_prior=3.0, noise=noise)
    assert len(asked) == 1 and len(asked[0].states) == 4  # the search fits use every other keyframe
    assert asked[0].settings.sigma == SolverSettings().sigma  # searched at the given (default) settings
    assert used[-1] is noisy and all(u is not noisy for u in used[:-1])
    assert fit.settings is noisy and len(fit.states) == 8
