"""Personal-model figures: generic model / + personal blendshapes / + dynamic albedo.

    python bench/model_accuracy.py synth [--seeds 1001 1002 1003] [--frames 450] [--photometric]
        synthetic clips with hidden personal corrections (seeds no test tuned on): expression-shape error
        against the truth (face, weight 1, shapes the clip exercises), weight error, albedo error on frames
        with the wrinkle expressions; once with the tracked capture (MediaPipe) and once with the truth's
        weights, pose and landmarks (what the modeling can do with perfect tracking). registration_px: how far
        the capture's geometry puts the face's surface points from their true place in the frames (its
        constant part is how far an unwrapped texture lands from its true place in UV space).
    python bench/model_accuracy.py real [CLIP ...] [--look /tmp/likeness_look]
        clips in ../shared/media/clips: photometric error of the re-rendered face (face region): photo_generic
        (generic shapes, static albedo), photo_albedo (the default personal model: generic shapes, static and
        dynamic albedo), photo_shapes / photo_dynamic (personal shapes, re-tracked, without / with the dynamic
        albedo); landmark RMS of the generic and the personal-shapes fit; a side-by-side PNG per clip.
Work files go to --work (default /tmp/likeness_model_bench). Last line: key=value figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.facemodel import load_face_model  # noqa: E402
from core.io.capture import Capture  # noqa: E402
from core.modeling import ModelingOptions, build_personal_model, retrack, tracking_rms  # noqa: E402
from core.modeling.build import capture_weights  # noqa: E402
from core.render.camera import Camera, euler_to_matrix  # noqa: E402


def truth_capture(t: dict) -> Capture:
    n = len(t["weights"])
    return Capture(names=tuple(str(x) for x in t["names"]), weights=t["weights"], tracked=np.ones(n, bool),
                   rotation=t["rotation"], translation=t["translation"], timestamps=t["timestamps"],
                   fps=float(t["fps"]), image_size=tuple(int(x) for x in t["image_size"]), focal=float(t["focal"]),
                   identity=t["identity"], gaze=t["gaze"], lighting=t["lighting"],
                   landmarks=t.get("landmarks_mp", t["landmarks68"]))


def shape_error(model, person, truth, threshold=0.3) -> tuple[float, float]:
    """Mean per-vertex error (mm) over the face and the exercised shapes: generic ICT vs personal."""
    n = model.submeshes["face"][1]
    ex = np.flatnonzero(truth["weights"].max(0) >= threshold)
    tc = truth["personal_expressions"][ex, :n]
    ec = person.expression_corrections[ex, :n]
    return float(np.linalg.norm(tc, axis=2).mean() * 1e3), float(np.linalg.norm(tc - ec, axis=2).mean() * 1e3)


def weight_error(model, capture, truth, threshold=0.3) -> float:
    ex = truth["weights"].max(0) >= threshold
    w = capture_weights(capture, model)
    ok = capture.tracked
    return float(np.abs(w[ok][:, ex] - truth["weights"][ok][:, ex]).mean())


def albedo_error(model, person, truth, weights, frames=24, threshold=0.3) -> dict:
    """Mean |albedo - truth| per texel (face, front-facing) on frames with the wrinkle shapes, static alone
    and static + dynamic; `gain` aligns the overall colour scale first (albedo x light is ambiguous)."""
    from core.synth.albedo import texel_geometry

    size = truth["albedo"].shape[0]
    g = texel_geometry(model, size)
    region = g.part["face"] & (g.normal_z > 0.3)
    names = list(model.expression_names)
    t_dyn = truth["dynamic_albedo"].astype(np.float32)
    t_idx = [names.index(str(n)) for n in truth["dynamic_albedo_names"]]
    wrinkled = region & (np.abs(t_dyn).max(axis=(0, 3)) > 0.005)
    tw = truth["weights"]
    hits = np.flatnonzero(tw[:, t_idx].max(1) >= threshold)
    pick = hits[np.linspace(0, len(hits) - 1, min(frames, len(hits))).round().astype(int)] if len(hits) else hits
    static = cv2.resize(person.albedo, (size, size)) if person.albedo.shape[0] != size else person.albedo
    t_static = truth["albedo"].astype(np.float32)
    gain = np.median(t_static[region] / np.maximum(static[region], 1e-3), axis=0)
    e_idx = [names.index(n) for n in person.dynamic_albedo_names]
    e_dyn = [cv2.resize(d, (size, size)) for d in person.dynamic_albedo]
    out = {}
    for key, mask in (("face", region), ("wrinkles", wrinkled)):
        rows = []
        for f in pick:
            true = t_static + np.tensordot(tw[f, t_idx], t_dyn, axes=1)
            dyn = sum((weights[f, j] * d for j, d in zip(e_idx, e_dyn)), np.zeros_like(static))
            for k, est in enumerate((static, np.clip(static + dyn, 0, 1))):
                rows.append((k, np.abs(est * gain - true)[mask].mean()))
        arr = np.array(rows) if rows else np.zeros((0, 2))
        out[key] = [float(arr[arr[:, 0] == k, 1].mean()) if len(arr) else float("nan") for k in (0, 1)]
    return out


def registration_px(model, capture: Capture, truth: dict, step: int = 7) -> tuple[float, float, float]:
    """How far (pixels) the capture's geometry puts the face's surface points from where the truth has them:
    the mean over tracked frames and every `step`-th face vertex of |projection by the capture (its identity,
    weights, pose, focal; generic expressions) - projection by the truth (its identity, weights with the
    hidden personal corrections, pose, focal)|, and its two parts: constant (the per-vertex mean over frames:
    a texture unwrapped through this geometry sits that far from its true place in UV space) and varying
    (what changes from frame to frame: it blurs what the frames add up to)."""
    names = list(model.expression_names)
    index = [[str(n) for n in truth["names"]].index(n) for n in names]
    w_true = truth["weights"][:, index]
    w_est = capture_weights(capture, model)
    ids = np.arange(0, model.submeshes["narrow_face"][1], step)
    true_base = model.identity_shape(truth["identity"])[ids].astype(np.float64)
    true_shapes = (model.expressions[:, ids] + truth["personal_expressions"][:, ids]).astype(np.float64)
    est_base = model.identity_shape(capture.identity)[ids].astype(np.float64)
    est_shapes = model.expressions[:, ids].astype(np.float64)
    w, h = (int(x) for x in capture.image_size)
    cam_true, cam_est = Camera(w, h, float(truth["focal"])), Camera(w, h, float(capture.focal))
    r_true, r_est = euler_to_matrix(truth["rotation"]), euler_to_matrix(capture.rotation)
    disp = []
    for i in np.flatnonzero(capture.tracked):
        p_true = cam_true.project((true_base + np.tensordot(w_true[i], true_shapes, 1)) @ r_true[i].T
                                  + truth["translation"][i])
        p_est = cam_est.project((est_base + np.tensordot(w_est[i], est_shapes, 1)) @ r_est[i].T
                                + capture.translation[i])
        disp.append(p_true - p_est)
    disp = np.asarray(disp)  # (F, V, 2)
    const = disp.mean(0)
    return (float(np.linalg.norm(disp, axis=2).mean()), float(np.linalg.norm(const, axis=1).mean()),
            float(np.linalg.norm(disp - const, axis=2).mean()))


def run_synth(args) -> dict:
    from core.pipeline import CaptureOptions, capture_video
    from core.synth import generate, load_truth

    model = load_face_model()
    rows = []
    for seed in args.seeds:
        d = Path(args.work) / f"synth{seed}"
        if not (d / "truth.npz").exists():
            generate(seed, args.frames, (480, 480), personal=True, out_dir=d)
        truth = load_truth(d)
        name = "capture_photometric.npz" if args.photometric else "capture.npz"
        if not (d / name).exists():
            capture_video(d / "video.mp4", CaptureOptions(photometric=args.photometric)).save(d / name)
        tracked = Capture.load(d / name)
        for source, cap in (("tracked", tracked), ("truth", truth_capture(truth))):
            t0 = time.perf_counter()
            person = build_personal_model(d / "video.mp4", cap, ModelingOptions(personal_shapes=True), model=model)
            seconds = time.perf_counter() - t0
            g, p = shape_error(model, person, truth)
            alb = albedo_error(model, person, truth, capture_weights(cap, model))
            row = {"seed": seed, "source": source, "shape_generic_mm": g, "shape_personal_mm": p,
                   "albedo_static": alb["face"][0], "albedo_dynamic": alb["face"][1],
                   "albedo_static_wrinkles": alb["wrinkles"][0], "albedo_dynamic_wrinkles": alb["wrinkles"][1],
                   "dynamic_shapes": list(person.dynamic_albedo_names), "seconds": seconds}
            if source == "tracked":
                again, _ = retrack(cap, person, model, video=d / "video.mp4")  # like for like: photometric
                row["weight_generic"] = weight_error(model, cap, truth)
                row["weight_personal"] = weight_error(model, again, truth)
                row["registration_px"], row["registration_constant_px"], row["registration_varying_px"] = \
                    registration_px(model, cap, truth)
            rows.append(row)
            print(json.dumps(row, default=float), flush=True)
    return {"rows": rows}


def _render(model, person, camera, capture, i, shapes: bool, dynamic: bool, image):
    """The re-rendered head for capture frame i, its SH light fitted to the frame; (image, face mask)."""
    from core.render.shading import render_face

    w = capture_weights(capture, model)[i]
    if shapes:
        v = person.vertices(model, w)
    else:
        v = model.identity_shape(person.identity) + np.tensordot(w.astype(np.float32), model.expressions, axes=1)
    v_cam = v.astype(np.float64) @ euler_to_matrix(capture.rotation[i]).T + capture.translation[i]
    albedo = person.albedo_at(w) if dynamic else person.albedo
    # Lighting: nine renders, one per SH coefficient, then least squares against the frame per channel.
    basis = []
    for k in range(9):
        sh = np.zeros((9, 3))
        sh[k] = 1.0
        img, frags = render_face(model, camera, v_cam, albedo, sh)
        basis.append(img)
    stop = model.submeshes["narrow_face"][1]
    tri = frags.triangle
    face = (tri >= 0) & (np.asarray(model.triangles)[np.maximum(tri, 0), 0] < stop)
    a = np.stack(basis, -1)[face]  # (P, 3, 9)
    target = image[face]
    out = np.zeros_like(image)
    for c in range(3):
        coef = np.linalg.lstsq(a[:, c], target[:, c], rcond=None)[0]
        out[..., c] = np.stack(basis, -1)[..., c, :] @ coef
    return np.clip(out, 0, 1), face


def run_real(args) -> dict:
    from core.io.personal import generic_personal_model
    from core.pipeline import CaptureOptions, capture_video
    from core.video import open_video

    model = load_face_model()
    look = Path(args.look)
    look.mkdir(parents=True, exist_ok=True)
    clips = [Path(c) for c in args.clips] or sorted((ROOT.parent / "shared/media/clips").glob("*.mp4"))
    rows = []
    for video in clips:
        d = Path(args.work) / video.stem
        d.mkdir(parents=True, exist_ok=True)
        if not (d / "capture.npz").exists():
            capture_video(video, CaptureOptions()).save(d / "capture.npz")
        cap = Capture.load(d / "capture.npz")
        t0 = time.perf_counter()
        person = build_personal_model(video, cap, ModelingOptions(personal_shapes=True), model=model)
        seconds = time.perf_counter() - t0
        default = build_personal_model(video, cap, ModelingOptions(), model=model)  # what personalizing ships
        opt = ModelingOptions(personal_shapes=False, dynamic_albedo=False)
        generic = build_personal_model(video, cap, opt, model=model)
        generic = generic_personal_model(model, cap.identity, generic.albedo)
        again, _ = retrack(cap, person, model, video=video)
        camera = Camera(cap.image_size[0], cap.image_size[1], cap.focal)
        frames = np.flatnonzero(cap.tracked)
        pick = frames[np.linspace(0, len(frames) - 1, min(args.frames, len(frames))).round().astype(int)]
        want = {int(cap.frame_indices[i]): int(i) for i in pick}
        # Each model is rendered with its own tracking, as personalize returns them: the generic with the
        # capture, the personal variants with the capture re-tracked with the personal model. shapes_on_generic:
        # the personal shapes on the generic model's weights and pose (what session 6 reported as "shapes").
        # albedo: the default personal model (generic shapes, the person's static and dynamic albedo) on the
        # capture's own tracking (nothing to re-track with).
        errors = {"generic": [], "shapes": [], "dynamic": [], "shapes_on_generic": [], "albedo": []}
        strongest = int(pick[np.argmax(np.abs(capture_weights(cap, model)[pick]).sum(1))])
        panel = None
        for frame in open_video(video, 0, max(want) + 1):
            i = want.get(frame.index)
            if i is None:
                continue
            image = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255
            renders = {}
            masks = []
            for key, who, tracked, shapes, dyn in (("generic", generic, cap, False, False),
                                                   ("shapes", person, again, True, False),
                                                   ("dynamic", person, again, True, True),
                                                   ("shapes_on_generic", person, cap, True, False),
                                                   ("albedo", default, cap, False, True)):
                img, face = _render(model, who, camera, tracked, i, shapes, dyn, image)
                renders[key] = img
                masks.append(face)
            mask = np.logical_and.reduce(masks)
            for key, img in renders.items():
                errors[key].append(float(np.abs(img - image)[mask].mean()))
            if i == strongest:
                panel = _panel(image, renders, default, mask)
        row = {"clip": video.stem, "frames": len(pick), "seconds_model": seconds,
               **{f"photo_{k}": float(np.mean(v)) for k, v in errors.items()},
               "landmark_rms_generic": tracking_rms(cap, model),
               "landmark_rms_personal": tracking_rms(again, model, person),
               "dynamic_shapes": list(person.dynamic_albedo_names),
               "fitted_shapes": len(person.metadata["fitted_shapes"])}
        if panel is not None:
            cv2.imwrite(str(look / f"{video.stem}.png"), panel)
        rows.append(row)
        print(json.dumps(row, default=float), flush=True)
    return {"rows": rows}


def _panel(image, renders, person, mask) -> np.ndarray:
    """frame | generic render | personal render (the default: generic shapes, static and dynamic albedo) |
    with the personal shapes too (opt-in) | the default's albedo face cell, as BGR uint8."""
    ys, xs = np.nonzero(mask)
    pad = 30
    y0, y1 = max(0, ys.min() - pad), min(image.shape[0], ys.max() + pad)
    x0, x1 = max(0, xs.min() - pad), min(image.shape[1], xs.max() + pad)
    h = 360

    def crop(img):
        c = img[y0:y1, x0:x1]
        # the render over the frame, so the background stays and the face shows the model
        return cv2.resize(c, (round(c.shape[1] * h / c.shape[0]), h))

    def over(render):
        out = image.copy()
        out[mask] = render[mask]
        return out

    size = person.albedo.shape[0]
    cell = person.albedo[: int(0.75 * size), : int(0.75 * size)]
    tiles = [crop(image), crop(over(renders["generic"])), crop(over(renders["albedo"])),
             crop(over(renders["dynamic"])), cv2.resize(cell, (h, h))]
    labels = ("frame", "generic", "personal", "+ shapes", "albedo")
    row = np.concatenate([np.clip(t, 0, 1) for t in tiles], axis=1)
    out = cv2.cvtColor((row * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    x = 0
    for t, label in zip(tiles, labels):
        cv2.putText(out, label, (x + 8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
        x += t.shape[1]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("which", choices=("synth", "real"))
    p.add_argument("clips", nargs="*", help="real: videos (default: all in ../shared/media/clips)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1001, 1002, 1003])
    p.add_argument("--frames", type=int, default=450, help="synth: clip length; real: frames evaluated")
    p.add_argument("--work", default="/tmp/likeness_model_bench")
    p.add_argument("--photometric", action="store_true", help="synth: track with the photometric refinement")
    p.add_argument("--look", default="/tmp/likeness_look")
    args = p.parse_args()
    if args.which == "real" and args.frames == 450:
        args.frames = 12
    result = run_synth(args) if args.which == "synth" else run_real(args)
    rows = result["rows"]
    keys = [k for k in rows[0] if isinstance(rows[0][k], float)] if rows else []
    print(" ".join(f"{k}={np.mean([r[k] for r in rows if k in r]):.4f}" for k in keys))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
