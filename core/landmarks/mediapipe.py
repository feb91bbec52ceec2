"""MediaPipe landmarks (478 points: 468 mesh + 10 iris), offline, with a detector only when tracking is lost.

MediaPipe's own FaceMesh runs its short-range detector whenever it lost the face and picks the face itself.
Here the pieces of its graph are driven directly instead: the full-range face detector (short range misses
big faces) chooses the face on the first frame, then the FaceLandmarkCpu subgraph runs on a region taken
from the previous frame's landmarks (MediaPipe's own FaceLandmarkLandmarksToRoi). So the face followed is
the one we chose (never switched to another person), and we know exactly when the detector ran.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import cv2
import numpy as np

from ..nativelog import stderr_held
from .base import FaceLandmarks, LandmarkBackendError, frame_image

N_POINTS = 478

# The landmark model on a region of interest, plus the region for the next frame from its landmarks.
# "facelandmarkcpu__face_presence_score" is the subgraph's internal score stream (mediapipe 0.10.14 names).
_GRAPH = """
input_stream: "IMAGE:image"
input_stream: "ROI:roi"
output_stream: "LANDMARKS:landmarks"
output_stream: "SCORE:facelandmarkcpu__face_presence_score"
output_stream: "NEXT_ROI:next_roi"
node {
  calculator: "FaceLandmarkCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  output_stream: "LANDMARKS:landmarks"
  input_side_packet: "WITH_ATTENTION:with_attention"
}
node {
  calculator: "ImagePropertiesCalculator"
  input_stream: "IMAGE:image"
  output_stream: "SIZE:image_size"
}
node {
  calculator: "FaceLandmarkLandmarksToRoi"
  input_stream: "LANDMARKS:landmarks"
  input_stream: "IMAGE_SIZE:image_size"
  output_stream: "ROI:next_roi"
}
"""
_SCORE = "facelandmarkcpu__face_presence_score"

# MediaPipe's native side announces itself on the process's stderr when its graphs first run (TFLite's
# delegate notice, absl warnings about a feedback manager, from its own threads), past Python's sys.stderr and
# in the middle of a progress bar; no option or environment variable of mediapipe 0.10.14 turns it off. Its
# protobuf glue warns about a deprecated call on every first result. Neither says anything to an animator.
_NATIVE_CHATTER = re.compile(
    rb"Created TensorFlow Lite XNNPACK delegate|absl::InitializeLog\(\) is called|inference_feedback_manager\.cc")
warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated", category=UserWarning)


def native_chatter_filtered():
    """A block whose stderr lines reach the terminal less MediaPipe's start-up chatter (delayed to its end)."""
    return stderr_held(drop=_NATIVE_CHATTER)


