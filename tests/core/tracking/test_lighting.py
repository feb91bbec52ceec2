"""Per-frame lighting from the colours under the landmarks: recovers a known light, ignores outliers."""

import numpy as np

from core.render.sh import sh_basis
from core.tracking.lighting import FACING, KEEP_PERCENT, MIN_POINTS, RIDGE, SKIN_ALBEDO, fit_lighting


def _reference_fit(colours, basis, ok, albedo):
    """fit_lighting's definition in numpy, all frames at once (the code before the compiled pass)."""
    ridge = RIDGE * np.r_[0.0, np.ones(8)]
    coeffs = np.full((len(colours), 9, 3), np.nan)
    for _ in range(2):
        wgt = ok.astype(np.float64)
        count = wgt.sum(1)
        at = (basis * wgt[..., None]).transpose(0, 2, 1)
        ata = at @ basis + count[:, None, None] * np.diag(ridge)
        atb = (at @ colours) / albedo
        good = count >= MIN_POINTS
        coeffs[good] = np.linalg.solve(ata[good], atb[good])
        coeffs[~good] = np.nan
        resid = np.abs(albedo * (basis @ np.nan_to_num(coeffs)) - colours).sum(-1)
        cut = np.array([np.percentile(r[m], KEEP_PERCENT) if m.any() else np.inf for r, m in zip(resid, ok)])
        ok = ok & (resid <= cut[:, None])
    return coeffs


def test_the_compiled_fit_is_its_numpy_definition():
    rng = np.random.default_rng(3)
    n_frames, n_pts = 5, 120
    normals = rng.normal(size=(n_pts, 3))
    normals[:, 2] = np.abs(normals[:, 2]) + 0.2
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    rotation = np.tile(np.eye(3), (n_frames, 1, 1))
    points = np.c_[rng.normal(0, 0.05, (n_pts, 2)), np.full(n_pts, -0.6)][None].repeat(n_frames, 0)
    colours = rng.integers(0, 256, (n_frames, n_pts, 3)).astype(np.uint8)
    basis = sh_basis(normals)[None].repeat(n_frames, 0)
    facing = (normals * -points / np.linalg.norm(points, axis=-1, keepdims=True)).sum(-1) > FACING
    assert 0.5 < facing.mean() < 1  # some points too oblique to use
    use = np.zeros(n_pts, bool)
    use[np.flatnonzero(facing[0])[:MIN_POINTS + 3]] = True  # enough for the first fit, not after its cut
    got = fit_lighting(colours, normals, rotation, points)
    few = fit_lighting(colours, normals, rotation, points, use)
    want = _reference_fit(colours / 255.0, basis, facing, SKIN_ALBEDO)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert np.isnan(few).all() and np.isnan(_reference_fit(colours / 255.0, basis, facing & use, SKIN_ALBEDO)).all()


def test_a_known_light_is_recovered_despite_outliers():
    rng = np.random.default_rng(4)
    n_frames, n_pts = 6, 300
    normals = rng.normal(size=(n_pts, 3))
    normals[:, 2] = np.abs(normals[:, 2]) + 0.3  # a face shows the camera one hemisphere
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    rotation = np.tile(np.eye(3), (n_frames, 1, 1))
    points = np.c_[rng.normal(0, 0.05, (n_pts, 2)), np.full(n_pts, -0.6)][None].repeat(n_frames, 0)
    light = np.zeros((n_frames, 9, 3))
    light[:, 0] = 1.6 + rng.uniform(-0.2, 0.2, (n_frames, 3))
    light[:, 1:4] = rng.uniform(-0.4, 0.4, (n_frames, 3, 3))  # a light from one side, per frame
    colours = SKIN_ALBEDO * np.einsum("li,nic->nlc", sh_basis(normals), light)
    colours[:, :20] = rng.uniform(0, 1, (n_frames, 20, 3))  # hair over some points
    got = fit_lighting(np.round(np.clip(colours, 0, 1) * 255).astype(np.uint8), normals, rotation, points)
    # On a hemisphere of normals some bands trade off (see RIDGE): compare the shading they give, not them.
    shade = np.einsum("li,nic->nlc", sh_basis(normals), got)
    truth = np.einsum("li,nic->nlc", sh_basis(normals), light)
    assert np.abs(shade - truth)[:, 20:].mean() < 0.04 * truth.mean()
    # too few usable points: no light, marked NaN
    assert np.isnan(fit_lighting(np.zeros((1, 10, 3), np.uint8), normals[:10], rotation[:1], points[:1, :10])).all()
