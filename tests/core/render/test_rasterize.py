"""The rasterizer against analytic coverage, depth order, UV layout and interpolation."""

from __future__ import annotations

import numpy as np
import pytest

from core.render.camera import Camera, transform
from core.render.rasterize import interpolate, project_mesh, rasterize, uv_rasterize


def _inside(x, y, tri):
    (x0, y0), (x1, y1), (x2, y2) = tri
    d = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
    w0 = ((x1 - x) * (y2 - y) - (x2 - x) * (y1 - y)) / d
    w1 = ((x2 - x) * (y0 - y) - (x0 - x) * (y2 - y)) / d
    return np.stack([w0, w1, 1 - w0 - w1], -1)


def test_single_triangle_coverage_and_barycentrics():
    tri2d = np.array([[3.3, 2.2], [27.6, 8.1], [10.4, 25.9]])
    points = np.concatenate([tri2d, np.zeros((3, 1))], 1)
    frags = rasterize(points, np.array([[0, 1, 2]]), 32, 30)
    ys, xs = np.mgrid[0:30, 0:32]
    w = _inside(xs.astype(float), ys.astype(float), tri2d)
    expected = np.all(w >= 0, -1)
    clear = np.abs(w).min(-1) > 1e-6  # pixels exactly on an edge may go either way
    assert expected.sum() > 150
    np.testing.assert_array_equal((frags.triangle == 0)[clear], expected[clear])
    inner = expected & clear
    np.testing.assert_allclose(frags.bary[inner], w[inner], atol=1e-5)
    assert np.all(np.isinf(frags.depth[~expected]))
    # the barycentrics reproduce the pixel positions
    xy = interpolate(frags, tri2d, np.array([[0, 1, 2]]))
    np.testing.assert_allclose(xy[inner], np.stack([xs, ys], -1)[inner], atol=1e-4)


def test_winding_does_not_matter_without_culling():
    points = np.array([[1.0, 1, 0], [20, 1, 0], [1, 20, 0]])
    a = rasterize(points, np.array([[0, 1, 2]]), 24, 24)
    b = rasterize(points, np.array([[0, 2, 1]]), 24, 24)
    np.testing.assert_array_equal(a.mask, b.mask)


def test_back_face_culling_keeps_the_side_facing_the_camera():
    cam = Camera(32, 32, 30.0)
    # counter-clockwise seen from +z (the camera looks down -z): its front faces the camera
    verts = np.array([[-0.5, -0.5, -2.0], [0.5, -0.5, -2.0], [0.0, 0.5, -2.0]])
    pts = project_mesh(cam, verts)
    front, back = np.array([[0, 1, 2]]), np.array([[0, 2, 1]])
    assert rasterize(pts, front, 32, 32, cull_back=True).mask.sum() > 50
    assert rasterize(pts, back, 32, 32, cull_back=True).mask.sum() == 0
    # per-triangle choice: only the flagged triangle may be culled
    both = np.array([[0, 2, 1], [0, 2, 1]])
    f = rasterize(pts, both, 32, 32, cull_back=np.array([True, False]))
    assert set(np.unique(f.triangle)) == {-1, 1}


def test_nearer_triangle_wins():
    far = [[0.0, 0, 5], [30, 0, 5], [0, 30, 5]]
    near = [[5.0, 5, 2], [30, 5, 2], [5, 30, 2]]
    points = np.array(far + near)
    tris = np.array([[0, 1, 2], [3, 4, 5]])
    for order in (tris, tris[::-1]):
        frags = rasterize(points, order, 32, 32)
        near_id = 1 if order is tris else 0
        assert frags.triangle[10, 10] == near_id
        assert frags.depth[10, 10] == pytest.approx(2.0)
        assert frags.depth[1, 1] == pytest.approx(5.0)


def test_perspective_correct_barycentrics_follow_camera_depth():
    cam = Camera(64, 64, 60.0)
    # a slanted quad's triangle: the 3D point under each pixel must project back to that pixel
    verts = np.array([[-0.5, -0.5, -2.0], [0.5, -0.5, -4.0], [-0.5, 0.5, -2.0]])
    frags = rasterize(project_mesh(cam, verts), np.array([[0, 1, 2]]), 64, 64)
    p3 = interpolate(frags, verts, np.array([[0, 1, 2]]))
    mask = frags.mask
    assert mask.sum() > 100
    back = cam.project(p3[mask].astype(np.float64))
    ys, xs = np.nonzero(mask)
    np.testing.assert_allclose(back, np.stack([xs, ys], -1), atol=2e-3)
    np.testing.assert_allclose(frags.depth[mask], -p3[mask][:, 2], rtol=1e-5)


def test_interpolate_per_corner_values():
    points = np.array([[0.0, 0, 0], [20, 0, 0], [0, 20, 0], [20, 20, 0]])
    tris = np.array([[0, 1, 2], [1, 3, 2]])
    frags = rasterize(points, tris, 21, 21)
    corner = np.zeros((2, 3, 1))
    corner[1] = 7.0  # second triangle constant 7, first 0: a per-corner seam vertex-values can't express
    out = interpolate(frags, corner, tris)
    assert out.shape == (21, 21, 1)
    assert out[2, 2, 0] == 0 and out[18, 18, 0] == pytest.approx(7.0)
    one = interpolate(frags, np.array([0.0, 1, 2, 3]), tris)
    assert one.shape == (21, 21) and one[18, 18] > one[2, 2]


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        rasterize(np.zeros((3, 2)), np.array([[0, 1, 2]]), 4, 4)
    with pytest.raises(ValueError):
        rasterize(np.zeros((3, 3)), np.array([[0, 1, 3]]), 4, 4)
    with pytest.raises(ValueError):
        rasterize(np.zeros((3, 3)), np.array([[0, 1, 2]]), 0, 4)


def test_uv_layout_covers_a_sensible_fraction(face_model):
    frags = uv_rasterize(face_model, 256)
    covered = frags.mask.mean()
    assert 0.5 < covered < 0.95, covered
    assert uv_rasterize(face_model, 256) is frags  # cached
    # texels of the eye cell belong to eyeballs, the big face cell mostly to the face sub-mesh
    first = face_model.triangles[frags.triangle[frags.mask], 0]
    a, b = face_model.submeshes["eyeball_left"]
    eye_cell = frags.triangle[:64, 192:]
    assert np.all(face_model.triangles[eye_cell[eye_cell >= 0], 0] >= a)
    fa, fb = face_model.submeshes["face"]
    assert ((first >= fa) & (first < fb)).mean() > 0.4
    hidden = face_model.submeshes["eyelashes_left"]
    assert not np.any((first >= hidden[0]) & (first < hidden[1]))


def test_head_render_depth_is_consistent(face_model):
    cam = Camera.from_fov(128, 128, 50)
    v = transform(face_model.neutral.astype(np.float64), np.zeros(3), np.array([0, 0, -0.6]))
    frags = rasterize(project_mesh(cam, v), face_model.triangles, 128, 128)
    m = frags.mask
    assert 0.1 < m.mean() < 0.6
    z = interpolate(frags, -v[:, 2:], face_model.triangles)[..., 0]
    np.testing.assert_allclose(z[m], frags.depth[m], rtol=1e-4)
    # the nose tip (nearest point) is nearer than the cheeks
    assert frags.depth[m].min() < 0.6 - 0.09