def _unpack(landmarks) -> np.ndarray:
    """NormalizedLandmarkList -> (N, 3) float32 x, y, z.

    Reading the serialized bytes is 4x faster than iterating the messages (0.15 vs 0.55 ms); the layout
    (x, y, z only, fixed 17 bytes each) is checked and the plain loop is used when it does not hold.
    """
    raw = np.frombuffer(landmarks.SerializeToString(), np.uint8)
    if raw.size % 17 == 0:
        rows = raw.reshape(-1, 17)
        if (rows[:, :3] == (0x0A, 0x0F, 0x0D)).all() and (rows[:, 7] == 0x15).all() and (rows[:, 12] == 0x1D).all():
            return np.ascontiguousarray(rows[:, [3, 4, 5, 6, 8, 9, 10, 11, 13, 14, 15, 16]]).view("<f4").astype(
                np.float32)
    return np.array([(p.x, p.y, p.z) for p in landmarks.landmark], np.float32)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class MediaPipeBackend:
    """The default backend. Not thread-safe: one instance per worker; close() (or `with`) frees the graphs.

    face_index: which face to follow when several are found on the detector frame, 0 = the largest,
    1 = the second largest, ... min_detection: the detector's score threshold. min_presence: below this
    landmark score the face counts as lost and the detector runs again (on the same frame).
    """

    name = "mediapipe"
    n_points = N_POINTS

    def __init__(self, face_index: int = 0, min_detection: float = 0.5, min_presence: float = 0.5):
        try:
            import mediapipe as mp
            from google.protobuf import text_format
            from mediapipe.framework import calculator_pb2
            from mediapipe.framework.formats import rect_pb2
            from mediapipe.python.solution_base import SolutionBase
        except ImportError as e:  # pragma: no cover - the pinned environment has it
            raise LandmarkBackendError(f"MediaPipe is not installed ({e}); install mediapipe==0.10.14") from e
        self.face_index = int(face_index)
        self.min_presence = float(min_presence)
        self._rect = rect_pb2.NormalizedRect
        config = text_format.Parse(_GRAPH, calculator_pb2.CalculatorGraphConfig())
        # Both graphs load their models on their first frame, from their own threads: a blank frame each
        # here, so that their start-up chatter comes out inside the filter.
        with native_chatter_filtered():
            self._mesh = SolutionBase(graph_config=config, side_inputs={"with_attention": True},
                                      outputs=["landmarks", _SCORE, "next_roi"])
            self._detector = mp.solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=float(min_detection))
            blank = np.zeros((64, 64, 3), np.uint8)
            self._detector.process(blank)
            self._mesh.process({"image": blank, "roi": self._rect(x_center=0.5, y_center=0.5, width=1.0,
                                                                  height=1.0)})
        self.detector_calls = 0  # how often the face detector ran (tests and statistics)
        self.landmark_calls = 0

    # ---------------------------------------------------------------- pieces

    def _detect_faces(self, rgb: np.ndarray) -> list[tuple[tuple[float, float, float, float], Any]]:
        """All detector faces as (pixel box, detection proto), largest first."""
        self.detector_calls += 1
        h, w = rgb.shape[:2]
        result = self._detector.process(rgb)
        faces = []
        for d in result.detections or []:
            b = d.location_data.relative_bounding_box
            box = (b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h)
            faces.append((box, d))
        faces.sort(key=lambda f: -(f[0][2] - f[0][0]) * (f[0][3] - f[0][1]))
        return faces

    def _roi_from_detection(self, detection, w: int, h: int):
        """MediaPipe's FaceDetectionFrontDetectionToRoi: rotation from the eyes, square, scaled 1.5."""
        b = detection.location_data.relative_bounding_box
        kp = detection.location_data.relative_keypoints
        angle = -math.atan2(-(kp[1].y - kp[0].y) * h, (kp[1].x - kp[0].x) * w)
        angle = (angle + math.pi) % (2 * math.pi) - math.pi
        side = 1.5 * max(b.width * w, b.height * h)
        return self._rect(x_center=b.xmin + b.width / 2, y_center=b.ymin + b.height / 2,
                          width=side / w, height=side / h, rotation=angle)

    def _landmarks(self, rgb: np.ndarray, roi):
        """(points (478, 2) px, z (478,), score, next roi) or None when the model sees no face in roi."""
        self.landmark_calls += 1
        r = self._mesh.process({"image": rgb, "roi": roi})
        score = float(getattr(r, _SCORE) or 0.0)
        if r.landmarks is None or score < self.min_presence:
            return None
        h, w = rgb.shape[:2]
        lm = _unpack(r.landmarks)
        # Normalized coordinates span the image edges; our pixel centres sit on integers.
        points = np.stack([lm[:, 0] * w - 0.5, lm[:, 1] * h - 0.5], axis=1)
        return points, lm[:, 2] * w, score, r.next_roi

    def _from_detector(self, rgb: np.ndarray, near: tuple | None):
        """Run the detector, pick the face (the one overlapping `near`, else by face_index), refine once."""
        faces = self._detect_faces(rgb)
        if not faces:
            return None
        chosen = None
        if near is not None:
            best = max(faces, key=lambda f: _iou(f[0], near))
            if _iou(best[0], near) > 0.1:
                chosen = best
        if chosen is None:
            chosen = faces[min(self.face_index, len(faces) - 1)]
        h, w = rgb.shape[:2]
        first = self._landmarks(rgb, self._roi_from_detection(chosen[1], w, h))
        if first is None:
            return None
        # The detector's box is rough; a second pass on the landmarks' own region is what tracking sees.
        second = self._landmarks(rgb, first[3])
        return second or first

    # ---------------------------------------------------------------- API

    def detect(self, image_bgr: np.ndarray) -> FaceLandmarks | None:
        """One still: detector, then landmarks of the chosen face (None when there is no face)."""
        rgb = cv2.cvtColor(frame_image(image_bgr), cv2.COLOR_BGR2RGB)
        found = self._from_detector(rgb, None)
        if found is None:
            return None
        return FaceLandmarks.from_points(found[0], found[1], found[2], detected=True)

    def track(self, frames: Iterable[Any], job: Any = None, total: int = 0) -> Iterator[FaceLandmarks | None]:
        """One item per frame. The detector runs on the first frame and again only where the face was lost."""
        roi = None
        last_box = None
        for i, frame in enumerate(frames):
            if job is not None:
                job.step("landmarks", i, total)
            rgb = cv2.cvtColor(frame_image(frame), cv2.COLOR_BGR2RGB)
            found = self._landmarks(rgb, roi) if roi is not None else None
            detected = found is None
            if found is None:
                found = self._from_detector(rgb, last_box)
            if found is None:
                roi = None
                yield None
                continue
            points, z, score, roi = found
            result = FaceLandmarks.from_points(points, z, score, detected)
            last_box = result.box
            yield result
        if job is not None and total:
            job.step("landmarks", total, total)

    def close(self) -> None:
        self._mesh.close()
        self._detector.close()

    def __enter__(self) -> MediaPipeBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
