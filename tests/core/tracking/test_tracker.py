"""track_clip on a clip of exact projections: accuracy, untracked frames held, errors for bad input."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from core.io.framefile import FrameFile
from core.render.camera import euler_to_matrix
from core.tracking import PointLayout, TrackingError, TrackingOptions, track_clip, tracker

SIZE = 512
FOCAL = 0.5 * SIZE / np.tan(np.radians(45) / 2)


@pytest.fixture(scope="module")
def clip(stand_in):
    rng = np.random.default_rng(11)
    n = 90
    s = np.linspace(0, 1, n)
    rot = np.stack([8 * np.sin(2 * np.pi * s), 20 * np.sin(2 * np.pi * s + 1), 4 * np.cos(2 * np.pi * s)], 1)
    w = np.zeros((n, 53))
    for k in rng.choice(53, 10, replace=False):
        w[:, k] = np.clip(0.9 * np.sin(2 * np.pi * s * rng.uniform(1, 3) + rng.uniform(0, 6)), 0, 1)
    identity = rng.normal(size=100)
    t = np.array([0.01, -0.01, -0.55])
    pts = []
    for i in range(n):
        v = stand_in.points(identity, w[i]) @ euler_to_matrix(rot[i]).T + t
        pts.append(np.stack([(SIZE - 1) / 2 + FOCAL * v[:, 0] / -v[:, 2],
                             (SIZE - 1) / 2 - FOCAL * v[:, 1] / -v[:, 2]], axis=1))
    pts = np.array(pts) + rng.normal(scale=0.5, size=(n, 478, 2))
    layout = PointLayout("stand-in", stand_in, np.ones(478), (36, 45), None, np.arange(68))
    return pts, w, rot, layout


def test_clip_is_fitted_and_gaps_are_held(clip, face_model):
    pts, w, rot, layout = clip
    valid = np.ones(len(pts), bool)
    valid[40:50] = False  # the face left the frame and came back
    res = track_clip(pts, valid, (SIZE, SIZE), layout, face_model,
                     options=TrackingOptions(smoothing=0.0, quality="fast", noise_factor=1.0))  # white noise
    assert np.array_equal(res.tracked, valid)
    assert np.allclose(res.weights[40:50], res.weights[39])  # held from the last good frame
    assert np.allclose(res.rotation[40:50], res.rotation[39])
    assert (res.confidence[40:50] == 0).all() and (res.confidence[valid] > 0.5).all()
    good = valid
    assert np.abs(res.rotation - rot)[good].mean() < 1.0
    assert np.abs(res.weights - w)[good][:, w.std(0) > 0.05].mean() < 0.08
    assert abs(res.focal - FOCAL) / FOCAL < 0.35
    assert res.weights.min() >= 0 and res.weights.max() <= 1
    assert res.gaze is None  # this layout has no iris points


def test_smoothing_and_neutral_frame(clip, face_model):
    pts, w, rot, layout = clip
    valid = np.ones(len(pts), bool)
    opts = TrackingOptions(smoothing=0.0, quality="fast", focal=FOCAL)
    raw = track_clip(pts, valid, (SIZE, SIZE), layout, face_model, options=opts)
    assert np.allclose(raw.weights, raw.raw_weights, atol=1e-6)  # 0 = raw
    smooth = track_clip(pts, valid, (SIZE, SIZE), layout, face_model,
                        options=TrackingOptions(smoothing=1.0, quality="fast", focal=FOCAL))
    jitter = lambda x: np.abs(np.diff(x, 2, axis=0)).mean()  # noqa: E731
    assert jitter(smooth.weights) < jitter(raw.weights)
    neutral = track_clip(pts, valid, (SIZE, SIZE), layout, face_model,
                         options=TrackingOptions(smoothing=0.0, quality="fast", focal=FOCAL, neutral_frame=5))
    assert np.allclose(neutral.weights[5], 0, atol=1e-6)


def test_bad_input(clip, face_model):
    pts, _, _, layout = clip
    with pytest.raises(TrackingError, match="no face found in 90 frames"):
        track_clip(pts, np.zeros(len(pts), bool), (SIZE, SIZE), layout, face_model)
    with pytest.raises(TrackingError, match="do not match"):
        track_clip(pts[:, :68], np.ones(len(pts), bool), (SIZE, SIZE), layout, face_model)
    with pytest.raises(TrackingError, match="unknown quality"):
        track_clip(pts, np.ones(len(pts), bool), (SIZE, SIZE), layout, face_model,
                   options=TrackingOptions(quality="best"))
    valid = np.ones(len(pts), bool)
    valid[3] = False
    with pytest.raises(TrackingError, match="neutral frame 3 has no tracked face"):
        track_clip(pts, valid, (SIZE, SIZE), layout, face_model,
                   options=TrackingOptions(quality="fast", focal=FOCAL, neutral_frame=3))


def test_one_frame(clip, face_model):
    pts, w, rot, layout = clip
    res = track_clip(pts[:1], np.ones(1, bool), (SIZE, SIZE), layout, face_model,
                     options=TrackingOptions(quality="fast"))
    assert res.tracked.all() and res.weights.shape == (1, 53)
    assert np.abs(res.rotation[0] - rot[0]).max() < 3.0


def _spilled(pts: np.ndarray, cls=FrameFile) -> FrameFile:
    f = cls((pts.shape[1], 2), np.float32)
    for p in pts:
        f.append(p)
    return f


def test_landmarks_are_read_a_block_at_a_time(clip, face_model, monkeypatch):
    """A long clip's points stay on disk (core.io.framefile): never read whole, the same fit as from an array."""
    pts, _, _, layout = clip
    pts = pts.astype(np.float32)
    reads = []

    class Spy(FrameFile):
        def _read(self, start, stop):
            reads.append(stop - start)
            return super()._read(start, stop)

        def __array__(self, *args, **kwargs):
            raise AssertionError("track_clip read the whole clip")

    monkeypatch.setattr(tracker, "BLOCK", 32)
    valid = np.ones(len(pts), bool)
    valid[40:50] = False
    opts = TrackingOptions(quality="fast", focal=FOCAL)
    with _spilled(pts, Spy) as f:
        got = track_clip(f, valid, (SIZE, SIZE), layout, face_model, options=opts)
    want = track_clip(pts, valid, (SIZE, SIZE), layout, face_model, options=opts)
    assert max(reads) <= 32
    for key in ("weights", "raw_weights", "translation", "confidence", "tracked"):
        assert np.array_equal(getattr(got, key), getattr(want, key)), key
    # The rotation to a billionth of a degree: once, in a CI run on a loaded machine, the two fits' angles
    # differed in their last bits (weights and translation equal to the bit); not reproduced in 20 runs since.
    np.testing.assert_allclose(got.rotation, want.rotation, rtol=0, atol=1e-9)


