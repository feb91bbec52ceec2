"""Building a PersonalModel from a video and its Capture, and re-tracking with it until the fit stops improving.

Stages (Job stages in brackets): check the capture against the video; choose keyframes covering the
expressions the clip shows; decode them ["keyframes"]; fit the shape corrections on them ["shape"];
stream the whole clip once more to unwrap the static albedo and regress the dynamic albedo ["albedo"].
The first three are fit_personal_shapes, the last fit_personal_albedo: personalize re-tracks with shapes
alone and unwraps the albedo once, from the capture it returns.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..facemodel import load_face_model
from ..io.capture import Capture
from ..io.cropfile import CropFile
from ..io.personal import PersonalModel, generic_personal_model
from ..job import Job, quiet_job
from ..render.camera import Camera, euler_to_matrix
from ..render.sh import SH_C0, sh_basis, vertex_normals
from ..threads import one_blas_thread
from ..video import VideoError, open_video
from . import uvmaps
from .albedo import AlbedoAccumulator, AlbedoMaps, AlbedoOptions, work_size_for
from .keyframes import select_keyframes
from .shape import Keyframe, LandmarkFrames, LandmarkPoints, ShapeOptions, fit_shape_corrections


class ModelingError(ValueError):
    """The personal model cannot be built from this input; the message is for the user."""


@dataclass
class ModelingOptions:
    keyframes: int = 30  # keyframes for the shape fit, chosen to cover the clip's expressions
    min_confidence: float = 0.3  # frames below this tracking confidence are not used
    min_tracked_fraction: float = 0.2  # below this share of usable frames the clip is refused
    on_poor_tracking: str = "error"  # or "generic": a model without corrections and a warning
    shape: ShapeOptions = field(default_factory=ShapeOptions)
    albedo: AlbedoOptions = field(default_factory=AlbedoOptions)
    dynamic_albedo: bool = True
    # Personal blendshapes (and the neutral correction) fitted to the landmarks: off by default, because every
    # judge here measures them worse than the generic ICT shapes (DESIGN.md, "Personal shapes: what limits them"):
    # held-out synthetic seeds 1001-1003, shapes 0.0349 / 0.0172 / 0.0313 -> 0.0475 / 0.0380 / 0.0445 mm from the
    # truth, re-tracked weights 0.0854 / 0.0808 / 0.0788 -> 0.0842 / 0.0842 / 0.0848 (the neutral correction
    # alone: 0.0861 / 0.0829 / 0.0844); the six real clips re-render closer without them (0.0292 against
    # 0.0308 on average, on five of the six). MediaPipe's subject-specific error is what they fit.
    # True: fit them (`--shapes`).
    personal_shapes: bool = False


STAGES = {"keyframes": 0.1, "shape": 0.4, "albedo": 0.5}


def check_capture_matches(capture: Capture, reader) -> None:
    """Raise ModelingError when the capture was not made from this video (size or length differ)."""
    w, h = (int(s) for s in capture.image_size)
    if (w, h) != (reader.width, reader.height):
        raise ModelingError(f"the capture is for {w}x{h} frames but the video is {reader.width}x{reader.height}: "
                            "was it made from another video?")
    idx = np.asarray(capture.frame_indices)
    total = reader.source_frame_count
    if total and len(idx) and idx.max() >= total + 1:
        raise ModelingError(f"the capture has frames up to {int(idx.max())} but the video has only {total}: "
                            "was it made from another video?")
    # A capture of a range (`capture --start/--end`) says so; one that claims the whole clip must match its length.
    asked = capture.metadata.get("frame_range")
    part = isinstance(asked, list | tuple) and len(asked) == 3 and asked[1] is not None
    full = not part and len(idx) == capture.n_frames and np.array_equal(idx, np.arange(len(idx)))
    if full and total and abs(total - capture.n_frames) > max(2, 0.01 * total):
        raise ModelingError(f"the capture has {capture.n_frames} frames but the video has {total}: "
                            "was it made from another video (or a part of it)?")


def capture_weights(capture: Capture, model) -> np.ndarray:
    """(frames, 53) weights in the model's expression order (missing names stay 0)."""
    index = {n: i for i, n in enumerate(capture.names)}
    w = np.zeros((capture.n_frames, model.n_expressions), np.float64)
    for j, n in enumerate(model.expression_names):
        if n in index:
            w[:, j] = capture.weights[:, index[n]]
    return w


