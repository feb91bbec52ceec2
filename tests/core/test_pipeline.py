"""capture_video end to end on a short synthetic clip, and every kind of bad input it must survive."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.io.capture import Capture
from core.job import Cancelled, Job
from core.pipeline import CaptureError, CaptureOptions, capture_video, write_overlays
from core.synth import generate

ROOT = Path(__file__).resolve().parents[2]
SIZE = (256, 256)
FRAMES = 20


@pytest.fixture(scope="module")
def synth(tmp_path_factory, face_model):
    out = tmp_path_factory.mktemp("pipeline") / "clip"
    truth = generate(4242, FRAMES, SIZE, out_dir=out, albedo_size=256, model=face_model)
    return out / "video.mp4", truth


def _frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            return frames
        frames.append(f)


def _write(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    return path


FAST = CaptureOptions(quality="fast", lighting=False)


def _temp_files_open() -> int:
    """Open descriptors of deleted files in the temporary folder (a FrameFile's), on Linux; 0 elsewhere."""
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir() if fds.is_dir() else ():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            count += target.startswith(tempfile.gettempdir()) and target.endswith("(deleted)")
    return count


def test_synthetic_clip_is_captured(synth, tmp_path):
    video, truth = synth
    progress = []
    cap = capture_video(video, CaptureOptions(quality="balanced", smoothing=0.3), Job(on_progress=progress.append))
    assert cap.n_frames == FRAMES and cap.tracked.all()
    assert cap.weights.shape == (FRAMES, 53) and cap.weights.min() >= 0 and cap.weights.max() <= 1
    # Loose: 20 small frames (the accuracy figures come from bench/accuracy_synth.py).
    assert np.abs(cap.weights - truth["weights"]).mean() < 0.1
    assert np.abs(cap.rotation - truth["rotation"]).mean() < 4.0
    assert cap.gaze.shape == (FRAMES, 2, 2) and cap.lighting.shape == (FRAMES, 9, 3)
    assert np.isfinite(cap.lighting).all() and (cap.lighting[:, 0] > 0).all()  # some light on every frame
    assert cap.landmarks.shape == (FRAMES, 478, 2)
    # On disk (a temporary file) rather than in memory: a long clip's points would be megabytes a minute.
    assert isinstance(cap.landmarks, np.memmap) and not cap.landmarks.flags.writeable
    assert np.allclose(cap.timestamps, truth["timestamps"], atol=1e-3)
    meta = cap.metadata
    assert meta["backend"] == "mediapipe" and "mediapipe" in meta["versions"] and "opencv" in meta["versions"]
    assert meta["options"]["quality"] == "balanced"
    # What the landmark pass keeps for the fit is timed apart from the detector (bench/capture.py counts it
    # as fitting): a small part beside it.
    timing = meta["timing"]
    assert 0 < timing["keep_s"] < 0.5 * timing["landmarks_s"]
    stages = {p.stage for p in progress}
    assert {"landmarks", "identity", "fitting", "lighting"} <= stages
    assert progress[-1].fraction == pytest.approx(1.0)
    saved = Capture.load(cap.save(tmp_path / "c.npz"))
    assert np.array_equal(saved.weights, cap.weights) and saved.metadata["backend"] == "mediapipe"
    assert np.array_equal(saved.landmarks, cap.landmarks, equal_nan=True) and saved.landmarks.dtype == np.float32
    pngs = write_overlays(video, cap, tmp_path / "look", count=2, crop=False)
    assert len(pngs) == 2 and cv2.imread(str(pngs[0])).shape == (SIZE[1], SIZE[0], 3)
    crop = cv2.imread(str(write_overlays(video, cap, tmp_path / "crop", frames=[3])[0]))
    assert crop.shape[0] >= 600 and crop.shape[0] == crop.shape[1]


def test_frame_range_stride_and_neutral(synth):
    video, _ = synth
    cap = capture_video(video, CaptureOptions(start=2, stop=14, stride=3, quality="fast", lighting=False,
                                              neutral_frame=5))
    assert cap.frame_indices.tolist() == [2, 5, 8, 11]
    assert np.allclose(cap.weights[1], 0, atol=1e-6)  # relative to the neutral frame
    assert cap.fps == pytest.approx(10.0)
    with pytest.raises(CaptureError, match="neutral frame 6 is not among"):
        capture_video(video, CaptureOptions(start=2, stop=14, stride=3, quality="fast", neutral_frame=6))


def test_face_leaving_and_coming_back(synth, tmp_path):
    video, _ = synth
    frames = _frames(video)
    blank = np.full_like(frames[0], 90)
    gap = _write(tmp_path / "gap.mp4", frames[:8] + [blank] * 5 + frames[8:])
    cap = capture_video(gap, FAST)
    expected = np.r_[np.ones(8, bool), np.zeros(5, bool), np.ones(FRAMES - 8, bool)]
    assert np.array_equal(cap.tracked, expected)
    assert np.allclose(cap.weights[8:13], cap.weights[7]) and (cap.confidence[8:13] == 0).all()


def test_no_face_at_all(tmp_path):
    blank = _write(tmp_path / "blank.mp4", [np.full((120, 160, 3), 128, np.uint8)] * 6)
    with pytest.raises(CaptureError, match="no face found in 6 frames"):
        capture_video(blank, FAST)


def test_one_frame_and_non_ascii_path(synth, tmp_path):
    video, _ = synth
    one = _write(tmp_path / "one.mp4", _frames(video)[:1])
    cap = capture_video(one, FAST)
    assert cap.n_frames == 1 and cap.tracked.all()
    cap = capture_video(one, CaptureOptions(photometric=True))  # one refined frame, nothing to interpolate
    assert cap.n_frames == 1 and cap.tracked.all() and np.isfinite(cap.weights).all()
    folder = tmp_path / "vidéo 顔"
    folder.mkdir()
    odd = folder / "été.mp4"
    shutil.copy(video, odd)
    cap = capture_video(odd, CaptureOptions(quality="fast", lighting=False, stop=3))
    assert cap.n_frames == 3 and cap.tracked.all() and cap.metadata["source_video"] == str(odd)


def test_bad_files(tmp_path):
    with pytest.raises(CaptureError, match="not found"):
        capture_video(tmp_path / "missing.mp4", FAST)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(CaptureError, match="empty"):
        capture_video(empty, FAST)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(CaptureError):
        capture_video(corrupt, FAST)
    with pytest.raises(CaptureError, match="unknown quality"):
        capture_video(tmp_path / "missing.mp4", CaptureOptions(quality="best"))
    tiny = _write(tmp_path / "tiny.mp4", [np.zeros((64, 64, 3), np.uint8)])
    with pytest.raises(CaptureError, match="backend"):
        capture_video(tiny, CaptureOptions(backend="nope"))


@pytest.mark.parametrize("stage, after, options", [
    ("landmarks", 3, CaptureOptions(quality="fast", lighting=True)),
    ("photometric", 2, CaptureOptions(photometric=True)),  # the second refined frame
])
def test_cancel(synth, stage, after, options):
    video, _ = synth
    job = Job()

    def cancel_soon(p):
        if p.stage == stage and p.done >= after:
            job.cancel()

    job.on_progress = cancel_soon
    before = _temp_files_open()
    with pytest.raises(Cancelled):
        capture_video(video, options, job)
    assert _temp_files_open() == before  # the temporary landmark and colour files are gone
    assert not [t for t in threading.enumerate() if t.name.startswith("likeness-photometric")]


@pytest.mark.parametrize("target", ["core.io.cropfile.CropFile.add", "core.io.framefile.FrameFile._flush"])
def test_a_full_disk_is_a_clear_error(synth, monkeypatch, target):
    from core.io.framefile import TemporaryFileError

    def full(*args, **kwargs):
        raise TemporaryFileError("could not write a temporary file: [Errno 28] No space left on device")

    video, _ = synth
    monkeypatch.setattr(target, full)
    before = _temp_files_open()
    with pytest.raises(CaptureError, match="No space left on device.*is the disk full"):
        capture_video(video, CaptureOptions(photometric=True, stop=12))
    assert _temp_files_open() == before


def test_cli_missing_file_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "core", "capture", str(tmp_path / "nope.mp4"), "-o",
                        str(tmp_path / "o.npz")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines == [f"likeness: video file not found: {tmp_path / 'nope.mp4'}"]


@pytest.mark.slow
def test_cli_writes_capture_csv_and_overlays(synth, tmp_path):
    video, _ = synth
    out = tmp_path / "cap.npz"
    r = subprocess.run([sys.executable, "-m", "core", "capture", str(video), "-o", str(out), "--quality", "fast",
                        "--csv", str(tmp_path / "cap.csv"), "--overlay", str(tmp_path / "look")],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    cap = Capture.load(out)
    assert cap.n_frames == FRAMES and cap.tracked.all()
    assert (tmp_path / "cap.csv").read_text().startswith("Timecode")
    assert len(list((tmp_path / "look").glob("*.png"))) >= 1


@pytest.mark.parametrize("kind", ["no cache", "no correspondence"])
def test_a_missing_set_up_is_said_before_the_video_is_read(kind, synth, tmp_path, monkeypatch,
                                                          cache_without_correspondence):
    """No face-model cache, or one without the MediaPipe correspondence: a CaptureError that says to set up,
    before the landmark pass (a long clip would otherwise run to its end first)."""
    monkeypatch.setenv("LIKENESS_CACHE_DIR", str(tmp_path / "empty" if kind == "no cache"
                                                 else cache_without_correspondence))
    job = Job()
    with pytest.raises(CaptureError, match="core setup"):
        capture_video(synth[0], CaptureOptions(), job)
    assert job.progress.stage != "landmarks"  # not one frame was looked at


def test_cli_says_the_set_up_is_missing(tmp_path, synth):
    env = dict(os.environ, LIKENESS_CACHE_DIR=str(tmp_path / "empty"))
    r = subprocess.run([sys.executable, "-m", "core", "capture", str(synth[0]), "-o", str(tmp_path / "o.npz"),
                        "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "core setup" in r.stderr and "Traceback" not in r.stderr
