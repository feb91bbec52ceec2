"""The correspondence's geometric pieces: closest points on triangles, similarity, file round trip."""

import numpy as np
import pytest

from core.facemodel.correspondence import (
    MEDIAPIPE_TO_68,
    Correspondence,
    closest_points_on_triangles,
    geometric_correspondence,
    similarity_transform,
)


def test_closest_points_match_dense_sampling():
    rng = np.random.default_rng(1)
    vertices = rng.normal(size=(30, 3))
    triangles = rng.integers(0, 30, size=(20, 3))
    triangles = triangles[(triangles[:, 0] != triangles[:, 1]) & (triangles[:, 1] != triangles[:, 2])
                          & (triangles[:, 0] != triangles[:, 2])]
    points = rng.normal(size=(200, 3)) * 1.5
    tri, bary, closest = closest_points_on_triangles(points, vertices, triangles, candidates=len(triangles))
    assert (bary >= -1e-9).all() and np.allclose(bary.sum(1), 1)
    assert np.allclose(np.einsum("nc,ncj->nj", bary, vertices[triangles[tri]]), closest)
    # Brute force over a dense barycentric grid of every triangle: never closer than the exact answer,
    # and the grid's best is within its spacing of it.
    g = np.linspace(0, 1, 41)
    u, v = np.meshgrid(g, g)
    keep = u + v <= 1
    w = np.stack([1 - u[keep] - v[keep], u[keep], v[keep]], 1)  # (S, 3)
    samples = np.einsum("sc,tcj->tsj", w, vertices[triangles]).reshape(-1, 3)
    dense = np.sqrt(((points[:, None] - samples[None]) ** 2).sum(-1)).min(1)
    exact = np.linalg.norm(points - closest, axis=1)
    assert (exact <= dense + 1e-9).all()
    assert np.abs(dense - exact).max() < 0.1


def test_closest_point_inside_and_on_edges():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], float)
    triangles = np.array([[0, 1, 2]])
    points = np.array([[0.2, 0.3, 0.5], [2, -1, 0], [-1, -1, 3], [0.5, -2, 0]])
    _, bary, closest = closest_points_on_triangles(points, vertices, triangles)
    assert np.allclose(closest, [[0.2, 0.3, 0], [1, 0, 0], [0, 0, 0], [0.5, 0, 0]])
    assert np.allclose(bary[0], [0.5, 0.2, 0.3])


def test_similarity_transform_recovers_a_known_one():
    rng = np.random.default_rng(2)
    src = rng.normal(size=(50, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    dst = 0.01 * src @ q.T + [0.1, -0.2, 0.3]
    s, r, t = similarity_transform(src, dst)
    assert s == pytest.approx(0.01) and np.allclose(r, q) and np.allclose(t, [0.1, -0.2, 0.3])


def test_geometric_correspondence_and_file_round_trip(face_model, shared, tmp_path):
    c = geometric_correspondence(face_model, shared / "mediapipe-geometry" / "face_model_with_iris.obj")
    assert c.triangle.shape == (478,) and c.bary.shape == (478, 3)
    assert (c.bary >= -1e-6).all() and np.allclose(c.bary.sum(1), 1, atol=1e-5)
    points = c.points(face_model.neutral, face_model)
    # Inner iBUG points land within a few mm of the ICT model's own 68 landmarks.
    inner = np.linalg.norm(points[MEDIAPIPE_TO_68[27:]] - face_model.neutral[face_model.landmarks68[27:]], axis=1)
    assert np.median(inner) < 0.003 and inner.max() < 0.008
    # Irises on the eyeballs, the subject's right (468) at -x.
    assert points[468, 0] < -0.02 and points[473, 0] > 0.02
    a, b = face_model.submeshes["iris_right"]
    assert ((face_model.triangles[c.triangle[468:473]] >= a) & (face_model.triangles[c.triangle[468:473]] < b)).all()
    # weights_matrix gives the same points, batched points too.
    w = c.weights_matrix(face_model)
    assert w.shape == (478, face_model.n_vertices)
    assert np.allclose(w @ face_model.neutral, points, atol=1e-6)
    batch = c.points(np.stack([face_model.neutral, face_model.neutral * 2]), face_model)
    assert np.allclose(batch[1], 2 * points, atol=1e-6)
    path = tmp_path / "mediapipe478.npz"
    c.save(path)
    back = Correspondence.load(path)
    assert np.array_equal(back.triangle, c.triangle) and np.array_equal(back.bary, c.bary)
    assert back.method == "geometric" and back.model_sha256 == face_model.source_sha256