def test_the_frames_are_fitted_on_one_blas_thread(clip, face_model, monkeypatch):
    # core.threads: a frame's products are too small for a second BLAS thread, which spins between them; the
    # keyframes' larger joint system keeps the caller's threads
    from core.threads import blas_threads

    seen = {"frames": set(), "keyframes": set()}

    def spy(stage, real):
        def call(*args, **kwargs):
            seen[stage].add(blas_threads())
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(tracker, "initial_pose", spy("frames", tracker.initial_pose))  # the loop's first frame
    monkeypatch.setattr(tracker, "fit_keyframes", spy("keyframes", tracker.fit_keyframes))
    pts, _, _, layout = clip
    track_clip(pts[:10], np.ones(10, bool), (SIZE, SIZE), layout, face_model,
               options=TrackingOptions(quality="fast", focal=FOCAL))
    before = blas_threads()
    assert before > 1 and seen == {"frames": {1}, "keyframes": {before}}


@pytest.mark.slow
def test_memory_per_frame_is_the_result(clip, face_model, monkeypatch):
    """track_clip's memory grows with the clip by about its result, not by whole-clip copies of the points
    (3.8 KB a frame as float32, 7.6 as float64) nor by spare copies of the (N, 53) float64 weights."""
    pts, _, _, layout = clip
    opts = TrackingOptions(quality="fast", focal=FOCAL)
    monkeypatch.setattr(tracker, "BLOCK", 64)  # both clips span many blocks: one block's copy is a constant

    class Probe:  # marks the end of the keyframe stage, where the frame-by-frame work begins
        def step(self, stage, done, total, message=""):
            if stage == "identity" and done == total:
                self.held = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()

    held, peak = [], []
    for reps in (2, 2, 8):  # the first run warms caches (numba, the model's arrays) and is not counted
        with _spilled(np.tile(pts, (reps, 1, 1)).astype(np.float32)) as f:
            probe = Probe()
            tracemalloc.start()
            try:
                start = tracemalloc.get_traced_memory()[0]
                track_clip(f, np.ones(len(f), bool), (SIZE, SIZE), layout, face_model, options=opts, job=probe)
                held.append(probe.held - start)
                peak.append(tracemalloc.get_traced_memory()[1] - probe.held)
            finally:
                tracemalloc.stop()
    frames = 6 * len(pts)
    # Before the frame loop: a few numbers a frame (valid, eye distance, lid openings), not the points.
    assert (held[2] - held[1]) / frames < 300, f"{(held[2] - held[1]) / frames:.0f} bytes a frame"
    # The loop and after: the per-frame fit (~0.6 KB) and the smoothing's temporaries (~0.5 KB).
    assert (peak[2] - peak[1]) / frames < 1300, f"{(peak[2] - peak[1]) / frames:.0f} bytes a frame"
