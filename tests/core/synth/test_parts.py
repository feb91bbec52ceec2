"""Generator parts: motion curves, gaze, personal corrections, wrinkle maps, albedo semantics, render_frame."""

from __future__ import annotations

import numpy as np
import pytest

from core.render.camera import Camera
from core.render.sh import SH_C0
from core.render.shading import eye_centres, render_frame, rotate_eyes
from core.synth.albedo import procedural_albedo
from core.synth.motion import (
    GAZE_PITCH_PER_WEIGHT,
    GAZE_YAW_PER_WEIGHT,
    expression_curves,
    gaze_from_weights,
    head_motion,
)
from core.synth.personal import DYNAMIC_ALBEDO_NAMES, dynamic_albedo, personal_expressions


def test_expression_curves_are_bounded_smooth_and_busy(face_model):
    names = face_model.expression_names
    w, gaze = expression_curves(np.random.default_rng(0), 600, 30.0, names)
    assert w.shape == (600, 53) and gaze.shape == (600, 2, 2)
    assert w.min() >= 0 and w.max() <= 1
    idx = {n: i for i, n in enumerate(names)}
    assert w[:, idx["eyeBlink_L"]].max() > 0.8  # blinks in 20 s
    assert w[:, idx["jawOpen"]].max() > 0.1  # speech
    assert (w > 0.05).sum(1).mean() > 5  # several shapes at once
    assert np.any(np.abs(w[:, idx["mouthSmile_L"]] - w[:, idx["mouthSmile_R"]]) > 0.1)  # asymmetry
    assert np.all(w[:, idx["mouthClose"]] <= w[:, idx["jawOpen"]] + 1e-6)
    assert not np.any((w[:, idx["jawLeft"]] > 0) & (w[:, idx["jawRight"]] > 0))
    # eye looks follow the gaze exactly (within their full-scale range)
    inside = np.all(np.abs(gaze[..., 0]) < GAZE_YAW_PER_WEIGHT, 1)
    inside &= np.all(np.abs(gaze[..., 1]) < GAZE_PITCH_PER_WEIGHT, 1)
    np.testing.assert_allclose(gaze_from_weights(w, names)[inside], gaze[inside], atol=1e-3)
    # frame-to-frame changes stay small apart from blinks and saccades
    step = np.abs(np.diff(w[:, idx["jawOpen"]]))
    assert np.percentile(step, 95) < 0.15


def test_gaze_convention_matches_the_tracker():
    gaze_mod = pytest.importorskip("core.tracking.gaze")
    assert gaze_mod.EYE_LOOK_DEGREES["horizontal"] == GAZE_YAW_PER_WEIGHT
    assert gaze_mod.EYE_LOOK_DEGREES["down"] == GAZE_PITCH_PER_WEIGHT


def test_rotate_eyes_turns_the_iris_towards_plus_x_for_positive_yaw(face_model):
    v = face_model.neutral.astype(np.float64)
    a, b = face_model.submeshes["eyeball_left"]
    front = a + np.argmax(v[a:b, 2])
    turned = rotate_eyes(face_model, v, np.array([[20.0, 0.0], [0.0, 15.0]]))
    assert turned[front, 0] > v[front, 0] + 0.003
    ra, rb = face_model.submeshes["eyeball_right"]
    rfront = ra + np.argmax(v[ra:rb, 2])
    assert turned[rfront, 1] < v[rfront, 1] - 0.002  # pitch > 0 looks down
    np.testing.assert_array_equal(turned[:a], v[:a])  # nothing else moves
    c = eye_centres(face_model, v)
    np.testing.assert_allclose(np.linalg.norm(turned[a:b] - c[0], axis=1), np.linalg.norm(v[a:b] - c[0], axis=1),
                               atol=1e-9)


def test_head_motion_ranges():
    rot, trans = head_motion(np.random.default_rng(1), 900, 30.0)
    assert np.all(np.abs(rot) <= [15, 25, 10])
    assert np.abs(rot[:, 1]).max() > 5
    assert np.abs(trans).max() < 0.05
    assert np.abs(np.diff(rot, axis=0)).max() < 2.0  # degrees per frame: smooth


