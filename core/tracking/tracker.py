"""Fitting a whole clip: focal and identity on keyframes, then pose and weights frame by frame, then gaze,
smoothing and neutral calibration. Input is the landmark arrays of a clip, never its frames; they are read a
block of frames at a time, so they may stay on disk (core.io.framefile) however long the clip."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from ..facemodel.model import FaceModel
from ..render.camera import euler_to_matrix, matrix_to_euler
from ..threads import one_blas_thread
from .gaze import direction_to_angles, eye_look_matrix, eye_model, gaze_from_iris, gaze_to_eye_look
from .keyframes import estimate_focal, fit_keyframes, select_keyframes
from .layout import PointLayout, interocular
from .smoothing import neutral_calibrate, smooth
from .solver import FitState, FrameSolver, SolverSettings, initial_pose

# name -> (keyframes, iterations per frame, J^T J every iteration, field-of-view grid in degrees)
QUALITY = {
    "fast": (8, 2, False, (35.0, 50.0, 65.0)),
    # Detector bias pulls the focal estimate long (on renders it picked a 30-35 degree view where 40-52 was
    # true); the grid starts at 40 degrees, the narrow end of phone and webcam lenses.
    "balanced": (12, 2, False, (40.0, 50.0, 60.0, 75.0)),
    "accurate": (20, 5, True, (25.0, 30.0, 40.0, 50.0, 60.0, 75.0)),
}
# A fit whose RMS error exceeds this fraction of the inter-ocular distance is a lost face.
LOST_RMS_IOD = 0.12
NOISE_RANGE = (0.0005, 0.008)  # metres: the landmark noise estimated per clip stays within this
CLOSED_EYE = 0.4  # an eye open less than this fraction of its median opening counts as closed
# Per-shape multipliers of the weights' sparsity and size priors: blinks are brief and large, and the
# lids carry few landmarks, so a uniform prior would flatten them.
SHAPE_PRIOR = {"eyeBlink_L": 0.25, "eyeBlink_R": 0.25}
BLOCK = 1024  # frames of landmarks read at a time


class TrackingError(ValueError):
    """The landmarks cannot be fitted (no face anywhere, wrong shapes); the message is for the user."""


@dataclass(frozen=True)
class TrackingOptions:
    quality: str = "balanced"
    smoothing: float = 0.5  # 0 = raw fits; see core.tracking.smoothing
    neutral_frame: int | None = None  # index into the clip's frames (not the source video)
    focal: float | None = None  # pixels; None = estimate from the keyframes
    settings: SolverSettings = field(default_factory=SolverSettings)
    identity_prior: float = 30.0
    # The iris says where an eye looks only relative to an eyeball placed by the fit, which can be off by a
    # millimetre (~5 degrees). True: assume the person mostly looks at the camera and take out each eye's
    # median offset from that; False: trust the geometry.
    gaze_at_camera: bool = False
    # Eyes turn together (vergence at a camera's distance is a degree or two), while each eye's reading
    # carries its own iris-detection and eyeball-placement error: True reads one gaze for both eyes, the
    # mean over the open ones (synthetic seeds 2001-2003: gaze error 4.4 -> 3.9 degrees).
    conjugate_gaze: bool = True
    noise_factor: float = 3.0  # landmark noise = this x the keyframe fit's RMS (0: settings.sigma as given)


@dataclass
class TrackResult:
    """Per-frame fit of a clip (N frames)."""

    names: tuple[str, ...]
    weights: np.ndarray  # (N, E) in [0, 1], smoothed and calibrated as asked
    raw_weights: np.ndarray  # (N, E) straight from the fit
    rotation: np.ndarray  # (N, 3) XYZ Euler degrees
    translation: np.ndarray  # (N, 3) metres
    tracked: np.ndarray  # (N,) bool
    confidence: np.ndarray  # (N,) 0..1
    rms: np.ndarray  # (N,) pixels, NaN where untracked
    gaze: np.ndarray | None  # (N, 2, 2) degrees, None where the layout has no iris points
    identity: np.ndarray  # (K,)
    focal: float
    keyframes: np.ndarray  # indices of the frames used for identity and focal
    timing: dict = field(default_factory=dict)  # seconds: keyframes (focal + identity), frames (per-frame loop)
    rotation_matrices: np.ndarray = field(repr=False, default=None)  # (N, 3, 3), smoothed


@dataclass
class FrameFits:
    """A clip's per-frame fit before gaze, smoothing and hold-over: what track_clip's refine step may change.

    weights (N, E) float64 (the eyeLook columns are set from gaze afterwards), rotation (N, 3, 3),
    translation (N, 3), gaze (N, 2, 2) or None: changed in place. tracked (N,), closed (N, 2) eyes shut,
    held (H,) indices of the weights the per-frame solve leaves to the gaze; solver: the clip's FrameSolver.
    """

    weights: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    gaze: np.ndarray | None
    tracked: np.ndarray
    closed: np.ndarray
    held: np.ndarray
    identity: np.ndarray
    solver: FrameSolver


def _blocks(points, n: int):
    """(start, block of points) in order, BLOCK frames each; a block of a file-backed store is a copy, dropped
    when the next one comes."""
    for a in range(0, n, BLOCK):
        yield a, np.asarray(points[a:a + BLOCK])


def _rows(points, n: int):
    for _, block in _blocks(points, n):
        yield from block


def _hold(values: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Each bad frame takes the last good frame's value (the first good one's before any)."""
    idx = np.where(good, np.arange(len(good)), -1)
    idx = np.maximum.accumulate(idx)
    first = int(np.argmax(good))
    idx[idx < 0] = first
    return values[idx]


