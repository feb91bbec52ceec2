"""Gaze from iris points: the eyes of a rendered-style head turned by known angles are read back."""

from __future__ import annotations

import numpy as np
import pytest

from core.render.camera import Camera, euler_to_matrix, transform
from core.render.shading import eye_centres, rotate_eyes
from core.tracking.gaze import (
    direction_to_angles,
    eye_look_matrix,
    eye_look_to_gaze,
    eye_model,
    gaze_from_iris,
    gaze_to_eye_look,
)


def test_gaze_read_back_from_turned_eyeballs(face_model):
    rng = np.random.default_rng(0)
    eyes = eye_model(face_model)
    # The iris centre: the eyeball point the model's rest gaze passes through.
    rest_points = eyes.centers + eyes.rest * eyes.radius
    cam = Camera(640, 480, 700.0)
    for _ in range(5):
        gaze = np.stack([rng.uniform(-25, 25, 2), rng.uniform(-20, 20, 2)], axis=1)  # [eye][yaw, pitch]
        rot = rng.uniform(-20, 20, 3)
        t = np.array([0.02, -0.01, -0.5])
        turned = []
        for e in range(2):  # turn each iris point the way rotate_eyes turns the eyeball
            r = euler_to_matrix(np.array([gaze[e, 1], gaze[e, 0], 0.0]))
            turned.append((rest_points[e] - eyes.centers[e]) @ r.T + eyes.centers[e])
        iris_px = cam.project(transform(np.array(turned), rot, t))
        # rest direction is not exactly +z, so the read-back angle is relative to it: compare changes
        iris0 = cam.project(transform(rest_points, rot, t))
        g = gaze_from_iris(iris_px[None], euler_to_matrix(rot)[None], t[None], eyes, cam.focal, cam.center)[0]
        g0 = gaze_from_iris(iris0[None], euler_to_matrix(rot)[None], t[None], eyes, cam.focal, cam.center)[0]
        assert np.abs(g0).max() < 0.05
        assert np.abs(g - gaze).max() < 1.5, (g, gaze)


def test_eye_centres_match_the_renderer(face_model):
    eyes = eye_model(face_model)
    assert np.allclose(eyes.centers, eye_centres(face_model, face_model.neutral), atol=1e-6)
    assert eyes.centers[0, 0] > 0 > eyes.centers[1, 0]  # [left, right] of the subject: left at +x
    moved = rotate_eyes(face_model, face_model.neutral, np.array([[10.0, 0.0], [10.0, 0.0]]))
    assert np.abs(moved - face_model.neutral).max() > 1e-3


def test_eye_look_weights_round_trip(face_model):
    names = face_model.expression_names
    gaze = np.array([[[20.0, 10.0], [-15.0, -5.0]], [[-9.0, -20.0], [12.0, 24.0]]])
    look = gaze_to_eye_look(gaze, names)
    w = np.zeros((2, len(names)))
    for k, v in look.items():
        w[:, k] = v
    assert w[0, names.index("eyeLookOut_L")] > 0 and w[0, names.index("eyeLookOut_R")] > 0
    assert w[0, names.index("eyeLookDown_L")] > 0 and w[0, names.index("eyeLookUp_R")] > 0
    assert np.allclose(eye_look_to_gaze(w, names), gaze)


def _reference_gaze(iris_px, rotation, translation, eyes, focal, center):
    """gaze_from_iris in numpy (the code before the compiled per-frame pass)."""
    ray = np.stack([(iris_px[..., 0] - center[0]) / focal, -(iris_px[..., 1] - center[1]) / focal,
                    -np.ones(iris_px.shape[:-1])], -1)
    ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
    c = eyes.centers @ rotation.transpose(0, 2, 1) + translation[:, None, :]
    b = (ray * c).sum(-1)
    s = b - np.sqrt(np.clip(eyes.radius**2 - ((c * c).sum(-1) - b * b), 0.0, None))
    d = ray * s[..., None] - c
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    return direction_to_angles(d @ rotation) - direction_to_angles(eyes.rest)[None]


def test_the_compiled_gaze_is_its_numpy_definition(face_model):
    rng = np.random.default_rng(8)
    eyes = eye_model(face_model)
    rotation = euler_to_matrix(rng.normal(0, 15, (20, 3)))
    translation = np.c_[rng.normal(0, 0.03, (20, 2)), rng.uniform(-0.9, -0.4, 20)]
    iris_px = rng.uniform(200, 440, (20, 2, 2))  # most rays miss the eyeball: their closest point counts
    got = gaze_from_iris(iris_px, rotation, translation, eyes, 900.0, (320.0, 240.0))
    np.testing.assert_allclose(got, _reference_gaze(iris_px, rotation, translation, eyes, 900.0, (320.0, 240.0)),
                               atol=1e-9)


def test_eye_look_map_is_gaze_to_eye_look():
    names = ("jawOpen", "eyeLookUp_R", "eyeLookIn_L", "eyeLookOut_L", "eyeLookDown_L", "eyeLookOut_R")
    indices, a = eye_look_matrix(names)
    assert list(indices) == [1, 2, 3, 4, 5]
    gaze = np.array([[[20.0, -10.0], [-45.0, 30.0]]])
    w = gaze_to_eye_look(gaze, names)
    assert w[3][0] == pytest.approx(20 / 30) and w[2][0] == 0.0  # the left eye turned out, not in
    assert w[5][0] == 1.0 and w[1][0] == 0.0  # the right eye turned out (towards -X) past full scale, looking down
    assert w[4][0] == 0.0
    np.testing.assert_allclose([w[i][0] for i in indices], np.clip((a * gaze[0]).sum((1, 2)), 0, 1))
