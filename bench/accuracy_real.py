"""Capture on the real clips in ../shared/media/clips: how often the face is followed, and jitter.

tracked: fraction of frames with a fitted face, over all clips' frames.
Jitter: on "still-ish" frames (where the detector's face centre moves less than its median speed in that
clip), the mean length of the second difference over time, x[t+1] - 2 x[t] + x[t-1], of the iBUG-68
landmark positions, over the inter-ocular (outer eye corner) distance. Raw: the detector's 68-point
subset. Fit: the fitted model's 68 landmarks projected (the Capture a user gets, smoothing at its
default); fit_unsmoothed: the same fit with smoothing 0 (what the model and temporal prior alone do).
Overlays of a few frames per clip go to --look (default /tmp/likeness_look).

Run: .venv/bin/python bench/accuracy_real.py [--clips DIR] [--look DIR] [--only GLOB] [--photometric]
Last line: tracked=... jitter_fit=... jitter_raw=...
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def model68(capture, model, weights=None, rotation=None, translation=None) -> np.ndarray:
    """(N, 68, 2) projected model landmarks."""
    from core.render.camera import Camera, euler_to_matrix

    w = capture.weights if weights is None else weights
    rot = capture.rotation if rotation is None else rotation
    tr = capture.translation if translation is None else translation
    v = model.vertices(capture.identity, w, model.landmarks68).astype(np.float64)  # (N, 68, 3)
    v = np.einsum("nij,nlj->nli", euler_to_matrix(rot), v) + tr[:, None]
    return Camera(capture.image_size[0], capture.image_size[1], capture.focal).project(v)


def jitter(points: np.ndarray, iod: np.ndarray, still: np.ndarray) -> float:
    """Mean |second difference| of points (N, P, 2) over iod, on frames t with still[t] (and both neighbours)."""
    d2 = np.linalg.norm(points[2:] - 2 * points[1:-1] + points[:-2], axis=2).mean(1) / iod[1:-1]
    ok = still[1:-1] & np.isfinite(d2)
    return float(d2[ok].mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "media" / "clips")
    p.add_argument("--look", type=Path, default=Path("/tmp/likeness_look"))
    p.add_argument("--quality", default="balanced")
    p.add_argument("--photometric", action="store_true", help="refine the fits against the pixels (slow)")
    p.add_argument("--no-iris-gaze", action="store_true", help="with --photometric: gaze from MediaPipe's iris")
    p.add_argument("--only", default="*.mp4", help="a glob over the clips folder, e.g. '*d6*'")
    args = p.parse_args()

    from core.facemodel import load_face_model
    from core.pipeline import CaptureOptions, capture_video, write_overlays
    from core.tracking import TrackingOptions, layout_for, track_clip
    from core.tracking.layout import MEDIAPIPE_TO_68

    model = load_face_model()
    clips = sorted(args.clips.glob(args.only))
    if not clips:
        raise SystemExit(f"no clips in {args.clips}")
    totals = {"frames": 0, "tracked": 0}
    jit = {"raw": [], "fit": [], "fit_unsmoothed": []}
    for path in clips:
        t0 = time.perf_counter()
        cap = capture_video(path, CaptureOptions(quality=args.quality, photometric=args.photometric,
                                                 iris_gaze=not args.no_iris_gaze))
        dt = time.perf_counter() - t0
        raw = cap.landmarks[:, MEDIAPIPE_TO_68].astype(np.float64)
        iod = np.linalg.norm(raw[:, 36] - raw[:, 45], axis=1)
        centre = raw.mean(1)
        speed = np.r_[np.nan, np.linalg.norm(np.diff(centre, axis=0), axis=1) / iod[1:]]
        still = cap.tracked & (speed <= np.nanmedian(speed))
        fit = model68(cap, model)
        layout = layout_for(cap.landmarks.shape[1], model)
        res = track_clip(cap.landmarks, np.isfinite(cap.landmarks[:, 0, 0]), cap.image_size, layout, model,
                         timestamps=cap.timestamps, options=TrackingOptions(quality=args.quality, smoothing=0.0,
                                                                            focal=cap.focal))
        unsmoothed = model68(cap, model, res.raw_weights, res.rotation, res.translation)
        row = {"raw": jitter(raw, iod, still), "fit": jitter(fit, iod, still),
               "fit_unsmoothed": jitter(unsmoothed, iod, still)}
        for k, v in row.items():
            jit[k].append(v)
        totals["frames"] += cap.n_frames
        totals["tracked"] += int(cap.tracked.sum())
        pngs = write_overlays(path, cap, args.look, count=4)
        print(f"{path.name}: {cap.n_frames} frames in {dt:.1f}s ({cap.n_frames / dt:.0f} fps), tracked "
              f"{cap.tracked.mean():.3f}, focal {cap.focal:.0f}px, jitter/iod raw {row['raw']:.5f} "
              f"fit {row['fit']:.5f} fit_unsmoothed {row['fit_unsmoothed']:.5f}, "
              f"rotation range {np.ptp(cap.rotation[cap.tracked], axis=0).round(1).tolist()} deg, "
              f"overlays {pngs[0].parent}/{path.stem}_*.png", flush=True)
    tracked = totals["tracked"] / totals["frames"]
    print(f"tracked={tracked:.4f} jitter_fit={np.mean(jit['fit']):.5f} jitter_raw={np.mean(jit['raw']):.5f} "
          f"jitter_fit_unsmoothed={np.mean(jit['fit_unsmoothed']):.5f}")


if __name__ == "__main__":
    main()
