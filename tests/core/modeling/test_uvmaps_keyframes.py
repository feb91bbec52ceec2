"""Correction maps over the face UV tile, per-shape masks, and keyframe selection."""

import numpy as np

from core.modeling import uvmaps
from core.modeling.keyframes import select_keyframes


def test_maps_round_trip_smooth_vertex_values(face_model):
    uv = uvmaps.face_uvs(face_model)
    assert uv.shape == (face_model.submeshes["face"][1], 2) and (uv >= 0).all() and (uv <= 1).all()
    # a smooth field over the face: recovered from its vertex samples through a 64 x 64 map
    values = np.stack([np.sin(3 * uv[:, 0]), np.cos(2 * uv[:, 1]), uv[:, 0] * uv[:, 1]], 1)[None]
    maps = uvmaps.vertices_to_maps(face_model, values, 64)
    back = uvmaps.sample_maps(maps, uv)
    assert maps.shape == (1, 64, 64, 3)
    assert np.abs(back - values).mean() < 0.01


def test_masks_follow_the_generic_shapes(face_model):
    masks = uvmaps.expression_masks(face_model)
    names = face_model.expression_names
    assert masks.shape == (53, face_model.submeshes["face"][1])
    assert masks.min() >= 0 and masks.max() <= 1
    blink, jaw = masks[names.index("eyeBlink_L")], masks[names.index("jawOpen")]
    chin = face_model.landmarks68[8]
    lid = face_model.landmarks68[44]  # upper lid of the subject's left eye
    assert blink[chin] == 0 and blink[lid] > 0.5
    assert jaw[chin] > 0.5
    # the face border (where the head joins) never moves
    border = uvmaps.face_border_falloff(face_model) == 0
    assert border.any() and masks[:, border].max() == 0


def test_keyframes_cover_distinct_expressions():
    w = np.zeros((300, 53))
    w[100:120, 5] = 1.0  # one expression in the middle
    w[250:260, 7] = 0.8  # another near the end
    keys = select_keyframes(w, None, 10)
    assert any(100 <= k < 120 for k in keys) and any(250 <= k < 260 for k in keys)
    assert keys[0] < 100  # the neutral start
    # a clip with one expression yields few keyframes, not `count` near-duplicates
    assert len(select_keyframes(np.zeros((50, 53)), None, 10)) == 1
    # untracked frames are never chosen
    usable = np.ones(300, bool)
    usable[100:120] = False
    assert not any(100 <= k < 120 for k in select_keyframes(w, usable, 10))


def test_rims_of_mouth_and_eyes(face_model):
    rim = uvmaps.rim_vertices(face_model)
    lm = face_model.landmarks68
    assert rim[lm[62]] and rim[lm[66]]  # inner lips
    assert rim[lm[37]] and rim[lm[44]]  # eyelids
    assert not rim[lm[8]] and not rim[lm[30]] and not rim[lm[19]]  # chin, nose tip, brow
