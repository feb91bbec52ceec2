"""Per-frame lighting from the colours under the landmarks: recovers a known light, ignores outliers."""

import numpy as np

from core.render.sh import sh_basis
from core.tracking.lighting import SKIN_ALBEDO, fit_lighting, masked_percentile


def test_masked_percentile_is_nanpercentile_per_row():
    rng = np.random.default_rng(3)
    values = rng.normal(size=(40, 57))
    mask = rng.random((40, 57)) < 0.7
    mask[5] = False  # a row with nothing usable
    mask[6] = False
    mask[6, 9] = True  # and one with a single value
    got = masked_percentile(values, mask, 80.0)
    rows = [r for r in range(40) if r != 5]
    want = np.nanpercentile(np.where(mask, values, np.nan)[rows], 80, axis=1)
    np.testing.assert_allclose(got[rows], want, rtol=1e-12)
    assert got[5] == np.inf


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
