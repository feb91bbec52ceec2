"""The synthetic generator: the truth reproduces the video, determinism, keys, CLI and bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.render.camera import Camera, transform
from core.render.shading import render_face, rotate_eyes
from core.synth import generate, load_truth

SIZE = (256, 224)
FRAMES = 8


@pytest.fixture(scope="module")
def clip(tmp_path_factory, face_model):
    out = tmp_path_factory.mktemp("synth") / "a"
    truth = generate(7, FRAMES, SIZE, personal=True, out_dir=out, albedo_size=256, model=face_model)
    return out, truth


def _frames(path):
    cap = cv2.VideoCapture(str(path / "video.mp4"))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            return np.array(frames)
        frames.append(f)


def _geometry(model, truth, i):
    w = truth["weights"][i].astype(np.float64)
    v = model.vertices(truth["identity"], w).astype(np.float64)
    if "personal_expressions" in truth:
        v += np.tensordot(w, truth["personal_expressions"].astype(np.float64), axes=1)
    v = rotate_eyes(model, v, truth["gaze"][i])
    return transform(v, truth["rotation"][i].astype(np.float64), truth["translation"][i].astype(np.float64))


def test_keys_and_shapes(clip, face_model):
    path, truth = clip
    assert (path / "video.mp4").stat().st_size > 1000
    loaded = load_truth(path)
    assert set(truth) == set(loaded)
    f, v = FRAMES, face_model.n_vertices
    expect = {
        "weights": (f, 53), "rotation": (f, 3), "translation": (f, 3), "timestamps": (f,), "identity": (100,),
        "lighting": (f, 9, 3), "landmarks68": (f, 68, 2), "visible68": (f, 68), "gaze": (f, 2, 2),
        "personal_expressions": (53, v, 3), "albedo": (256, 256, 3), "image_size": (2,), "names": (53,),
    }
    for key, shape in expect.items():
        assert loaded[key].shape == shape, key
    assert tuple(loaded["names"]) == face_model.expression_names
    assert loaded["dynamic_albedo"].dtype == np.float16
    assert loaded["dynamic_albedo"].shape == (len(loaded["dynamic_albedo_names"]), 256, 256, 3)
    assert tuple(loaded["image_size"]) == SIZE and float(loaded["fps"]) == 30.0
    assert 0 <= loaded["weights"].min() and loaded["weights"].max() <= 1
    assert (loaded["weights"] > 0.05).sum(1).min() >= 3  # several shapes act at once
    if "landmarks_mp" in loaded:
        assert loaded["landmarks_mp"].shape == (f, 478, 2)
    frames = _frames(path)
    assert frames.shape == (FRAMES, SIZE[1], SIZE[0], 3)


def test_face_size_and_pose_ranges(clip):
    _, truth = clip
    lm = truth["landmarks68"]
    height = SIZE[1]
    face = lm[:, :, 1].max(1) - lm[:, :, 1].min(1)  # brow to chin, about 0.73 of forehead-to-chin
    assert np.all(face > 0.25 * height) and np.all(face < 0.6 * height)
    assert np.all(np.abs(truth["rotation"]) <= [15.01, 25.01, 10.01])
    inside = (lm[..., 0] > 0) & (lm[..., 0] < SIZE[0]) & (lm[..., 1] > 0) & (lm[..., 1] < SIZE[1])
    assert inside.all()
    assert truth["visible68"].mean() > 0.6


def test_truth_reproduces_the_video(clip, face_model):
    """Re-rendering from the truth alone (pose, identity, weights, personal deltas, gaze, albedo, light)
    matches the decoded frames, and visible landmarks lie on the rendered surface."""
    path, truth = clip
    frames = _frames(path)
    cam = Camera(SIZE[0], SIZE[1], float(truth["focal"]))
    names = list(truth["names"])
    for i in (0, FRAMES - 1):
        v_cam = _geometry(face_model, truth, i)
        albedo = truth["albedo"].astype(np.float32).copy()
        for name, delta in zip(truth["dynamic_albedo_names"], truth["dynamic_albedo"]):
            albedo += truth["weights"][i, names.index(name)] * delta.astype(np.float32)
        image, frags = render_face(face_model, cam, v_cam, np.clip(albedo, 0, 1), truth["lighting"][i])
        mask = cv2.erode(frags.mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        video = frames[i][..., ::-1].astype(np.float32) / 255
        err = np.abs(np.clip(image, 0, 1) - video)[mask].mean()
        assert err < 0.03, err
        np.testing.assert_allclose(cam.project(v_cam[face_model.landmarks68]), truth["landmarks68"][i], atol=1e-3)
        depth = -v_cam[face_model.landmarks68, 2]
        xy = np.round(truth["landmarks68"][i]).astype(int)
        zbuf = frags.depth[xy[:, 1], xy[:, 0]]
        vis = truth["visible68"][i]
        assert np.all(depth[vis] <= zbuf[vis] + 0.004)  # not hidden behind the rendered surface
        assert np.mean(np.abs(depth[vis] - zbuf[vis]) < 0.004) > 0.8  # mostly on it (silhouette points aside)
        assert np.all(depth[~vis] > zbuf[~vis] + 0.004)


def test_same_seed_same_clip_other_seed_differs(clip, tmp_path, face_model):
    path, truth = clip
    again = generate(7, FRAMES, SIZE, personal=True, out_dir=tmp_path / "b", albedo_size=256, model=face_model)
    for key in truth:
        np.testing.assert_array_equal(np.asarray(truth[key]), np.asarray(again[key]), err_msg=key)
    np.testing.assert_array_equal(_frames(path), _frames(tmp_path / "b"))
    other = generate(8, FRAMES, SIZE, out_dir=tmp_path / "c", albedo_size=256, model=face_model)
    assert not np.allclose(other["identity"], truth["identity"])
    assert not np.allclose(other["weights"], truth["weights"])
    assert "personal_expressions" not in other
    assert np.abs(_frames(tmp_path / "c").astype(int) - _frames(path)).mean() > 5


def test_bad_arguments_are_refused(tmp_path, face_model):
    with pytest.raises(ValueError, match="frames"):
        generate(0, 0, SIZE, out_dir=tmp_path, model=face_model)
    with pytest.raises(ValueError, match="size"):
        generate(0, 2, (8, 8), out_dir=tmp_path, model=face_model)


def test_cli_writes_both_files_and_reports_bad_input(tmp_path, capsys):
    from core.cli import main

    out = tmp_path / "clip"
    rc = main(["synth", "--seed", "3", "--frames", "2", "--size", "96", "80", "--albedo-size", "128", "-o", str(out)])
    assert rc == 0
    assert (out / "video.mp4").exists() and (out / "truth.npz").exists()
    assert load_truth(out)["weights"].shape == (2, 53)

    assert main(["synth", "--frames", "0", "-o", str(tmp_path / "x")]) == 1
    assert "--frames" in capsys.readouterr().err
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    assert main(["synth", "--frames", "1", "--size", "64", "64", "-o", str(blocker / "sub")]) == 1
    err = capsys.readouterr().err
    assert "cannot write" in err and "Traceback" not in err