def landmark_points_for(model, n_points: int) -> LandmarkPoints | None:
    """Model surface points matching the capture's detector points (68: iBUG vertices; 478: MediaPipe),
    with the tracker's trust per point (face contour points slide over the surface, irises are eyeballs)."""
    try:
        from ..tracking import layout_for

        trust = np.asarray(layout_for(n_points, model).weights, np.float64)
    except Exception:  # noqa: BLE001 - an unknown scheme or no correspondence: trust every point
        trust = None
    if n_points == 68:
        return LandmarkPoints.from_vertex_ids(model.landmarks68, trust)
    if n_points in (468, 478):
        try:
            from ..facemodel.correspondence import load_correspondence

            corr = load_correspondence()
        except Exception:  # noqa: BLE001 - no correspondence file: fit without landmarks
            return None
        corners = np.asarray(model.triangles)[np.asarray(corr.triangle)]
        return LandmarkPoints(corners[:n_points], np.asarray(corr.bary, np.float64)[:n_points],
                              None if trust is None else trust[:n_points])
    return None


def build_personal_model(video: str | Path, capture: Capture, options: ModelingOptions | None = None,
                         job: Job | None = None, model=None) -> PersonalModel:
    """A PersonalModel of the person in `video`, tracked as `capture` (see the module doc).

    Raises ModelingError for a capture that does not match the video or a clip where the face is mostly
    untracked (with on_poor_tracking="generic": a model without corrections, metadata["warnings"] says why),
    and core.job.Cancelled when the job is cancelled.
    """
    opt = options or ModelingOptions()
    job = job or quiet_job()
    if not set(STAGES) <= set(job.weights):  # a caller's job (capture --personalize) already shares them out
        job.weights = dict(STAGES)
    model = model or load_face_model()
    person, vertex_albedo = fit_personal_shapes(video, capture, opt, job, model)
    if person.metadata.get("warnings"):  # the clip was refused: the generic model, already complete
        return person
    return fit_personal_albedo(video, person, capture, opt, job, model, vertex_albedo)


@dataclass
class _Clip:
    """A video and its capture, checked against each other: what both modeling steps read."""

    reader: object  # core.video reader (its path and size)
    camera: Camera
    weights: np.ndarray  # (frames, 53) in the model's expression order
    usable: np.ndarray  # (frames,) bool: tracked confidently enough to learn from


def _open_clip(video: str | Path, capture: Capture, opt: ModelingOptions, model) -> _Clip:
    try:
        reader = open_video(video)
    except VideoError as e:
        raise ModelingError(str(e)) from e
    check_capture_matches(capture, reader)
    if capture.focal <= 0:
        raise ModelingError("the capture has no focal length; capture the video again")
    weights = capture_weights(capture, model)
    usable = capture.tracked & (np.asarray(capture.confidence) >= opt.min_confidence)
    usable &= np.isfinite(weights).all(1) & np.isfinite(capture.rotation).all(1)
    return _Clip(reader, Camera(reader.width, reader.height, float(capture.focal)), weights, usable)


