"""The landmark model: points inside the model's triangles, and the memory layout the solvers rely on."""

from __future__ import annotations

import numpy as np

from core.tracking.linear import LandmarkModel


def test_barycentric_points_mix_their_corners(face_model):
    """A point at a triangle's corner is that vertex; a point inside mixes the corners by its weights."""
    tris = np.array([0, 100, 5000])
    corner = np.tile([1.0, 0.0, 0.0], (3, 1))
    at_corner = LandmarkModel.from_barycentric(face_model, tris, corner)
    vertices = LandmarkModel.from_vertices(face_model, face_model.triangles[tris, 0])
    for a, b in ((at_corner.mean, vertices.mean), (at_corner.identity, vertices.identity),
                 (at_corner.expressions, vertices.expressions)):
        assert np.allclose(a, b)
    bary = np.array([[0.2, 0.3, 0.5]] * 3)
    inside = LandmarkModel.from_barycentric(face_model, tris, bary)
    v = face_model.expressions[7][face_model.triangles[tris]]  # (3 points, 3 corners, 3)
    assert np.allclose(inside.expressions[7], (v * bary[:, :, None]).sum(1))


def test_bases_are_c_ordered_so_reshapes_are_views(face_model):
    """The solvers flatten the bases every frame (base(), FrameSolver.flat): a strided basis made each a
    megabyte copy (einsum's output order), a third of the keyframe fit's time."""
    lm = LandmarkModel.from_barycentric(face_model, np.arange(40), np.full((40, 3), 1 / 3))
    for basis in (lm.mean, lm.identity, lm.expressions):
        assert basis.flags.c_contiguous
    flat = lm.identity.reshape(lm.n_identity, -1)
    assert np.shares_memory(flat, lm.identity)
