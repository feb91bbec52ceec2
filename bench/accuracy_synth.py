"""Capture accuracy on synthetic clips with ground truth (seeds no test tuned on).

Renders each clip with core.synth (cached under --cache), runs the whole capture pipeline on its video
(MediaPipe landmarks, fit, smoothing) and compares with the truth:
- weight_mae: mean |weight - truth| over the shapes that move in the clip (truth std > 0.05);
- rot_err_deg: mean absolute head rotation error (XYZ Euler degrees, all three angles);
- lmk_err_iod: mean distance of the fitted model's 68 landmarks (model.landmarks68 projected) from the
  true ones, over the inter-ocular (outer eye corner) distance.
Also reported: gaze error, focal, the correlation of fitted and true irradiance over front-facing normals
(light_corr), the solver alone on the true MediaPipe points (--truth-landmarks), and per moving shape
its error, truth and estimate means, correlation and slope over the seeds (--per-shape).

Run: .venv/bin/python bench/accuracy_synth.py [--seeds 1001 1002 1003] [--frames 300] [--size 512]
     [--photometric [--photometric-stride N] [--no-iris-gaze]] [--per-shape]
Last line: weight_mae=... rot_err_deg=... lmk_err_iod=... gaze_err_deg=... fps=... (end to end, per clip)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def clip(seed: int, frames: int, size: int, cache: Path) -> Path:
    from core.synth import generate

    out = cache / f"seed{seed}_{frames}f_{size}"
    if not (out / "truth.npz").exists() or not (out / "video.mp4").exists():
        print(f"rendering seed {seed} ({frames} frames, {size}x{size}) into {out}", flush=True)
        generate(seed, frames, (size, size), out_dir=out)
    return out


def evaluate(names, weights, rotation, translation, identity, focal, gaze, tracked, truth, model,
             lighting=None) -> dict:
    from core.render.camera import Camera, transform

    w_true = truth["weights"]
    index = [list(truth["names"]).index(n) for n in names]
    w_true = w_true[:, index]
    moving = w_true.std(0) > 0.05
    t = tracked
    err = np.abs(weights - w_true)[t]
    cam = Camera(int(truth["image_size"][0]), int(truth["image_size"][1]), focal)
    pts = np.stack([cam.project(transform(model.vertices(identity, weights[i], model.landmarks68).astype(np.float64),
                                          rotation[i], translation[i])) for i in np.flatnonzero(t)])
    true68 = truth["landmarks68"][t]
    iod = np.linalg.norm(true68[:, 36] - true68[:, 45], axis=1)
    out = {
        "weight_mae": float(err[:, moving].mean()),
        "weight_mae_all": float(err.mean()),
        "rot_err_deg": float(np.abs(rotation - truth["rotation"])[t].mean()),
        "rot_err_xyz": np.abs(rotation - truth["rotation"])[t].mean(0).round(2).tolist(),
        "lmk_err_iod": float((np.linalg.norm(pts - true68, axis=2).mean(1) / iod).mean()),
        "tracked": float(t.mean()),
        "focal": focal,
        "focal_true": float(truth["focal"]),
    }
    if gaze is not None:
        out["gaze_err_deg"] = float(np.abs(gaze - truth["gaze"])[t].mean())
    if lighting is not None:  # the irradiance pattern over front-facing normals (albedo scale aside)
        from core.render.sh import sh_basis

        n = np.random.default_rng(0).normal(size=(400, 3))
        n = n / np.linalg.norm(n, axis=1, keepdims=True)
        basis = sh_basis(n[n[:, 2] > 0.3])
        corr = [np.corrcoef(basis @ truth["lighting"][i][:, c], basis @ lighting[i][:, c])[0, 1]
                for i in np.flatnonzero(t) for c in range(3)]
        out["light_corr"] = float(np.mean(corr))
    per = err.mean(0)
    out["worst"] = [(names[i], round(float(per[i]), 3)) for i in np.argsort(-per)[:5]]
    # Per moving shape: error, mean truth and estimate, and how the estimate follows the truth (correlation,
    # least-squares slope): 0 and 0 is a shape the fit does not see at all, a slope under 1 one it shrinks.
    w_t, w_e = w_true[t], np.asarray(weights)[t]
    out["per_shape"] = {}
    for i in np.flatnonzero(moving):
        a, b = w_t[:, i], w_e[:, i]
        corr = float(np.corrcoef(a, b)[0, 1]) if b.std() > 1e-6 else 0.0
        slope = float(np.cov(a, b)[0, 1] / a.var(ddof=1))
        out["per_shape"][names[i]] = (float(per[i]), float(a.mean()), float(b.mean()), corr, slope)
    return out


def per_shape_table(results: list[dict]) -> str:
    """The moving shapes over all seeds, largest total error first: seeds, error, truth and estimate means,
    correlation and slope (means over the seeds where the shape moves)."""
    rows: dict[str, list] = {}
    for r in results:
        for name, values in r["per_shape"].items():
            rows.setdefault(name, []).append(values)
    lines = [f"{'shape':18s} seeds  error  truth  estimate  corr  slope"]
    for name, v in sorted(rows.items(), key=lambda kv: -sum(x[0] for x in kv[1])):
        m = np.mean(v, axis=0)
        lines.append(f"{name:18s} {len(v):5d} {m[0]:6.3f} {m[1]:6.3f} {m[2]:9.3f} {m[3]:5.2f} {m[4]:6.2f}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[1001, 1002, 1003])
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--quality", default="balanced")
    p.add_argument("--smoothing", type=float, default=0.5)
    p.add_argument("--photometric", action="store_true", help="refine the fits against the pixels (slow)")
    p.add_argument("--photometric-stride", type=int, default=None, help="with --photometric: refine every n-th frame")
    p.add_argument("--no-iris-gaze", action="store_true", help="with --photometric: gaze from MediaPipe's iris")
    p.add_argument("--cache", type=Path, default=Path("/tmp/likeness_synth"))
    p.add_argument("--per-shape", action="store_true", help="also print a table of every moving shape's error")
    p.add_argument("--truth-landmarks", action="store_true",
                   help="also fit the true MediaPipe points (the solver alone, no detector error)")
    args = p.parse_args()

    from core.facemodel import load_face_model
    from core.pipeline import CaptureOptions, capture_video
    from core.synth.generate import load_truth
    from core.tracking import TrackingOptions, layout_for, track_clip

    model = load_face_model()
    results = []
    stride = {} if args.photometric_stride is None else {"photometric_stride": args.photometric_stride}
    for seed in args.seeds:
        folder = clip(seed, args.frames, args.size, args.cache)
        truth = load_truth(folder)
        t0 = time.perf_counter()
        cap = capture_video(folder / "video.mp4", CaptureOptions(quality=args.quality, smoothing=args.smoothing,
                                                                 photometric=args.photometric,
                                                                 iris_gaze=not args.no_iris_gaze,
                                                                 **stride))
        dt = time.perf_counter() - t0
        r = evaluate(cap.names, cap.weights, cap.rotation, cap.translation, cap.identity, cap.focal, cap.gaze,
                     cap.tracked, truth, model, cap.lighting)
        r["fps"] = len(cap.weights) / dt
        print(f"seed {seed}: pipeline {dt:.1f}s {({k: v for k, v in r.items() if k != 'per_shape'})}", flush=True)
        results.append(r)
        if args.truth_landmarks and "landmarks_mp" in truth:
            lay = layout_for(478, model)
            n = len(truth["weights"])
            res = track_clip(truth["landmarks_mp"], np.ones(n, bool), tuple(truth["image_size"]), lay, model,
                             timestamps=truth["timestamps"],
                             options=TrackingOptions(quality=args.quality, smoothing=args.smoothing))
            r2 = evaluate(res.names, res.weights, res.rotation, res.translation, res.identity, res.focal, res.gaze,
                          res.tracked, truth, model)
            print(f"seed {seed}: solver on true points {({k: v for k, v in r2.items() if k != 'per_shape'})}",
                  flush=True)
    if args.per_shape:
        print(per_shape_table(results))
    keys = ("weight_mae", "rot_err_deg", "lmk_err_iod", "gaze_err_deg", "fps")
    mean = {k: float(np.mean([r[k] for r in results])) for k in keys}
    print(" ".join(f"{k}={mean[k]:.4f}" for k in keys))


if __name__ == "__main__":
    main()