@one_blas_thread()
def fit_personal_shapes(video: str | Path, capture: Capture, options: ModelingOptions | None = None,
                        job: Job | None = None, model=None) -> tuple[PersonalModel, np.ndarray | None]:
    """The neutral and expression shape corrections only ("keyframes" and "shape" stages): a PersonalModel
    whose albedo is a placeholder until fit_personal_albedo, and the shape fit's per-vertex albedo (F, 3) or
    None (what the albedo pass lights its frames with, where the photometric term made one). Enough to
    re-track with, which needs no albedo, so personalize's intermediate rounds skip the albedo pass.

    Errors as build_personal_model; a clip refused with on_poor_tracking="generic" gives the generic model
    with metadata["warnings"].
    """
    opt = options or ModelingOptions()
    job = job or quiet_job()
    model = model or load_face_model()
    t_start = time.perf_counter()
    clip = _open_clip(video, capture, opt, model)
    weights, usable, camera = clip.weights, clip.usable, clip.camera
    meta = {"source_video": str(video), "capture_frames": capture.n_frames,
            "capture_id": capture.metadata.get("id", ""), "usable_frames": int(usable.sum()),
            "options": _options_dict(opt)}
    if usable.sum() < max(5, opt.min_tracked_fraction * capture.n_frames):
        if usable.sum() < opt.min_tracked_fraction * capture.n_frames:
            msg = (f"the face is tracked in only {int(usable.sum())} of {capture.n_frames} frames; a personal "
                   "model needs a clip where the face is visible most of the time")
        else:  # a clip of a few frames, all of them fine
            msg = (f"a personal model needs at least 5 frames with the face tracked confidently; the capture has "
                   f"{int(usable.sum())}")
        if opt.on_poor_tracking != "generic":
            raise ModelingError(msg)
        meta["warnings"] = [msg + " (generic model written)"]
        return generic_personal_model(model, capture.identity, metadata=meta), None
    timing: dict[str, float] = {}

    # 1. keyframes
    keys = select_keyframes(weights, usable, opt.keyframes)
    job.step("keyframes", 0, len(keys))
    images = _read_frames(clip.reader, capture, keys, job)
    lighting = _initial_lighting(capture)
    rot = euler_to_matrix(capture.rotation)
    landmark_points = landmark_points_for(model, capture.landmarks.shape[1]) if capture.landmarks is not None \
        else None
    kfs = [Keyframe(int(i), images[int(i)][0], weights[i], rot[i], np.asarray(capture.translation[i], np.float64),
                    lighting[i], origin=images[int(i)][1]) for i in keys]
    frames = None
    if capture.landmarks is not None and landmark_points is not None:
        use = np.flatnonzero(usable)
        # the points as stored (float32): the shape fit converts only the frames it uses
        frames = LandmarkFrames(weights[use], rot[use], np.asarray(capture.translation, np.float64)[use],
                                np.asarray(capture.landmarks)[use])
    timing["keyframes_s"] = time.perf_counter() - t_start

    # 2. shape corrections
    t0 = time.perf_counter()
    n_face = uvmaps.face_vertex_count(model)
    vertex_albedo = None
    if opt.personal_shapes:
        # Lighting in the image's own terms first: the capture's may be in another colour space.
        _refine_keyframe_lighting(model, kfs, camera, capture.identity)
        fit = fit_shape_corrections(model, kfs, camera, capture.identity, opt.shape, landmark_points, frames, job)
        corrections, maps, fitted = fit.corrections, fit.maps, fit.fitted
        vertex_albedo = fit.vertex_albedo
        meta["shape_losses"] = fit.losses
    else:
        res = opt.shape.resolution
        corrections = np.zeros((1 + model.n_expressions, n_face, 3), np.float32)
        maps = np.zeros((1 + model.n_expressions, res, res, 3), np.float32)
        fitted = np.zeros(model.n_expressions, bool)
    neutral_corr = np.zeros((model.n_vertices, 3), np.float32)
    neutral_corr[:n_face] = corrections[0]
    expr_corr = np.zeros((model.n_expressions, model.n_vertices, 3), np.float32)
    expr_corr[:, :n_face] = corrections[1:]
    timing["shape_s"] = time.perf_counter() - t0
    meta["fitted_shapes"] = [n for n, f in zip(model.expression_names, fitted) if f]
    meta["keyframes"] = np.asarray(capture.frame_indices)[keys].tolist()
    meta["timing"] = timing
    person = PersonalModel(identity=capture.identity, neutral_correction=neutral_corr,
                           expression_names=model.expression_names, expression_corrections=expr_corr,
                           albedo=np.zeros((1, 1, 3), np.float32), correction_maps=maps, metadata=meta)
    return person, vertex_albedo


