"""build_personal_model on a small synthetic clip: what it writes, and clear errors for bad input."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from core.io.personal import PersonalModel
from core.modeling import ModelingError, ModelingOptions, build_personal_model
from core.modeling.eyes import iris_colour

ROOT = Path(__file__).resolve().parents[3]


def _fast() -> ModelingOptions:
    opt = ModelingOptions(keyframes=4, personal_shapes=True)  # the shape fit is what most of these test
    opt.shape.cg_iterations = 10
    opt.albedo.static_frames = 4
    return opt


def test_model_from_a_small_clip(small_clip, make_capture, face_model, tmp_path):
    video, truth = small_clip
    cap = make_capture(truth)
    person = build_personal_model(video, cap, _fast(), model=face_model)
    names = face_model.expression_names
    exercised = truth["weights"].max(0) >= 0.15
    assert set(person.metadata["fitted_shapes"]) == {n for n, e in zip(names, exercised) if e}
    # shapes the clip never shows stay exactly generic
    assert not person.expression_corrections[~exercised].any()
    assert person.albedo.shape == (1024, 1024, 3) and 0 <= person.albedo.min() and person.albedo.max() <= 1
    assert set(person.dynamic_albedo_names) <= set(names)
    # the face cell of the atlas is skin-coloured where the clip shows it (not black, not the fill colour)
    face = person.albedo[300:500, 250:520]
    assert 0.1 < face.mean() < 0.95
    # the irises' colour comes from the eye cell: this subject's eyes are blue, and so is what the model says
    # (greyer than the paint: tiny eyes at 192x192 blur into the sclera and pupil), its channels in the same order
    true_eye = iris_colour(face_model, truth["albedo"].astype(np.float32), np.ones(truth["albedo"].shape[:2], bool))
    assert true_eye[2] > true_eye[1] > true_eye[0]
    assert person.eye_colour is not None and list(np.argsort(person.eye_colour)) == [0, 1, 2]
    path = person.save(tmp_path / "p.npz")
    back = PersonalModel.load(path)
    np.testing.assert_allclose(back.expression_deltas(face_model), person.expression_deltas(face_model), atol=1e-7)
    np.testing.assert_array_equal(back.eye_colour, person.eye_colour)
    assert (tmp_path / "p.albedo.png").exists()


def test_capture_from_another_video_is_refused(small_clip, make_capture):
    video, truth = small_clip
    cap = make_capture(truth)
    with pytest.raises(ModelingError, match="another video"):
        build_personal_model(video, replace(cap, image_size=(640, 480)), _fast())
    longer = {k: (np.concatenate([v] * 5) if isinstance(v, np.ndarray) and v.ndim and len(v) == 24 else v)
              for k, v in truth.items()}
    longer["timestamps"] = np.arange(120) / 30.0
    with pytest.raises(ModelingError, match="another video"):
        build_personal_model(video, make_capture(longer), _fast())


def test_capture_of_a_range_is_modeled(small_clip, make_capture, face_model):
    """`capture --end 12` then `model`: the capture says it is a part of the clip, so its length is no mismatch."""
    video, truth = small_clip
    first = {k: (v[:12] if isinstance(v, np.ndarray) and v.ndim and len(v) == 24 else v) for k, v in truth.items()}
    part = make_capture(first)
    with pytest.raises(ModelingError, match="another video"):  # nothing says it is a part: refused as before
        build_personal_model(video, part, _fast())
    part.metadata["frame_range"] = [0, 12, 1]
    opt = _fast()
    opt.personal_shapes = False
    person = build_personal_model(video, part, opt, model=face_model)
    assert person.metadata["capture_frames"] == 12 and person.albedo.shape == (1024, 1024, 3)


def test_mostly_untracked_clip(small_clip, make_capture, face_model):
    video, truth = small_clip
    cap = make_capture(truth)
    cap.tracked[:] = False
    cap.tracked[:2] = True
    with pytest.raises(ModelingError, match="tracked in only 2 of 24"):
        build_personal_model(video, cap, _fast())
    opt = _fast()
    opt.on_poor_tracking = "generic"
    person = build_personal_model(video, cap, opt, model=face_model)
    assert "tracked in only" in person.metadata["warnings"][0]
    assert not person.expression_corrections.any()


def test_single_expression_leaves_the_rest_generic(small_clip, make_capture, face_model):
    video, truth = small_clip
    cap = make_capture(truth)
    jaw = face_model.expression_names.index("jawOpen")
    w = np.zeros_like(cap.weights)
    w[:, jaw] = 0.5  # the same face in every frame
    cap = replace(cap, weights=w)
    person = build_personal_model(video, cap, _fast(), model=face_model)
    assert person.metadata["fitted_shapes"] == ["jawOpen"]
    others = np.arange(53) != jaw
    assert not person.expression_corrections[others].any()
    assert person.dynamic_albedo_names == ()  # nothing varies, so nothing to regress


def test_cli_writes_model_and_reports_bad_input(small_clip, make_capture, tmp_path):
    video, truth = small_clip
    cap_path = make_capture(truth).save(tmp_path / "cap.npz")
    out = tmp_path / "person.npz"
    r = subprocess.run([sys.executable, "-m", "core", "model", str(video), str(cap_path), "-o", str(out),
                        "--keyframes", "4", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert out.exists() and out.with_suffix(".json").exists() and "personalized shapes" in r.stdout
    assert "eye colour RGB" in r.stdout  # the small clip shows its eyes
    r = subprocess.run([sys.executable, "-m", "core", "model", str(video), str(tmp_path / "nope.npz"), "-o",
                        str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "no such capture" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow  # renders a clip, captures it with the photometric refinement and re-tracks it twice (~25 s)
def test_retrack_of_a_photometric_capture_refines_against_the_video(tmp_path, face_model):
    from core.io.personal import generic_personal_model
    from core.modeling import retrack
    from core.pipeline import CaptureOptions, capture_video
    from core.synth import generate

    generate(5152, 24, (384, 384), out_dir=tmp_path / "clip", albedo_size=512, model=face_model)
    video = tmp_path / "clip" / "video.mp4"
    capture = capture_video(video, CaptureOptions(photometric=True))
    generic = generic_personal_model(face_model, capture.identity)
    landmarks_only, _ = retrack(capture, generic, face_model)
    refined, _ = retrack(capture, generic, face_model, video=video)
    # With no corrections to the model, the photometric re-track is the capture's own kind of fit again.
    gap = lambda c: float(np.abs(c.weights - capture.weights)[capture.tracked].mean())  # noqa: E731
    assert gap(refined) < 0.5 * gap(landmarks_only), (gap(refined), gap(landmarks_only))
    # personalize decodes the crops once for all its re-tracks: the same fit as decoding them each time
    from core.modeling.build import refinement_crops

    with refinement_crops(capture, video) as crops:
        shared, _ = retrack(capture, generic, face_model, crops=crops)
    np.testing.assert_array_equal(shared.weights, refined.weights)
    assert refinement_crops(landmarks_only_capture(capture), video) is None
    with pytest.raises(ModelingError):
        retrack(capture, generic, face_model, video=tmp_path / "missing.mp4")


def landmarks_only_capture(capture):
    meta = dict(capture.metadata, options=dict(capture.metadata["options"], photometric=False))
    return replace(capture, metadata=meta)


def test_shapes_then_albedo_is_the_whole_model(small_clip, make_capture, face_model):
    from core.modeling import fit_personal_albedo, fit_personal_shapes

    video, truth = small_clip
    cap = make_capture(truth)
    whole = build_personal_model(video, cap, _fast(), model=face_model)
    shapes, vertex_albedo = fit_personal_shapes(video, cap, _fast(), model=face_model)
    assert shapes.albedo.shape == (1, 1, 3)  # a placeholder until the albedo step
    np.testing.assert_array_equal(shapes.expression_corrections, whole.expression_corrections)
    person = fit_personal_albedo(video, shapes, cap, _fast(), model=face_model, vertex_albedo=vertex_albedo)
    np.testing.assert_array_equal(person.albedo, whole.albedo)
    assert person.dynamic_albedo_names == whole.dynamic_albedo_names


def test_personalize_unwraps_the_albedo_once(small_clip, make_capture, face_model, monkeypatch):
    from core.modeling import build

    video, truth = small_clip
    passes = []
    real = build._albedo_pass

    def counted(*args, **kwargs):
        passes.append(args[3])  # the capture it unwraps
        return real(*args, **kwargs)

    monkeypatch.setattr(build, "_albedo_pass", counted)
    # A capture with every weight at zero fits its landmarks badly, so re-tracking improves it and the loop
    # models the person again from the better capture.
    given = replace(make_capture(truth), weights=np.zeros_like(truth["weights"]))
    person, capture = build.personalize(video, given, _fast(), model=face_model, max_rounds=2)
    rms = person.metadata["tracking_rms_px"]
    assert len(rms) == 3 and rms[1] < rms[0]
    # two rounds of shapes, yet the clip unwrapped once: from the capture returned (the re-tracked one)
    assert len(passes) == 1 and passes[0] is capture and capture is not given
    assert person.albedo.shape == (1024, 1024, 3)


def test_personalize_without_personal_shapes_keeps_the_generic_ones(small_clip, make_capture, face_model):
    from core.modeling import personalize

    video, truth = small_clip
    given = make_capture(truth)
    opt = _fast()
    opt.personal_shapes = False
    person, capture = personalize(video, given, opt, model=face_model)
    # the generic blendshapes, nothing to re-track with (the capture comes back as given), the person's skin
    assert not person.expression_corrections.any() and not person.neutral_correction.any()
    assert person.metadata["fitted_shapes"] == [] and person.metadata["tracking_rms_px"] == []
    assert capture is given
    assert person.albedo.shape == (1024, 1024, 3) and 0.1 < person.albedo[300:500, 250:520].mean() < 0.95


def test_modeling_runs_on_one_blas_thread(small_clip, make_capture, face_model, monkeypatch):
    # core.threads: OpenBLAS's idle workers spin, taking the core that decodes the video (bench/model.py: half
    # the CPU time went there)
    from core.modeling import build
    from core.threads import blas_threads

    video, truth = small_clip
    seen = []
    real = build._open_clip  # where the shape fit and the albedo pass start

    def spy(*args, **kwargs):
        seen.append(blas_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(build, "_open_clip", spy)
    build.personalize(video, make_capture(truth), _fast(), model=face_model, max_rounds=1)
    assert len(seen) >= 2 and set(seen) == {1}
    assert blas_threads() > 1  # restored afterwards


def test_keyframes_keep_the_face_as_bytes(small_clip, make_capture):
    # thirty full frames in float were 3 GB at 4K: a keyframe keeps the pixels around the face, as uint8
    import cv2

    from core.job import quiet_job
    from core.modeling.build import _read_frames
    from core.modeling.shape import Keyframe
    from core.video import open_video

    video, truth = small_clip
    cap = make_capture(truth)
    reader = open_video(video)
    keys = np.array([3, 20])
    got = _read_frames(reader, cap, keys, quiet_job())
    frames = {f.index: f.image for f in open_video(video)}
    for k in keys:
        image, (x0, y0) = got[k]
        assert image.dtype == np.uint8 and image.size <= frames[k].size
        h, w = image.shape[:2]
        lo, hi = cap.landmarks[k].min(0), cap.landmarks[k].max(0)
        assert x0 <= lo[0] and y0 <= lo[1] and hi[0] < x0 + w and hi[1] < y0 + h  # the face inside, with margin
        whole = cv2.cvtColor(frames[k], cv2.COLOR_BGR2RGB)
        kf = Keyframe(int(k), image, np.zeros(53), np.eye(3), np.zeros(3), origin=(x0, y0))
        xs, ys = np.array([x0, x0 + w - 1, int(lo[0])]), np.array([y0, y0 + h - 1, int(hi[1])])
        np.testing.assert_array_equal(kf.colours(xs, ys), whole[ys, xs] / 255.0)  # frame pixels, not the crop's
        assert kf.covers(xs, ys).all() and not kf.covers(np.array([x0 - 1]), np.array([y0])).any()
        patch, corner = kf.region(x0 - 5, y0 + 2, x0 + 10, y0 + 12)
        assert corner == (x0, y0 + 2) and patch.shape == (10, 10, 3)  # cut to what was kept
        np.testing.assert_allclose(patch, whole[y0 + 2:y0 + 12, x0:x0 + 10] / 255.0, atol=1e-7)
    # a face a quarter of the frame's size: a crop around it, not the frame
    lm = np.asarray(cap.landmarks)
    small = (lm - lm.mean(1, keepdims=True)) * 0.25 + lm.mean(1, keepdims=True)
    image, _ = _read_frames(reader, replace(cap, landmarks=small.astype(np.float32)), keys[:1], quiet_job())[3]
    assert image.size < 0.6 * frames[3].size
    # without landmarks, the whole frame
    nolm = _read_frames(reader, replace(cap, landmarks=None), keys[:1], quiet_job())
    assert nolm[3][0].shape == frames[3].shape and nolm[3][1] == (0, 0)


def test_keyframe_lighting_sees_the_same_vertices_on_a_4k_frame(face_model, monkeypatch):
    # above 1080p the keyframes' z-buffer is scaled down (a 4K one took ~0.2 s a frame): the same head seen
    # by a 1080p and a 4K camera of the same view must count the same vertices as visible
    from core.modeling import build
    from core.modeling.shape import Keyframe
    from core.render.camera import Camera, euler_to_matrix

    used, sizes = [], []
    real_fit = build.fit_lighting

    def fit(colours, normals, albedo):
        used.append(len(colours))
        return real_fit(colours, normals, albedo)

    monkeypatch.setattr(build, "fit_lighting", fit)
    raster_module = sys.modules["core.render.rasterize"]  # the package's `rasterize` is the function
    real_raster = raster_module.rasterize

    def raster(points, tris, width, height, **kwargs):
        sizes.append((width, height))
        return real_raster(points, tris, width, height, **kwargs)

    monkeypatch.setattr(raster_module, "rasterize", raster)
    light = np.zeros((9, 3))
    light[0] = 3.0
    for k in (1, 2):
        camera = Camera(1920 * k, 1080 * k, 1500.0 * k)
        kf = Keyframe(0, np.full((1080 * k, 1920 * k, 3), 128, np.uint8), np.zeros(53),
                      euler_to_matrix(np.array([5.0, 25.0, 0.0])), np.array([0.0, 0.0, -0.7]), light.copy())
        build._refine_keyframe_lighting(face_model, [kf], camera, np.zeros(100), rounds=1)
    assert sizes == [(1920, 1080), (1920, 1080)]
    assert used[0] > 2000 and abs(used[1] - used[0]) <= 0.01 * used[0]
