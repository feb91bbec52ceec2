"""The eye colour read from the albedo atlas: the iris ring, not the pupil, the sclera or unseen texels."""

import numpy as np

from core.modeling.eyes import MIN_TEXELS, iris_colour, iris_ring
from core.render.atlas import cell_rect
from core.synth.albedo import IRIS_UV_RADIUS, PUPIL_UV_RADIUS

BLUE, SCLERA, PUPIL, LID = (0.30, 0.45, 0.60), (0.80, 0.76, 0.73), (0.02, 0.02, 0.025), (0.70, 0.45, 0.40)


def _painted_eye(size: int = 512):
    """An atlas whose eye cell holds a sclera, a blue iris and a pupil at the synthetic eyes' radii, and the
    cell's radius (fractions of its side) of every texel; (atlas (S, S, 3), radius (n, n), cell rect)."""
    atlas = np.full((size, size, 3), 0.5, np.float32)
    x0, y0, x1, y1 = cell_rect("eye", 0, size)
    n = x1 - x0
    c = (np.arange(n) + 0.5) / n - 0.5
    r = np.hypot(c[None, :], c[:, None])
    cell = atlas[y0:y1, x0:x1]
    cell[:] = SCLERA
    cell[r < IRIS_UV_RADIUS] = BLUE
    cell[r < PUPIL_UV_RADIUS] = PUPIL
    return atlas, r, (x0, y0, x1, y1)


def test_the_ring_lies_between_the_pupil_and_the_limbus(face_model):
    r0, r1 = iris_ring(face_model)
    # the synthetic eyes darken the iris's outer fifth (the limbus): the ring keeps inside both edges
    assert PUPIL_UV_RADIUS < r0 < r1 < 0.8 * IRIS_UV_RADIUS


def test_the_iris_colour_is_the_rings_not_the_pupils_or_the_scleras(face_model):
    atlas, _, _ = _painted_eye()
    seen = np.ones(atlas.shape[:2], bool)
    np.testing.assert_allclose(iris_colour(face_model, atlas, seen), BLUE, atol=1e-6)


def test_unseen_texels_do_not_count(face_model):
    atlas, r, (x0, y0, x1, y1) = _painted_eye()
    seen = np.zeros(atlas.shape[:2], bool)
    assert iris_colour(face_model, atlas, seen) is None  # never seen: no colour, Blender keeps its default
    # the upper half of the ring hidden by the lids all clip and filled with their colour: the seen half decides
    cell, cell_seen = atlas[y0:y1, x0:x1], seen[y0:y1, x0:x1]
    upper = np.broadcast_to(np.arange(y1 - y0)[:, None] < (y1 - y0) // 2, r.shape)
    cell[upper & (r < IRIS_UV_RADIUS)] = LID
    cell_seen[~upper] = True
    np.testing.assert_allclose(iris_colour(face_model, atlas, seen), BLUE, atol=1e-6)
    # a few seen texels are not enough to call it
    r0, r1 = iris_ring(face_model)
    seen[:] = False
    ring = np.argwhere((r >= r0) & (r <= r1))[: MIN_TEXELS - 1]
    seen[y0 + ring[:, 0], x0 + ring[:, 1]] = True
    assert iris_colour(face_model, atlas, seen) is None
