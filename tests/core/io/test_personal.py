"""PersonalModel files: round trip, PNG textures, expression deltas, bad files."""

import json

import numpy as np
import pytest

from core.io.personal import PersonalModel, PersonalModelFileError, expression_deltas, generic_personal_model


def _person(face_model, rng):
    v = face_model.n_vertices
    names = face_model.expression_names
    corr = np.zeros((len(names), v, 3), np.float32)
    corr[names.index("jawOpen"), :100] = rng.normal(0, 1e-3, (100, 3))
    dyn = rng.normal(0, 0.05, (1, 16, 16, 3)).astype(np.float32)
    return PersonalModel(identity=rng.normal(size=100), neutral_correction=np.full((v, 3), 1e-4, np.float32),
                         expression_names=names, expression_corrections=corr,
                         albedo=rng.uniform(0, 1, (64, 64, 3)), dynamic_albedo_names=("mouthSmile_L",),
                         dynamic_albedo=dyn, correction_maps=np.zeros((54, 8, 8, 3), np.float32),
                         lighting=np.ones((9, 3)), eye_colour=(0.3, 0.45, 0.6), metadata={"source_video": "x.mp4"})


def test_round_trip_and_textures(tmp_path, face_model):
    rng = np.random.default_rng(0)
    p = _person(face_model, rng)
    path = p.save(tmp_path / "person")
    assert path.suffix == ".npz" and path.with_suffix(".json").exists()
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["format"] == "likeness.personal_model" and meta["dynamic_albedo_names"] == ["mouthSmile_L"]
    assert (tmp_path / meta["textures"]["albedo"]).exists()
    assert (tmp_path / meta["textures"]["mouthSmile_L"]).exists()
    q = PersonalModel.load(path)
    assert q.id == p.id and q.metadata["source_video"] == "x.mp4"
    np.testing.assert_array_equal(q.eye_colour, p.eye_colour)
    assert meta["eye_colour"] == [0.3, 0.45, 0.6]
    np.testing.assert_array_equal(q.expression_corrections, p.expression_corrections)
    np.testing.assert_allclose(q.albedo, p.albedo, atol=1 / 255)  # stored as 8 bits
    np.testing.assert_allclose(q.dynamic_albedo, p.dynamic_albedo, atol=1e-3)  # half floats
    # the PNG of the dynamic map decodes back to the delta with the range in the .json
    import cv2

    png = cv2.imread(str(tmp_path / meta["textures"]["mouthSmile_L"]))[..., ::-1] / 255.0
    decoded = (png - 0.5) * 2 * meta["dynamic_albedo_png_range"]
    np.testing.assert_allclose(decoded, p.dynamic_albedo[0], atol=0.01)


def test_expression_deltas_and_vertices(face_model):
    p = _person(face_model, np.random.default_rng(1))
    d = expression_deltas(p, face_model)
    j = face_model.expression_names.index("jawOpen")
    np.testing.assert_allclose(d[j], face_model.expressions[j] + p.expression_corrections[j], atol=1e-7)
    w = np.zeros(53)
    w[j] = 1
    v = p.vertices(face_model, w)
    expected = face_model.identity_shape(p.identity) + p.neutral_correction + d[j]
    np.testing.assert_allclose(v, expected, atol=1e-6)


def test_albedo_at_adds_dynamic_maps(face_model):
    p = _person(face_model, np.random.default_rng(2))
    w = np.zeros(53)
    np.testing.assert_allclose(p.albedo_at(w), p.albedo, atol=1e-6)
    w[face_model.expression_names.index("mouthSmile_L")] = 1.0
    assert np.abs(p.albedo_at(w) - p.albedo).max() > 0.01


def test_generic_model_has_no_corrections(face_model):
    g = generic_personal_model(face_model)
    assert not g.expression_corrections.any() and g.albedo.shape[0] >= 1024
    np.testing.assert_allclose(g.expression_deltas(face_model), face_model.expressions)


def test_bad_files(tmp_path, face_model):
    with pytest.raises(PersonalModelFileError, match="no such"):
        PersonalModel.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(PersonalModelFileError, match="not a readable"):
        PersonalModel.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(PersonalModelFileError, match="missing"):
        PersonalModel.load(tmp_path / "other.npz")
    with pytest.raises(PersonalModelFileError, match="do not match"):
        PersonalModel(identity=np.zeros(100), neutral_correction=np.zeros((10, 3)), expression_names=("a",),
                      expression_corrections=np.zeros((2, 10, 3)), albedo=np.zeros((4, 4, 3)))
    with pytest.raises(PersonalModelFileError, match="unknown shapes"):
        PersonalModel(identity=np.zeros(100), neutral_correction=np.zeros((10, 3)), expression_names=("a",),
                      expression_corrections=np.zeros((1, 10, 3)), albedo=np.zeros((4, 4, 3)),
                      dynamic_albedo_names=("b",), dynamic_albedo=np.zeros((1, 2, 2, 3)))
    with pytest.raises(PersonalModelFileError, match="eye_colour"):
        PersonalModel(identity=np.zeros(100), neutral_correction=np.zeros((10, 3)), expression_names=("a",),
                      expression_corrections=np.zeros((1, 10, 3)), albedo=np.zeros((4, 4, 3)),
                      eye_colour=(0.2, np.nan, 0.1))


def test_a_model_without_an_eye_colour_loads_with_none(tmp_path, face_model):
    """Files written before the eye colour was kept, and models whose clip never showed the irises."""
    p = _person(face_model, np.random.default_rng(3))
    p.eye_colour = None
    path = p.save(tmp_path / "old")
    with np.load(path) as z:
        assert "eye_colour" not in z.files
    assert PersonalModel.load(path).eye_colour is None
