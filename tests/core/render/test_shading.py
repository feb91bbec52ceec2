"""SH basis, shading, normals and the textured head render."""

from __future__ import annotations

import numpy as np
import pytest

from core.render.camera import Camera, transform
from core.render.overlay import draw_mesh_overlay, draw_points
from core.render.sh import SH_C0, sh_basis, shade, vertex_normals
from core.render.shading import render_face


def test_sh_basis_is_orthonormal_on_the_sphere():
    rng = np.random.default_rng(1)
    n = rng.normal(size=(200_000, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    b = sh_basis(n)
    gram = 4 * np.pi * (b.T @ b) / len(n)
    np.testing.assert_allclose(gram, np.eye(9), atol=0.03)


def test_shade_with_dc_only_is_constant():
    rng = np.random.default_rng(2)
    n = rng.normal(size=(100, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    coeffs = np.zeros((9, 3))
    coeffs[0] = [0.5 / SH_C0, 1.0 / SH_C0, 2.0 / SH_C0]
    out = shade(np.full((100, 3), 0.5), n, coeffs)
    np.testing.assert_allclose(out, np.tile([0.25, 0.5, 1.0], (100, 1)), atol=1e-6)
    with pytest.raises(ValueError):
        shade(np.ones((2, 3)), n[:2], np.zeros((4, 3)))


def test_vertex_normals_of_a_tetrahedron_point_outwards():
    v = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    t = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])  # counter-clockwise seen from outside
    n = vertex_normals(v, t)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1, atol=1e-9)
    centre = v.mean(0)
    assert np.all(np.einsum("ij,ij->i", n, v - centre) > 0)


def test_face_normals_point_to_the_viewer(face_model):
    n = vertex_normals(face_model.neutral, face_model.triangles)
    nose_tip = face_model.landmarks68[30]
    assert n[nose_tip, 2] > 0.8


def _scene(face_model, size=128):
    cam = Camera.from_fov(size, size, 50)
    v = transform(face_model.neutral.astype(np.float64), np.array([0, 10, 0]), np.array([0, 0, -0.55]))
    return cam, v


def test_render_face_lights_and_composites(face_model):
    cam, v = _scene(face_model)
    albedo = np.full((64, 64, 3), 0.5, np.float32)
    sh = np.zeros((9, 3))
    sh[0] = 1.0 / SH_C0
    img, frags = render_face(face_model, cam, v, albedo, sh, background=(0.0, 0.0, 1.0))
    m = frags.mask
    assert img.shape == (128, 128, 3) and img.dtype == np.float32
    np.testing.assert_allclose(img[m], 0.5, atol=1e-4)  # ambient only: albedo everywhere
    assert np.all(img[~m] == [0, 0, 1])
    hidden = face_model.submeshes["eyelashes_left"]
    ids = frags.triangle[m]
    assert ids.max() < len(face_model.triangles)
    assert not np.any((face_model.triangles[ids, 0] >= hidden[0]) & (face_model.triangles[ids, 0] < hidden[1]))
    # a light from +z (the viewer) brightens surfaces facing the camera more than the silhouette
    sh[2] = 1.0
    lit, _ = render_face(face_model, cam, v, albedo, sh)
    nose = face_model.landmarks68[30]
    x, y = np.round(cam.project(v[nose])).astype(int)
    assert lit[y, x, 0] > 0.6


def test_overlay_draws_on_a_copy(face_model):
    cam, v = _scene(face_model)
    img = np.zeros((128, 128, 3), np.uint8)
    pts = cam.project(v)
    a, b = face_model.submeshes["face"]
    tris = face_model.triangles[face_model.triangles[:, 0] < b]
    out = draw_mesh_overlay(img, pts, tris, (0, 255, 0), 0.8)
    assert out[..., 1].sum() > 0 and img.sum() == 0
    dots = draw_points(img, pts[face_model.landmarks68], (0, 0, 255))
    assert dots[..., 2].sum() > 0 and dots[..., 1].sum() == 0
