"""Benchmark: MediaPipe backend ms/frame and detection rate on a real clip (decode on its own thread)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.landmarks import get_backend  # noqa: E402
from core.video import open_video  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("video")
    p.add_argument("--prefetch", type=int, default=4)
    args = p.parse_args()
    video = open_video(args.video, prefetch=args.prefetch)
    frames = list(open_video(args.video, prefetch=0))  # decoded up front: landmarks alone
    with get_backend("mediapipe") as backend:
        t0 = time.perf_counter()
        results = list(backend.track(frames))
        landmarks_only = (time.perf_counter() - t0) / len(frames)
        detector_calls = backend.detector_calls
    with get_backend("mediapipe") as backend:
        t0 = time.perf_counter()
        n = sum(1 for _ in backend.track(video))
        with_decode = (time.perf_counter() - t0) / n
    # The reference: MediaPipe's own FaceMesh (tracking mode, iris) on the same frames, same process.
    import cv2
    import mediapipe as mp

    rgbs = [cv2.cvtColor(f.image, cv2.COLOR_BGR2RGB) for f in frames]
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, refine_landmarks=True) as mesh:
        t0 = time.perf_counter()
        for rgb in rgbs:
            mesh.process(rgb)
        facemesh = (time.perf_counter() - t0) / len(frames)
    found = sum(r is not None for r in results)
    print(f"video={Path(args.video).name} size={video.width}x{video.height} frames={len(frames)}")
    print(f"landmarks_ms={1000 * landmarks_only:.2f} facemesh_reference_ms={1000 * facemesh:.2f} "
          f"decode_and_landmarks_ms={1000 * with_decode:.2f} "
          f"found={found}/{len(frames)} detection_rate={found / len(frames):.3f} detector_calls={detector_calls}")


if __name__ == "__main__":
    main()
