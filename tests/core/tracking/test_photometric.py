"""The photometric refinement: on a synthetic clip it brings weights and gaze closer to the truth than the
landmark fit alone, it leaves the fit's bookkeeping intact, and it reads the clip once."""

from __future__ import annotations

import numpy as np
import pytest

from core.pipeline import CaptureOptions, capture_frames, capture_video
from core.synth import generate
from core.video import open_video

FRAMES = 45
SIZE = (384, 384)


@pytest.fixture(scope="module")
def synth(tmp_path_factory, face_model):
    out = tmp_path_factory.mktemp("photometric") / "clip"
    truth = generate(5151, FRAMES, SIZE, out_dir=out, albedo_size=512, model=face_model)
    return out / "video.mp4", truth


@pytest.fixture(scope="module")
def captures(synth):
    video, _ = synth
    plain = capture_video(video, CaptureOptions())
    refined = capture_video(video, CaptureOptions(photometric=True, iris_gaze=False))
    iris = capture_video(video, CaptureOptions(photometric=True))  # the iris gaze is on with photometric
    return plain, refined, iris


def _errors(capture, truth) -> tuple[float, float]:
    index = [list(truth["names"]).index(n) for n in capture.names]
    w_true = truth["weights"][:, index]
    moving = w_true.std(0) > 0.05
    t = capture.tracked
    weight = float(np.abs(capture.weights - w_true)[t][:, moving].mean())
    gaze = float(np.abs(capture.gaze - truth["gaze"])[t].mean())
    return weight, gaze


@pytest.mark.slow  # renders a clip, runs MediaPipe and the refinement (~30 s for the module)
def test_refinement_is_closer_to_the_truth(synth, captures):
    _, truth = synth
    plain, refined, iris = captures
    assert refined.tracked.all() and plain.tracked.all()
    w_plain, g_plain = _errors(plain, truth)
    w_refined, g_refined = _errors(refined, truth)
    w_iris, g_iris = _errors(iris, truth)
    assert w_refined < w_plain, (w_refined, w_plain)
    assert w_iris < w_plain and g_iris < g_plain, (w_iris, w_plain, g_iris, g_plain)
    assert "photometric_s" in refined.metadata["timing"] and "photometric_s" not in plain.metadata["timing"]
    assert refined.metadata["options"]["photometric"] is True


@pytest.mark.slow  # renders a clip, runs MediaPipe and the refinement (~30 s for the module)
def test_refinement_keeps_the_result_whole(captures):
    plain, refined, _ = captures
    assert refined.weights.shape == plain.weights.shape and refined.names == plain.names
    assert np.isfinite(refined.weights).all() and (refined.weights >= 0).all() and (refined.weights <= 1).all()
    assert np.isfinite(refined.rotation).all() and np.isfinite(refined.gaze).all()
    # The refinement corrects the fit, it does not replace it: the head stays where the landmarks put it.
    assert np.abs(refined.rotation - plain.rotation).max() < 5.0


@pytest.mark.slow  # one more photometric capture of the module's clip (~5 s)
def test_a_capture_repeats_exactly(synth, captures):
    # The same video gives the same capture: the refinement once read landmark points from two threads at
    # once and now and then got another frame's.
    video, _ = synth
    again = capture_video(video, CaptureOptions(photometric=True))
    first = captures[2]
    assert np.array_equal(again.weights, first.weights) and np.array_equal(again.rotation, first.rotation)
    assert np.array_equal(again.gaze, first.gaze)


@pytest.mark.slow  # a photometric capture of the module's clip (~5 s)
def test_the_clip_is_decoded_once(synth):
    video, _ = synth
    reader = open_video(video)

    class Once:  # a frame source that cannot be decoded a second time (a pipe, a camera)
        width, height, fps, frame_count = reader.width, reader.height, reader.fps, reader.frame_count
        passes = 0

        def __iter__(self):
            Once.passes += 1
            assert Once.passes == 1, "the clip was decoded a second time"
            return iter(reader)

    capture = capture_frames(Once(), CaptureOptions(photometric=True))
    # the refinement reads the face crops the landmark pass kept, the appearance too
    assert Once.passes == 1 and capture.tracked.all()
    assert capture.metadata["timing"]["photometric_frames"] == len(range(0, FRAMES, 5)) + 1  # every 5th, the last


def test_command_line_modes_reach_the_capture(synth, tmp_path):
    from core.cli import main as cli_main
    from core.io.capture import Capture

    video, _ = synth
    out = tmp_path / "out.npz"
    assert cli_main(["capture", str(video), "-o", str(out), "--photometric", "--no-iris-gaze",
                     "--photometric-stride", "2", "--quiet"]) == 0
    options = Capture.load(out).metadata["options"]
    assert options["photometric"] is True and options["iris_gaze"] is False and options["photometric_stride"] == 2
    assert cli_main(["capture", str(video), "-o", str(out), "--photometric-stride", "0", "--quiet"]) != 0


@pytest.mark.slow  # writes a clip with a gap and captures it with the refinement (~8 s)
def test_a_face_that_leaves_and_comes_back(synth, tmp_path):
    import cv2

    video, _ = synth
    reader = cv2.VideoCapture(str(video))
    frames = [reader.read()[1] for _ in range(20)]
    frames = frames[:8] + [np.zeros_like(frames[0])] * 6 + frames[8:]  # six frames with no face
    path = tmp_path / "gap.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, frames[0].shape[1::-1])
    for f in frames:
        writer.write(f)
    writer.release()
    capture = capture_video(path, CaptureOptions(photometric=True))
    assert capture.n_frames == 26
    assert not capture.tracked[8:14].any() and capture.tracked[:8].all() and capture.tracked[14:].all()
    assert np.isfinite(capture.weights).all() and np.isfinite(capture.gaze).all()


@pytest.mark.slow  # two more photometric captures of the module's clip (~10 s)
def test_the_lanes_are_the_single_chain_cut_in_two(synth, monkeypatch):
    # Each lane is the one chain's refinement of its half: the first half comes out exactly as a single
    # chain gives it; the second starts a chain of its own, like a tracking gap, and ends close to it.
    import core.tracking.photometric as photometric

    video, _ = synth
    raw = CaptureOptions(photometric=True, smoothing=0.0)
    two = capture_video(video, raw)
    monkeypatch.setattr(photometric, "LANES", 1)
    one = capture_video(video, raw)
    refined = list(range(0, FRAMES, 5)) + [FRAMES - 1]
    first = refined[len(refined) // 2 - 1]  # the first lane's last refined frame (np.array_split)
    assert np.array_equal(two.weights[:first + 1], one.weights[:first + 1])
    assert np.array_equal(two.rotation[:first + 1], one.rotation[:first + 1])
    assert not np.array_equal(two.weights, one.weights)
    assert np.abs(two.weights - one.weights).mean() < 0.02


@pytest.mark.slow  # a photometric capture that fails in its refinement (~4 s)
def test_an_error_in_a_lane_is_the_captures_and_no_lane_is_left(synth, monkeypatch):
    import threading

    import core.tracking.photometric as photometric

    calls = []
    refine_frame = photometric._refine_frame

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("a lane failed")
        return refine_frame(*args, **kwargs)

    monkeypatch.setattr(photometric, "_refine_frame", failing)
    video, _ = synth
    with pytest.raises(Exception, match="a lane failed"):
        capture_video(video, CaptureOptions(photometric=True))
    assert len(calls) < len(range(0, FRAMES, 5)) + 1  # the other lane stopped early too
    assert not [t for t in threading.enumerate() if t.name.startswith("likeness-photometric")]
