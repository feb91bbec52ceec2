"""The MediaPipe backend on real frames: 478 points on the face, None without a face, detector when needed."""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.landmarks import FaceLandmarks, LandmarkBackendError, get_backend

CLIPS = Path(__file__).resolve().parents[3] / ".." / "shared" / "media" / "clips"
S32 = CLIPS / "liveportrait_source_s32.mp4"


def read_frames(path: Path, n: int) -> list[np.ndarray]:
    if not path.exists():
        pytest.skip(f"shared clip {path.name} is absent")
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < n:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    return frames


@pytest.fixture(scope="module")
def frames():
    return read_frames(S32, 40)


@pytest.fixture
def backend():
    b = get_backend("mediapipe")
    yield b
    b.close()


def test_still_frame_points_inside_face_box(frames, backend):
    image = frames[0]
    lm = backend.detect(image)
    assert isinstance(lm, FaceLandmarks)
    assert lm.points.shape == (478, 2) and lm.points.dtype == np.float32
    assert lm.z.shape == (478,)
    assert lm.detected and lm.confidence > 0.9
    # The detector's own box (forehead to chin) should hold the mesh; allow a margin for the brow/oval.
    (x0, y0, x1, y1), _ = backend._detect_faces(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))[0]
    mx, my = 0.2 * (x1 - x0), 0.3 * (y1 - y0)
    inside = ((lm.points[:, 0] > x0 - mx) & (lm.points[:, 0] < x1 + mx)
              & (lm.points[:, 1] > y0 - my) & (lm.points[:, 1] < y1 + my))
    assert inside.mean() > 0.98
    # The iris centres (468 and 473) sit between the eye corners (33/133 and 362/263).
    for iris, a, b in ((468, 33, 133), (473, 362, 263)):
        lo, hi = sorted((lm.points[a, 0], lm.points[b, 0]))
        assert lo < lm.points[iris, 0] < hi


def test_blank_image_is_none(backend):
    assert backend.detect(np.zeros((480, 640, 3), np.uint8)) is None
    assert backend.detect(np.full((720, 1280, 3), 128, np.uint8)) is None


def test_bad_image_is_a_clear_error(backend):
    with pytest.raises(LandmarkBackendError, match="BGR uint8"):
        backend.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(LandmarkBackendError, match="unknown landmark backend"):
        get_backend("dlib")


def test_clip_detector_runs_on_first_frame_only(frames, backend):
    results = list(backend.track(frames))
    assert len(results) == len(frames)
    assert sum(r is not None for r in results) >= 0.95 * len(frames)
    assert backend.detector_calls == 1
    assert results[0].detected and not any(r.detected for r in results[1:] if r is not None)
    # Tracking follows the face smoothly: the box centre moves little between frames of a calm clip.
    centres = np.array([[(r.box[0] + r.box[2]) / 2, (r.box[1] + r.box[3]) / 2] for r in results if r])
    assert np.abs(np.diff(centres, axis=0)).max() < 20


def test_face_leaves_and_comes_back(frames, backend):
    clip = [f if not 10 <= i <= 20 else np.zeros_like(f) for i, f in enumerate(frames[:35])]
    results = list(backend.track(clip))
    assert all(results[i] is None for i in range(10, 21))
    assert all(results[i] is not None for i in range(0, 10))
    assert all(results[i] is not None for i in range(21, 35))
    assert results[21].detected  # the detector found the face again
    assert not any(results[i].detected for i in range(22, 35))
    # once on frame 0, once per blank frame (11) and once more on frame 21 where the face came back
    assert backend.detector_calls == 1 + 11 + 1


def test_several_faces_follow_the_chosen_one(frames):
    # Two copies of the face side by side, the right one larger: face_index 0 follows it, 1 the other.
    def pair(image):
        crop = image[200:620, 400:760]  # the face with margins, 360x420
        small = cv2.resize(crop, None, fx=0.6, fy=0.6)
        canvas = np.full((720, 1280, 3), 90, np.uint8)
        canvas[150:570, 800:1160] = crop
        canvas[250:250 + small.shape[0], 150:150 + small.shape[1]] = small
        return canvas

    clip = [pair(f) for f in frames[:15]]
    for index, side in ((0, "right"), (1, "left")):
        with get_backend("mediapipe", face_index=index) as b:
            results = list(b.track(clip))
        assert all(r is not None for r in results) and b.detector_calls == 1
        xs = np.array([r.points[:, 0].mean() for r in results])
        assert (xs > 640).all() if side == "right" else (xs < 640).all()


def _run(code: str) -> str:
    """stderr of a fresh interpreter running code in the repository root (file descriptor 2 is its own)."""
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stderr.decode(errors="replace")


def test_start_up_chatter_is_filtered_and_the_rest_passed_on():
    err = _run(
        "import os\n"
        "from core.landmarks.mediapipe import native_chatter_filtered\n"
        "with native_chatter_filtered():\n"
        "    os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n')\n"
        "    os.write(2, b'W0000 00:00:1 22 inference_feedback_manager.cc:114] Feedback manager requires\\n')\n"
        "    os.write(2, b'a real problem\\n')\n"
        "os.write(2, b'after\\n')\n")
    assert err.splitlines() == ["a real problem", "after"]


def test_a_capture_from_the_backend_prints_nothing_of_mediapipe(frames):
    """A face found on a real frame: none of MediaPipe's start-up lines or protobuf warnings reach stderr."""
    err = _run(
        "import cv2\n"
        "from core.landmarks import get_backend\n"
        f"cap = cv2.VideoCapture({str(S32)!r}); ok, image = cap.read(); assert ok\n"
        "with get_backend('mediapipe') as b:\n"
        "    found = list(b.track([image, image]))\n"
        "assert all(f is not None for f in found)\n")
    for chatter in ("XNNPACK", "absl::InitializeLog", "inference_feedback_manager", "GetPrototype"):
        assert chatter not in err, err