def _center_gaze(gaze: np.ndarray, good: np.ndarray, rot: np.ndarray, trans: np.ndarray, eyes) -> np.ndarray:
    """Gaze less its per-eye median offset from the camera direction (see TrackingOptions.gaze_at_camera)."""
    if good.sum() < 10:
        return gaze
    centres = np.einsum("nij,ej->nei", rot[good], eyes.centers) + trans[good, None, :]  # camera space
    to_cam = -centres / np.linalg.norm(centres, axis=-1, keepdims=True)
    head = np.einsum("nji,nej->nei", rot[good], to_cam)  # R^T: into the head's frame
    at_camera = direction_to_angles(head) - direction_to_angles(eyes.rest)[None]
    return gaze - np.median(gaze[good] - at_camera, axis=0)[None]


def track_clip(points: np.ndarray, valid: np.ndarray, image_size: tuple[int, int], layout: PointLayout,
               face_model: FaceModel, timestamps: np.ndarray | None = None,
               detector_confidence: np.ndarray | None = None, options: TrackingOptions | None = None,
               job=None, refine: Callable[[FrameFits], None] | None = None) -> TrackResult:
    """Fit the model to a clip's landmarks.

    points: (N, L, 2) pixels (anything where not valid): an array, or a store that slices into arrays (N
    frames a block at a time, as core.io.framefile.FrameFile); valid (N,) bool: the detector found the face;
    image_size (width, height); timestamps (N,) seconds (default 30 fps); detector_confidence (N,) 0..1.
    job: a core.job.Job (stages "identity" and "fitting"), or None. refine: called with the per-frame fits
    before gaze, smoothing and hold-over (core.tracking.photometric refines them against the frames).
    """
    options = options or TrackingOptions()
    if options.quality not in QUALITY:
        raise TrackingError(f"unknown quality {options.quality!r}; choose one of {', '.join(QUALITY)}")
    n_keys, iterations, exact, fovs = QUALITY[options.quality]
    if not hasattr(points, "shape"):
        points = np.asarray(points)
    # Never copied whole (a 10-minute clip is 70 MB of float32 points): read and converted a block at a time.
    valid = np.asarray(valid, bool).copy()
    n = len(points)
    if len(points.shape) != 3 or tuple(points.shape[1:]) != (layout.model.n_points, 2):
        raise TrackingError(f"landmarks {tuple(points.shape)} do not match the {layout.name} layout")
    if not valid.any():
        raise TrackingError(f"no face found in {n} frames")
    finite, iod, opening = [], [], []  # per frame: all points finite, eye-corner distance, lid openings
    for _, block in _blocks(points, n):
        finite.append(np.isfinite(block).all((1, 2)))
        iod.append(interocular(block, layout))
        if layout.lids is not None:
            opening.append(np.stack([np.linalg.norm(block[:, u] - block[:, d], axis=1) for u, d in layout.lids], 1))
        del block  # not held through the fit
    valid &= np.concatenate(finite)
    iod = np.concatenate(iod)
    timestamps = np.arange(n) / 30.0 if timestamps is None else np.asarray(timestamps, np.float64)
    det_conf = np.ones(n) if detector_confidence is None else np.asarray(detector_confidence, np.float64)
    width, height = image_size
    center = ((width - 1) / 2.0, (height - 1) / 2.0)
    settings = options.settings
    if settings.shape_prior is None:
        settings = replace(settings, shape_prior=np.array([SHAPE_PRIOR.get(nm, 1.0) for nm in layout.model.names]))
    lm = layout.model
    if job is not None:
        job.step("identity", 0, 1)

    # 1. focal and identity on keyframes
    t_start = time.perf_counter()
    keys = select_keyframes(points, valid, n_keys)
    key_points = points[keys].astype(np.float64)

    def noise_settings(fit) -> SolverSettings:
        """Priors are in units of the landmark noise: the noise taken from how well keyframes fit (clean points
        get weak priors, a detector's jittery ones strong ones)."""
        depth = float(np.median([-st.translation[2] for st in fit.states]))
        return replace(settings, sigma=float(np.clip(options.noise_factor * fit.rms * depth / fit.focal,
                                                      *NOISE_RANGE)))

    if options.focal:
        kf = fit_keyframes(lm, key_points, options.focal, center, layout.weights, settings,
                           identity_prior=options.identity_prior)
        if options.noise_factor:  # fitted again at the noise the first fit tells
            kf = fit_keyframes(lm, key_points, kf.focal, center, layout.weights, noise_settings(kf),
                               identity_prior=options.identity_prior, identity=kf.identity, rounds=2,
                               states=kf.states)
    else:
        # The noise from the focal search's winning fit, so that the full fit runs once, at that noise (until
        # session 13 it was refitted at the noise its own residuals told: s32's keyframes 0.20-0.26 -> 0.16-0.18
        # s; dev seeds, weights / landmarks, default 0.1106 / 2.52% -> 0.1105 / 2.53%, photometric 0.1001 /
        # 2.36% -> 0.0997 / 2.37%).
        kf = estimate_focal(lm, key_points, width, height, layout.weights, settings, fovs=fovs,
                            identity_prior=options.identity_prior,
                            noise=noise_settings if options.noise_factor else None)
    settings = kf.settings
    if job is not None:
        job.step("identity", 1, 1)

    t_keys = time.perf_counter() - t_start
    t_start = time.perf_counter()
    # 2. pose and weights, frame by frame, warm-started and anchored to the previous frame. Where the
    # layout has iris points, the gaze (from the iris, at the fitted pose) decides the eyeLook weights:
    # those shapes move only the lids, so the solve holds them at the previous frame's gaze values.
    solver = FrameSolver(lm, kf.identity, kf.focal, center, layout.weights, settings)
    mask = layout.weights > 0
    n_exp = lm.n_expressions
    weights = np.zeros((n, n_exp))
    rot = np.tile(np.eye(3), (n, 1, 1))
    trans = np.zeros((n, 3))
    rms = np.full(n, np.nan)
    tracked = np.zeros(n, bool)
    gaze = np.zeros((n, 2, 2)) if layout.iris is not None else None
    iris = list(layout.iris) if layout.iris is not None else []
    eyes = eye_model(face_model, kf.identity, lm.base(kf.identity)[iris]) if gaze is not None else None
    look, look_map = eye_look_matrix(lm.names)
    look_map = look_map.reshape(len(look), 4)

    def read_gaze(row: np.ndarray, st: FitState) -> np.ndarray:
        return gaze_from_iris(row[iris][None], st.rotation[None], st.translation[None], eyes, kf.focal, center)[0]

    def hold_for(g: np.ndarray):  # gaze_to_eye_look for one frame
        return look, np.clip(look_map @ g.ravel(), 0.0, 1.0)

    prev: FitState | None = None
    hold = None
    open_gaze = np.zeros((2, 2))
    closed = np.zeros((n, 2), bool)
    if layout.lids is not None:
        opening = np.concatenate(opening)
        opening /= np.maximum(iod, 1e-6)[:, None]
        typical = np.nanmedian(np.where(valid[:, None], opening, np.nan), axis=0)
        closed = opening < CLOSED_EYE * typical
    with one_blas_thread():  # core.threads: a frame's products are too small for a second BLAS thread
        for i, row in enumerate(_rows(points, n)):
            if job is not None and i % 16 == 0:
                job.step("fitting", i, n)
            if not valid[i]:
                prev = None
                continue
            x = row.astype(np.float64)
            if prev is None:
                st = initial_pose(solver.base, x, kf.focal, center, mask)
                st.weights = np.zeros(n_exp)
                st, err = solver.solve(x, st, iterations=6, exact=True)
            else:
                st, err = solver.solve(x, prev, prev, iterations=iterations, exact=exact, hold=hold)
                if err > LOST_RMS_IOD * iod[i]:  # a jump the warm start could not follow: start afresh
                    st = initial_pose(solver.base, x, kf.focal, center, mask)
                    st.weights = prev.weights.copy()
                    st, err = solver.solve(x, st, iterations=6, exact=True)
            if not np.isfinite(err) or err > LOST_RMS_IOD * iod[i]:
                prev = None
                continue
            if eyes is not None:  # the eyeLook weights held in the next frame's solve (one frame late, lids only)
                g = read_gaze(row, st)
                # A closed eye hides its iris (the detector guesses): keep that eye's last open gaze.
                shut = closed[i]
                if options.conjugate_gaze and not shut.all():
                    g[:] = g[~shut].mean(0)
                    shut = np.zeros(2, bool)
                g[shut] = open_gaze[shut]
                open_gaze[~shut] = g[~shut]
                gaze[i] = g
                hold = hold_for(g)
            weights[i], rot[i], trans[i], rms[i], tracked[i] = st.weights, st.rotation, st.translation, err, True
            prev = st
    t_frames = time.perf_counter() - t_start
    if job is not None:
        job.step("fitting", n, n)
    if not tracked.any():
        raise TrackingError(f"the face model could not be fitted to any of {n} frames")
    if refine is not None:
        refine(FrameFits(weights, rot, trans, gaze, tracked, closed,
                         look if gaze is not None else np.zeros(0, int), kf.identity, solver))
    raw = weights  # not copied: a long clip's (N, E) float64 arrays are megabytes, and weights is done with
    if gaze is not None and options.gaze_at_camera:
        gaze = _center_gaze(gaze, tracked & ~closed.any(1), rot, trans, eyes)
    if gaze is not None:
        for k, value in gaze_to_eye_look(gaze, lm.names).items():
            raw[:, k] = value

    # 4. hold-over for untracked frames, smoothing per tracked run, neutral calibration
    segments = np.cumsum(np.r_[0, tracked[1:] != tracked[:-1]])
    euler = matrix_to_euler(rot)
    euler = np.degrees(np.unwrap(np.radians(euler), axis=0))
    s = options.smoothing
    sm_weights = smooth(raw, timestamps, s, "weights", segments)
    sm_euler = smooth(euler, timestamps, s, "rotation", segments)
    sm_trans = smooth(trans, timestamps, s, "translation", segments)
    if gaze is not None:
        gaze = smooth(gaze, timestamps, s, "gaze", segments)
        for k, value in gaze_to_eye_look(gaze, lm.names).items():
            sm_weights[:, k] = value
    np.clip(sm_weights, 0.0, 1.0, out=sm_weights)
    if options.neutral_frame is not None:
        if not 0 <= options.neutral_frame < n:
            raise TrackingError(f"neutral frame {options.neutral_frame} is outside the clip's {n} frames")
        if not tracked[options.neutral_frame]:
            raise TrackingError(f"neutral frame {options.neutral_frame} has no tracked face; pick another")
        sm_weights = neutral_calibrate(sm_weights, sm_weights[options.neutral_frame])
    sm_weights = _hold(sm_weights.astype(np.float32), tracked)  # the weights are float32 from here on
    sm_euler = _hold(sm_euler, tracked)
    sm_trans = _hold(sm_trans, tracked)
    raw = _hold(raw.astype(np.float32), tracked)
    if gaze is not None:
        gaze = _hold(gaze, tracked)
    rel = np.where(tracked, rms / np.maximum(iod, 1e-6), np.inf)
    confidence = np.where(tracked, det_conf / (1.0 + (rel / 0.04) ** 2), 0.0)
    return TrackResult(
        names=lm.names, weights=sm_weights, raw_weights=raw,
        rotation=sm_euler, translation=sm_trans, tracked=tracked, confidence=confidence, rms=rms, gaze=gaze,
        identity=kf.identity, focal=kf.focal, keyframes=keys, rotation_matrices=euler_to_matrix(sm_euler),
        timing={"keyframes_s": t_keys, "frames_s": t_frames, "fitted_frames": int(tracked.sum())})
