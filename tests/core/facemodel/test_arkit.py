"""The ICT <-> ARKit name table, both ways."""

import numpy as np

from core.facemodel.arkit import ARKIT_NAMES, arkit_name_to_ict, arkit_to_ict, ict_name_to_arkit, ict_to_arkit


def test_52_unique_names():
    assert len(ARKIT_NAMES) == 52 == len(set(ARKIT_NAMES))


def test_every_ict_shape_has_an_arkit_name(face_model):
    arkit = {ict_name_to_arkit(n) for n in face_model.expression_names}
    assert arkit == set(ARKIT_NAMES) - {"tongueOut"}
    assert ict_name_to_arkit("eyeBlink_L") == "eyeBlinkLeft"
    assert ict_name_to_arkit("browInnerUp_R") == "browInnerUp"
    assert arkit_name_to_ict("cheekPuff") == ("cheekPuff_L", "cheekPuff_R")
    assert arkit_name_to_ict("tongueOut") == ()
    assert arkit_name_to_ict("mouthSmileRight") == ("mouthSmile_R",)


def test_weights_both_ways(face_model):
    names = face_model.expression_names
    rng = np.random.default_rng(0)
    w = rng.uniform(0, 1, (5, 53)).astype(np.float32)
    a = ict_to_arkit(w, names)
    assert a.shape == (5, 52)
    i_l, i_r = names.index("browInnerUp_L"), names.index("browInnerUp_R")
    np.testing.assert_allclose(a[:, ARKIT_NAMES.index("browInnerUp")], (w[:, i_l] + w[:, i_r]) / 2, rtol=1e-6)
    np.testing.assert_allclose(a[:, ARKIT_NAMES.index("jawOpen")], w[:, names.index("jawOpen")])
    assert (a[:, ARKIT_NAMES.index("tongueOut")] == 0).all()
    back = arkit_to_ict(a, names)
    # Everything but the split halves comes back exactly; the halves come back as their mean.
    split = [i_l, i_r, names.index("cheekPuff_L"), names.index("cheekPuff_R")]
    keep = np.setdiff1d(np.arange(53), split)
    np.testing.assert_allclose(back[:, keep], w[:, keep], rtol=1e-6)
    np.testing.assert_allclose(back[:, i_l], back[:, i_r])
    # and ARKit -> ICT -> ARKit is exact
    np.testing.assert_allclose(ict_to_arkit(back, names), a, rtol=1e-6)


def test_table_matches_the_model(face_model):
    from core.facemodel.arkit import ICT_NAMES

    assert ICT_NAMES == face_model.expression_names
    assert arkit_name_to_ict("jawLeft") == ("jawLeft",) and arkit_name_to_ict("mouthRight") == ("mouthRight",)