@one_blas_thread()
def fit_personal_albedo(video: str | Path, person: PersonalModel, capture: Capture,
                        options: ModelingOptions | None = None, job: Job | None = None,
                        model=None, vertex_albedo: np.ndarray | None = None) -> PersonalModel:
    """person (from fit_personal_shapes) with its static and dynamic albedo, unwrapped from the whole clip as
    tracked in `capture` ("albedo" stage). vertex_albedo: fit_personal_shapes's. Modifies and returns person."""
    opt = options or ModelingOptions()
    job = job or quiet_job()
    model = model or load_face_model()
    t0 = time.perf_counter()
    clip = _open_clip(video, capture, opt, model)
    maps, mean_light = _albedo_pass(model, person, clip.reader, capture, clip.weights, clip.usable, clip.camera, opt,
                                    vertex_albedo, job)
    person.albedo = maps.static
    person.dynamic_albedo_names = maps.names
    person.dynamic_albedo = maps.dynamic
    person.eye_colour = maps.eye_colour
    person.lighting = mean_light
    timing = person.metadata.setdefault("timing", {})
    timing["albedo_s"] = time.perf_counter() - t0
    timing["total_s"] = sum(v for k, v in timing.items() if k != "total_s")
    person.metadata["albedo"] = maps.info
    person.metadata["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    return person


def _options_dict(opt: ModelingOptions) -> dict:
    d = asdict(opt)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def _read_frames(reader, capture: Capture, keys: np.ndarray, job: Job) -> dict[int, tuple[np.ndarray, tuple]]:
    """{capture frame: ((h, w, 3) uint8 RGB, (x, y) origin)}: the keyframes' pixels around the face (the whole
    frame where the capture has no landmarks for it), in one forward pass over the video."""
    import cv2

    want = {int(capture.frame_indices[k]): int(k) for k in keys}
    last = max(want) if want else -1
    out: dict[int, tuple[np.ndarray, tuple]] = {}
    try:
        for frame in open_video(reader.path, 0, last + 1):
            if frame.index in want:
                k = want[frame.index]
                x0, y0, x1, y1 = _face_region(capture, k, frame.image.shape[1], frame.image.shape[0])
                out[k] = cv2.cvtColor(frame.image[y0:y1, x0:x1], cv2.COLOR_BGR2RGB), (x0, y0)
                job.step("keyframes", len(out), len(want))
    except VideoError as e:
        raise ModelingError(str(e)) from e
    missing = [k for k in want.values() if k not in out]
    if missing:
        raise ModelingError(f"the video ended before capture frame {missing[0]}: was the capture made from "
                            "another video?")
    return out


def _face_region(capture: Capture, k: int, width: int, height: int, margin: float = 0.6) -> tuple[int, ...]:
    """(x0, y0, x1, y1) frame pixels around capture frame k's landmarks, `margin` of their extent on each side
    (the head's ears and forehead reach beyond the detector's points); the whole frame without landmarks."""
    points = None if capture.landmarks is None else np.asarray(capture.landmarks[k], np.float64)
    if points is None or not np.isfinite(points).all():
        return 0, 0, width, height
    lo, hi = points.min(0), points.max(0)
    pad = margin * float((hi - lo).max())
    x0, y0 = (max(0, int(np.floor(v - pad))) for v in lo)
    x1, y1 = min(width, int(np.ceil(hi[0] + pad)) + 1), min(height, int(np.ceil(hi[1] + pad)) + 1)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else (0, 0, width, height)


def _initial_lighting(capture: Capture) -> np.ndarray:
    """(frames, 9, 3) the capture's lighting where it has one, else a uniform white light."""
    flat = np.zeros((9, 3))
    flat[0] = 1.0 / SH_C0
    if capture.lighting is None:
        return np.tile(flat, (capture.n_frames, 1, 1))
    light = np.asarray(capture.lighting, np.float64).copy()
    bad = ~np.isfinite(light).all((1, 2)) | (light[:, 0].max(1) <= 0)
    light[bad] = flat
    return light


def fit_lighting(colours: np.ndarray, normals: np.ndarray, albedo: np.ndarray, ridge: float = 0.01) -> np.ndarray:
    """(9, 3) SH irradiance explaining colours (N, 3) = albedo (N, 3) * sh_basis(normals) @ L, one outlier pass."""
    basis = sh_basis(normals)
    reg = ridge * np.r_[0.0, np.ones(8)]
    coeffs = np.zeros((9, 3))
    use = np.ones(len(basis), bool)
    for _ in range(2):
        b = basis[use]
        k = float(use.sum())
        for c in range(3):
            a = b * albedo[use, c:c + 1]
            coeffs[:, c] = np.linalg.solve(a.T @ a + k * np.diag(reg) + 1e-9 * np.eye(9), a.T @ colours[use, c])
        resid = np.abs(albedo * (basis @ coeffs) - colours).sum(1)
        use = resid <= max(np.percentile(resid, 85), 1e-6)
    return coeffs


def _refine_keyframe_lighting(model, kfs: list[Keyframe], camera: Camera, identity: np.ndarray,
                              rounds: int = 3) -> None:
    """Alternate a per-vertex albedo and each keyframe's SH lighting on the generic geometry (in place).

    The overall scale stays the capture's (or a unit light's): only the shape of each frame's light moves.
    """
    import cv2

    from ..render.atlas import visible_triangles
    from ..render.rasterize import project_mesh, rasterize

    n_face = model.submeshes["narrow_face"][1]
    base = model.identity_shape(identity).astype(np.float64)
    tris = np.asarray(model.triangles)[visible_triangles(model)]
    # The z-buffer at the frame's resolution up to 1080p; above, scaled down (a 4K frame's took ~0.2 s each).
    zs = min(1.0, 1920 / max(camera.width, camera.height))
    zw, zh = max(1, int(camera.width * zs)), max(1, int(camera.height * zs))
    samples = []
    for kf in kfs:
        v = base + np.tensordot(kf.weights, model.expressions, axes=1)
        cam = v @ kf.rotation.T + kf.translation
        pts = project_mesh(camera, cam)
        at = pts.copy()
        if zs < 1.0:
            at[:, :2] = (pts[:, :2] + 0.5) * zs - 0.5
        frags = rasterize(at, tris, zw, zh, perspective=True)
        zbuf = cv2.erode(frags.depth, np.ones((3, 3), np.uint8))
        n = vertex_normals(cam, model.triangles)[:n_face]
        p = pts[:n_face]
        xi = np.clip(np.rint(p[:, 0]).astype(int), 0, camera.width - 1)
        yi = np.clip(np.rint(p[:, 1]).astype(int), 0, camera.height - 1)
        zx = np.clip(np.rint(at[:n_face, 0]).astype(int), 0, zw - 1)
        zy = np.clip(np.rint(at[:n_face, 1]).astype(int), 0, zh - 1)
        view = -cam[:n_face] / np.linalg.norm(cam[:n_face], axis=1, keepdims=True)
        vis = ((n * view).sum(1) > 0.3) & (p[:, 2] <= zbuf[zy, zx] + 0.004)
        vis &= (p[:, 0] >= 0) & (p[:, 0] <= camera.width - 1) & (p[:, 1] >= 0) & (p[:, 1] <= camera.height - 1)
        vis &= kf.covers(xi, yi)
        colour = kf.colours(xi, yi)
        samples.append((vis, n, colour))
    scale = np.mean([kf.lighting[0].mean() for kf in kfs])
    for _ in range(rounds):
        num = np.zeros((n_face, 3))
        den = np.zeros((n_face, 3))
        for kf, (vis, n, colour) in zip(kfs, samples):
            s = np.maximum(sh_basis(n) @ kf.lighting, 1e-3)
            num += vis[:, None] * colour * s
            den += vis[:, None] * s * s
        albedo = num / np.maximum(den, 1e-9)
        seen = den.min(1) > 1e-6
        for kf, (vis, n, colour) in zip(kfs, samples):
            use = vis & seen
            if use.sum() > 50:
                kf.lighting = fit_lighting(colour[use], n[use], albedo[use])
        new_scale = np.mean([kf.lighting[0].mean() for kf in kfs])
        for kf in kfs:
            kf.lighting = kf.lighting * (scale / max(new_scale, 1e-9))


def _albedo_pass(model, person: PersonalModel, reader, capture: Capture, weights: np.ndarray, usable: np.ndarray,
                 camera: Camera, opt: ModelingOptions, vertex_albedo, job: Job) -> tuple[AlbedoMaps, np.ndarray]:
    """Stream the clip once: per-frame lighting from the keyframes' vertex albedo, then the accumulators.
    Returns the maps and the mean SH lighting (9, 3) of the frames used."""
    import cv2

    from ..render.shading import eye_centres, rotate_eyes

    aopt = opt.albedo
    usable_idx = np.flatnonzero(usable)
    # Frames for the static map (spread) and for the regression (a stride), both among usable frames.
    static_set = set(usable_idx[np.linspace(0, len(usable_idx) - 1, min(aopt.static_frames, len(usable_idx)))
                                .round().astype(int)].tolist())
    stride = max(1, int(np.ceil(len(usable_idx) / max(1, aopt.dynamic_frames))))
    dynamic_set = set(usable_idx[::stride].tolist())
    candidates = ()
    if opt.dynamic_albedo:
        w_use = weights[usable_idx[::stride]]
        candidates = tuple(c for c in aopt.candidates if c in model.expression_names
                           and (w_use[:, model.expression_names.index(c)] >= aopt.min_weight).sum() >= aopt.min_frames)
    face_px = _face_size_px(model, capture, camera, usable_idx)
    work = aopt.work_size or work_size_for(face_px)
    acc = AlbedoAccumulator(model, camera, aopt, candidates, work)

    neutral = person.neutral(model).astype(np.float32)
    deltas = person.expression_deltas(model).reshape(model.n_expressions, -1).astype(np.float32)
    centres = eye_centres(model, neutral)
    rot = euler_to_matrix(capture.rotation)
    frame_of = {int(f): i for i, f in enumerate(capture.frame_indices)}
    light_vertices = _lighting_vertices(model)
    if vertex_albedo is None or not np.isfinite(vertex_albedo[light_vertices]).any():
        va = None
    else:
        va = np.asarray(vertex_albedo, np.float64)
    light_sum = np.zeros((9, 3))
    light_n = 0
    last = max(max(static_set, default=-1), max(dynamic_set, default=-1))
    last_source = int(capture.frame_indices[last]) if last >= 0 else -1
    base_light = _initial_lighting(capture)
    done = 0
    total = len(static_set | dynamic_set)
    try:
        for frame in open_video(reader.path, 0, last_source + 1):
            i = frame_of.get(frame.index)
            if i is None or not (i in static_set or i in dynamic_set):
                continue
            image = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
            v = neutral + (weights[i].astype(np.float32) @ deltas).reshape(-1, 3)
            if capture.gaze is not None and np.isfinite(capture.gaze[i]).all():
                v = rotate_eyes(model, v, capture.gaze[i], centres)
            v_cam = v @ rot[i].T.astype(np.float32) + np.asarray(capture.translation[i], np.float32)
            light = base_light[i]
            if va is not None:
                light = _frame_lighting(model, camera, image, v_cam, va, light_vertices, light)
            light_sum += light
            light_n += 1
            acc.add(image, v_cam, weights[i], light, dynamic=i in dynamic_set, static=i in static_set)
            done += 1
            job.step("albedo", done, total)
    except VideoError as e:
        raise ModelingError(str(e)) from e
    maps = acc.solve()
    maps.info.update({"work_size": work, "face_px": round(face_px, 1), "regression_stride": stride,
                      "candidates": list(candidates)})
    return maps, light_sum / max(1, light_n)


def _face_size_px(model, capture: Capture, camera: Camera, frames: np.ndarray) -> float:
    """Median width in pixels of the face (outer eye corners to jaw, landmark vertices) over a few frames."""
    pick = frames[np.linspace(0, len(frames) - 1, min(9, len(frames))).round().astype(int)]
    lm = model.identity_shape(capture.identity)[model.landmarks68].astype(np.float64)
    rot = euler_to_matrix(capture.rotation[pick])
    sizes = []
    for r, t in zip(rot, capture.translation[pick]):
        p = camera.project(lm @ r.T + t)
        sizes.append(float(np.ptp(p[:, 0])))
    return float(np.median(sizes))


def _lighting_vertices(model, count: int = 1500) -> np.ndarray:
    stop = model.submeshes["narrow_face"][1]
    return np.linspace(0, stop - 1, count).astype(np.int64)


def _frame_lighting(model, camera: Camera, image: np.ndarray, v_cam: np.ndarray, vertex_albedo: np.ndarray,
                    ids: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """This frame's SH lighting from the keyframes' per-vertex albedo at a thinned set of face vertices."""
    alb = vertex_albedo[ids]
    normals = _normals_at(model, v_cam, ids)
    p = camera.project(v_cam[ids])
    view = -v_cam[ids] / np.linalg.norm(v_cam[ids], axis=1, keepdims=True)
    ok = np.isfinite(alb).all(1) & ((normals * view).sum(1) > 0.4)
    ok &= (p[:, 0] >= 0) & (p[:, 0] <= camera.width - 1) & (p[:, 1] >= 0) & (p[:, 1] <= camera.height - 1)
    if ok.sum() < 100:
        return fallback
    xi, yi = np.rint(p[ok, 0]).astype(int), np.rint(p[ok, 1]).astype(int)
    light = fit_lighting(image[yi, xi].astype(np.float64), normals[ok], alb[ok])
    return light if np.isfinite(light).all() else fallback


def _normals_at(model, v_cam: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Vertex normals at ids from the face triangles only (cheaper than the whole head)."""
    tris = _face_triangles(model)
    return vertex_normals(v_cam, tris)[ids]


_FACE_TRIS: dict[int, np.ndarray] = {}


def _face_triangles(model) -> np.ndarray:
    key = id(model)
    if key not in _FACE_TRIS:
        stop = model.submeshes["narrow_face"][1]
        t = np.asarray(model.triangles)
        _FACE_TRIS[key] = t[(t < stop).all(1)]
    return _FACE_TRIS[key]


# -- re-tracking with the personal model ----------------------------------------------------------------------

def personal_face_model(model, person: PersonalModel):
    """The FaceModel with this person's neutral correction and expression deltas in place of the generic ones.

    Everything that takes a FaceModel (the tracker's landmark layouts, rendering) then works on the person.
    """
    return replace(model, neutral=(np.asarray(model.neutral) + person.neutral_correction).astype(np.float32),
                   expressions=person.expression_deltas(model).astype(np.float32))


def retrack(capture: Capture, person: PersonalModel, model=None, job: Job | None = None,
            video: str | Path | None = None, crops: CropFile | None = None) -> tuple[Capture, float]:
    """Track the capture's stored landmarks again with the personal model; returns (capture, mean RMS px).

    Pose, weights, identity and gaze are refitted; lighting and landmarks are kept. A capture made with the
    photometric refinement is refined against the video's frames again when the video is given (without it
    the re-track is landmark-only, a less accurate kind of fit than the capture's). crops: the video's face
    crops from refinement_crops, where the caller re-tracks several times (one decoding pass for all).
    """
    from ..tracking import TrackingOptions, layout_for, track_clip
    from ..tracking.iris import MEDIAPIPE_LID_RINGS
    from ..tracking.photometric import refine_fits

    model = model or load_face_model()
    if capture.landmarks is None:
        raise ModelingError("the capture keeps no landmarks, so it cannot be tracked again with the personal model")
    pfm = personal_face_model(model, person)
    layout = layout_for(capture.landmarks.shape[1], pfm)
    opts = _capture_options(capture)
    tracking = TrackingOptions(quality=opts.get("quality", "balanced"), smoothing=opts.get("smoothing", 0.5),
                               focal=float(capture.focal))
    valid = np.isfinite(capture.landmarks).all((1, 2))
    own = crops is None and video is not None
    if own:
        crops = refinement_crops(capture, video)
    refine = None
    if crops is not None:
        rings = MEDIAPIPE_LID_RINGS if opts.get("iris_gaze", True) and layout.name == "mediapipe478" else None

        def refine(fits):
            refine_fits(fits, crops, capture.landmarks, pfm, rings, job)
    with crops if own and crops is not None else contextlib.nullcontext():
        result = track_clip(capture.landmarks, valid, tuple(capture.image_size), layout, pfm,
                            timestamps=capture.timestamps, detector_confidence=None, options=tracking, job=job,
                            refine=refine)
    meta = dict(capture.metadata)
    meta["personal_model"] = {"id": person.id, "path": person.metadata.get("path", "")}
    new = replace(capture, names=result.names, weights=result.weights, tracked=result.tracked,
                  rotation=result.rotation, translation=result.translation, identity=result.identity,
                  gaze=None if result.gaze is None else result.gaze.astype(np.float32),
                  confidence=result.confidence.astype(np.float32), metadata=meta)
    return new, float(np.nanmean(result.rms))


def _capture_options(capture: Capture) -> dict:
    opts = capture.metadata.get("options")
    return opts if isinstance(opts, dict) else {}


def refinement_crops(capture: Capture, video: str | Path) -> CropFile | None:
    """The face crops a re-track of a photometric capture refines against (a CropFile: close it), or None
    for a capture made without the refinement. One decoding pass of the video."""
    from ..tracking.photometric import store_crops

    opts = _capture_options(capture)
    if not opts.get("photometric") or capture.landmarks is None:
        return None
    try:
        reader = open_video(video, opts.get("start", 0) or 0, opts.get("stop"), opts.get("stride", 1) or 1)
    except VideoError as e:
        raise ModelingError(str(e)) from e
    check_capture_matches(capture, reader)
    try:
        return store_crops((frame.image for frame in reader), capture.landmarks, int(opts.get("photometric_stride", 1)))
    except VideoError as e:
        raise ModelingError(str(e)) from e


def tracking_rms(capture: Capture, model=None, person: PersonalModel | None = None) -> float:
    """Mean landmark RMS (pixels) of a capture's fit, with the generic or a personal model."""
    from ..tracking import layout_for

    model = model or load_face_model()
    fm = model if person is None else personal_face_model(model, person)
    if capture.landmarks is None:
        return float("nan")
    layout = layout_for(capture.landmarks.shape[1], fm)
    lm = layout.model
    w = capture_weights(capture, model)
    rot = euler_to_matrix(capture.rotation)
    camera = Camera(int(capture.image_size[0]), int(capture.image_size[1]), float(capture.focal))
    use = layout.weights > 0
    rms = []
    for a in range(0, capture.n_frames, 256):  # in blocks: the points of a whole clip would be ~40 KB a frame
        b = slice(a, a + 256)
        pts = lm.points(capture.identity, w[b])  # (F, L, 3)
        cam = np.einsum("fij,flj->fli", rot[b], pts) + capture.translation[b, None]
        d = np.linalg.norm(camera.project(cam)[:, use] - capture.landmarks[b][:, use], axis=-1)
        good = capture.tracked[b] & np.isfinite(d).all(1)
        rms.append(np.sqrt((d[good] ** 2).mean(1)))
    rms = np.concatenate(rms)
    return float(rms.mean()) if len(rms) else float("nan")


def personalize(video: str | Path, capture: Capture, options: ModelingOptions | None = None,
                job: Job | None = None, max_rounds: int = 2, min_gain: float = 0.02,
                model=None) -> tuple[PersonalModel, Capture]:
    """Model, re-track with the model, and repeat while the landmark fit improves by at least min_gain.

    Returns a model and the capture tracked with it (capture.metadata["personal_model"] names it); when
    re-tracking does not improve on the generic fit, the model and the capture as given. Without stored
    landmarks the capture cannot be re-tracked and comes back as given.

    The rounds fit shapes only (re-tracking needs no albedo); the albedo is unwrapped once, at the end, from
    the capture that is returned, so it is registered by the tracking that goes with the model. With
    options.personal_shapes off there is nothing to re-track with: the generic shapes, the person's albedo
    and the capture as given.
    """
    model = model or load_face_model()
    job = job or quiet_job()
    opt = options or ModelingOptions()
    if not set(STAGES) <= set(job.weights):
        job.weights = dict(STAGES)
    # Without stored landmarks there is nothing to re-track; without personal shapes nothing to re-track with.
    loop = capture.landmarks is not None and opt.personal_shapes
    parts = 1 + max_rounds if loop else 1  # shape rounds, then the albedo
    with job.repeat("keyframes", 0, parts):  # the bar moves on through the rounds, never back
        person, vertex_albedo = fit_personal_shapes(video, capture, opt, job, model)
    if person.metadata.get("warnings"):
        return person, capture
    result = (person, vertex_albedo, capture)
    history: list[float] = []
    if loop:
        best = tracking_rms(capture, model)
        history.append(round(best, 3))
        crops = refinement_crops(capture, video)  # every round re-tracks the same frames: decode them once
        with crops if crops is not None else contextlib.nullcontext():
            for k in range(max_rounds):
                tracked, _ = retrack(capture, person, model, job.silent(), video=video, crops=crops)  # cancellable
                rms = tracking_rms(tracked, model, person)
                history.append(round(rms, 3))
                if not np.isfinite(rms) or rms > best * (1 - min_gain):
                    break
                best, result = rms, (person, vertex_albedo, tracked)
                if k + 1 == max_rounds:
                    break  # a model built from this capture would not be re-tracked, so would not be checked
                with job.repeat("keyframes", k + 1, parts):
                    person, vertex_albedo = fit_personal_shapes(video, tracked, opt, job, model)  # better tracked
    person, vertex_albedo, capture = result
    with job.repeat("keyframes", parts - 1, parts):
        person = fit_personal_albedo(video, person, capture, opt, job, model, vertex_albedo)
    person.metadata["tracking_rms_px"] = history
    job.step("albedo", 1, 1)  # done, however many rounds the loop ran
    return person, capture
