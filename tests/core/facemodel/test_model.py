"""The ICT model as loaded from the cache, checked against the upstream files."""

from __future__ import annotations

import tarfile

import numpy as np

from core.facemodel.model import LANDMARKS68
from core.facemodel.source import parse_obj_vertices


def test_counts(face_model):
    assert face_model.n_vertices == 26719
    assert face_model.n_expressions == 53
    assert face_model.n_identities == 100
    assert face_model.landmarks68.shape == (68,)
    assert face_model.expression_names[0] == "browDown_L" and "jawOpen" in face_model.expression_names
    assert set(face_model.extra_names) == {"PupilDilate_L", "PupilDilate_R", "cheekRaiser_L", "cheekRaiser_R"}


def test_topology_and_uvs(face_model):
    m = face_model
    assert m.polygon_sizes.shape == (26384,)
    assert set(np.unique(m.polygon_sizes)) == {3, 4}
    assert m.polygon_vertices.shape == (m.polygon_sizes.sum(),) == m.polygon_uvs.shape
    assert m.polygon_vertices.max() == m.n_vertices - 1
    assert (m.polygon_uvs >= 0).all() and m.polygon_uvs.max() < len(m.uvs)
    assert 0.0 <= m.uvs.min() and m.uvs.max() <= 7.0  # upstream spreads UVs over UDIM-like tiles
    atlas = m.atlas_uvs
    assert atlas.shape == (len(m.polygon_vertices), 2) and 0.0 <= atlas.min() and atlas.max() <= 1.0
    assert m.triangle_atlas_uvs.shape == (len(m.triangles), 3, 2)
    # quads split in two, triangles kept: 2 * 25836 + 548
    assert m.triangles.shape == (2 * int((m.polygon_sizes == 4).sum()) + int((m.polygon_sizes == 3).sum()), 3)
    assert (m.triangle_polygon[1:] >= m.triangle_polygon[:-1]).all()


def test_submeshes_and_regions(face_model):
    m = face_model
    assert m.submeshes["face"] == (0, 9409) and m.submeshes["eyelashes_right"][1] == m.n_vertices
    eye = m.neutral[m.submesh("eyeball_left")]
    assert eye[:, 0].mean() > 0  # the subject's left eye is on +X in the ICT model
    assert len(m.regions["idx_to_landmark_verts"]) == 68
    np.testing.assert_array_equal(m.regions["idx_to_landmark_verts"], LANDMARKS68)


def test_units_are_metres(face_model):
    extent = np.ptp(face_model.neutral, axis=0)
    assert 0.2 < extent[0] < 0.3  # head about 25 cm wide
    jaw = face_model.expressions[face_model.expression_names.index("jawOpen")]
    assert 0.02 < np.linalg.norm(jaw, axis=1).max() < 0.06  # the jaw opens a few centimetres


def test_matches_upstream_obj(face_model, ict_archive):
    """The cached arrays equal the OBJ files read directly (in metres)."""
    wanted = {"generic_neutral_mesh.obj", "mouthSmile_L.obj", "identity042.obj"}
    found = {}
    with tarfile.open(ict_archive, "r|xz") as t:
        for info in t:
            name = info.name.rsplit("/", 1)[-1]
            if name in wanted:
                found[name] = parse_obj_vertices(t.extractfile(info).read()) * 0.01
            if len(found) == len(wanted):
                break
    m = face_model
    np.testing.assert_allclose(m.neutral, found["generic_neutral_mesh.obj"], atol=1e-7)
    smile = m.expressions[m.expression_names.index("mouthSmile_L")]
    np.testing.assert_allclose(m.neutral + smile, found["mouthSmile_L.obj"], atol=1e-6)
    np.testing.assert_allclose(m.neutral + m.identity[42], found["identity042.obj"], atol=1e-6)


def test_vertices_linear(face_model):
    m = face_model
    ident = np.zeros(100, np.float32)
    ident[3] = 1.5
    w = np.zeros((2, 53), np.float32)
    w[1, m.expression_names.index("jawOpen")] = 0.5
    v = m.vertices(ident, w)
    assert v.shape == (2, m.n_vertices, 3)
    np.testing.assert_allclose(v[0], m.neutral + 1.5 * m.identity[3], atol=1e-6)
    np.testing.assert_allclose(v[1] - v[0], 0.5 * m.expressions[m.expression_names.index("jawOpen")], atol=1e-6)
    idx = m.landmarks68
    np.testing.assert_allclose(m.vertices(ident, w[1], index=idx), v[1][idx], atol=1e-6)


def test_atlas_cells_do_not_overlap(face_model):
    """Face, back of head, eyeballs, gums and teeth land in separate atlas cells."""
    from core.facemodel.model import ATLAS_CELLS

    m = face_model
    poly_vertex = m.polygon_vertices[m.polygon_starts]
    corner_vertex = m.polygon_vertices
    uv = m.atlas_uvs

    def cell_of(points):
        for name, (u0, v0, size) in ATLAS_CELLS.items():
            if ((points >= [u0, v0]) & (points <= [u0 + size, v0 + size])).all():
                return name
        return None

    for sub, cell in (("teeth", "teeth"), ("gums_and_tongue", "gums"), ("eyeball_left", "eyeball"),
                      ("eyelashes_right", "eyelashes")):
        a, b = m.submeshes[sub]
        assert cell_of(uv[(corner_vertex >= a) & (corner_vertex < b)]) == cell, sub
    a, b = m.submeshes["narrow_face"]
    assert cell_of(uv[(corner_vertex >= a) & (corner_vertex < b) & (m.uvs[m.polygon_uvs][:, 0] < 1)]) == "face"
    assert len(poly_vertex) == len(m.polygon_sizes)