def test_personal_expressions_are_small_smooth_and_on_the_face(face_model):
    p = personal_expressions(face_model, np.random.default_rng(4))
    assert p.shape == face_model.expressions.shape
    mag = np.linalg.norm(p, axis=2)
    per_shape = mag.max(1)
    assert 4 <= (per_shape > 1e-4).sum() <= 20
    assert per_shape.max() < 0.006 and per_shape.max() > 0.0015  # a few mm
    for off in ("head_and_neck", "eyeball_left", "eyelashes_right"):
        a, b = face_model.submeshes[off]
        assert mag[:, a:b].max() == 0  # zero off the face region
    a, b = face_model.submeshes["head_and_neck"]
    names = face_model.expression_names
    assert per_shape[names.index("jawOpen")] > 0.001
    # smooth over the connected surface (face and the sockets joined to it), also across the seams
    t = face_model.triangles
    v = face_model.neutral
    length = np.linalg.norm(v[t[:, 0]] - v[t[:, 1]], axis=1) + 1e-5
    for k in np.flatnonzero(per_shape > 1e-4):
        # a tear would be >> 1; where the generic shape itself is steep (the lips part) more is allowed
        slope = np.linalg.norm(p[k][t[:, 0]] - p[k][t[:, 1]], axis=1) / length
        e = face_model.expressions[k]
        generic = np.linalg.norm(e[t[:, 0]] - e[t[:, 1]], axis=1) / length
        assert np.max(slope - 0.2 * generic) < 0.5, names[k]
    # and it fades out before the face meets the back of the head
    touching = np.isin(t, np.arange(a, b)).any(1)
    assert mag[:, np.unique(t[touching])].max() < 2e-4


def test_albedo_parts_and_wrinkles(face_model):
    albedo = procedural_albedo(face_model, np.random.default_rng(5), 256)
    assert albedo.shape == (256, 256, 3) and albedo.dtype == np.float32
    assert 0 <= albedo.min() and albedo.max() <= 1
    names, dyn = dynamic_albedo(face_model, np.random.default_rng(5), albedo)
    assert names == DYNAMIC_ALBEDO_NAMES and dyn.shape == (len(names), 256, 256, 3)
    assert dyn.max() <= 0 and all(d.min() < -0.02 for d in dyn)  # every map darkens somewhere


def test_rendered_still_has_brows_lips_and_eyes_in_place(face_model):
    """A frontal still under plain light: brows darker than the forehead, lips redder than the cheek,
    the pupil darker than the eye white beside it."""
    albedo = procedural_albedo(face_model, np.random.default_rng(6), 512)
    cam = Camera.from_fov(256, 256, 30)
    sh = np.zeros((9, 3))
    sh[0] = 1.0 / SH_C0
    img = render_frame(face_model, None, np.zeros(53), np.zeros(3), np.array([0, 0, -0.75]), cam, albedo, sh)
    assert img.dtype == np.uint8 and img.shape == (256, 256, 3)
    rgb = img[..., ::-1].astype(float)
    lm = cam.project(face_model.neutral[face_model.landmarks68].astype(np.float64) + [0, 0, -0.75])

    def at(p, dy=0.0, dx=0.0):
        x, y = np.round(p + [dx, dy]).astype(int)
        return rgb[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3).mean(0)

    brow = at(lm[19], dy=2)
    forehead = at(lm[19], dy=-14)
    assert brow.sum() < 0.8 * forehead.sum()
    lip = at((lm[51] + lm[62]) / 2)
    cheek = at(lm[3], dx=12)
    assert lip[0] / lip[1] > 1.1 * cheek[0] / cheek[1]
    # pupil at the middle of the left eye opening vs. the white towards its outer corner
    eye_mid = (lm[43] + lm[44] + lm[46] + lm[47]) / 4
    white = eye_mid + (lm[45] - eye_mid) * 0.65
    assert at(eye_mid).sum() < 0.6 * at(white).sum()
