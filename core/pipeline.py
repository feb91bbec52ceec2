"""The one composition of the capture stages (video -> landmarks -> fit), used by the CLI, the add-on and batch jobs.

Memory stays flat in clip length: frames are decoded, handed to the landmark backend and dropped; each
frame's landmark points, and for lighting the colours under them (no second decoding pass), go to temporary
files (core.io.framefile) that the fit and the lighting read back a block of frames at a time. What stays in
memory per frame is the result (weights, pose, gaze, lighting: about 0.5 KB) and a few numbers. Fitting runs
after the landmark pass because identity and focal length come from keyframes spread over the whole clip.
"""

from __future__ import annotations

import contextlib
import os
import platform
import tempfile
import threading
import time
from array import array
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .facemodel import FaceModelSourceError, load_face_model
from .io.capture import Capture
from .io.framefile import FrameFile, TemporaryFileError
from .io.personal import PersonalModel
from .job import Job, quiet_job
from .landmarks import LandmarkBackendError, get_backend
from .modeling import ModelingError, ModelingOptions, personalize
from .tracking import QUALITY, TrackingError, TrackingOptions, layout_for, track_clip, warm_up
from .tracking.iris import MEDIAPIPE_LID_RINGS
from .tracking.lighting import fit_lighting, sample_colours, surface_normals
from .tracking.photometric import CropKeeper, refine_fits
from .video import VideoError, open_video


class CaptureError(RuntimeError):
    """Capture cannot go on (unreadable video, no face, bad options); the message is for the user."""


@dataclass
class CaptureOptions:
    """What to capture and how. start/stop: source frame range [start, stop); stride: keep every n-th frame."""

    start: int = 0
    stop: int | None = None
    stride: int = 1
    backend: str = "mediapipe"  # or "fan"
    quality: str = "balanced"  # fast | balanced | accurate (core.tracking.QUALITY)
    smoothing: float = 0.5  # 0 = raw fits
    neutral_frame: int | None = None  # source video frame index of a neutral face; weights made relative
    focal: float | None = None  # pixels; None = estimated
    lighting: bool | None = None  # per-frame SH lighting; None = on except for the fast preset
    face_index: int = 0  # which face when several: 0 = the largest
    keep_landmarks: bool = True  # store the detector points in the Capture
    # Refine the fit against the pixels (core.tracking.photometric): closer weights, for a little more time
    # (the refinement reads face crops kept during the landmark pass, so the clip is still decoded once).
    photometric: bool = False
    # With photometric: read the gaze from the iris disc in the image where a disc clearly explains the eye
    # (core.tracking.iris.MIN_EXPLAINED), MediaPipe's iris points elsewhere. On renders it halves the gaze
    # error (4.2 -> 2.2 degrees); on real clips with light irises under dark lashes (s32, KatieHill) the gate
    # leaves nearly every frame to MediaPipe, where the ungated disc had sat on the upper lid.
    iris_gaze: bool = True
    # With photometric: refine every n-th frame of each tracked run (and its last); the frames between take
    # their landmark fit plus the correction interpolated from the refined frames around them. The detector's
    # error changes with the expression, slowly: on renders (dev seeds, session 17) every 3rd frame gives weights
    # 0.0973, every 5th 0.0970, 7th 0.0997, 10th 0.0994, none (landmarks only) 0.1106. Held out, every 5th
    # 0.0739 (landmarks 1.91% of the eye distance, gaze 2.39 deg), every 10th 0.0786 (1.93%, 2.99 deg).
    photometric_stride: int = 5
    # Model the person after tracking and re-track with the model (run_capture; capture_video ignores it).
    personalize: bool = False
    # With personalize: also fit personal blendshapes and re-track with them (core.modeling.ModelingOptions
    # .personal_shapes, off by default: measured worse than the generic shapes on synthetic and real clips).
    # Off: the generic shapes with the person's identity and albedo.
    personal_shapes: bool = False
    backend_options: dict = field(default_factory=dict)

    def stages(self) -> dict[str, float]:
        """Job stages and their share of the time (for the progress bar and ETA)."""
        # Measured at 720p (bench/capture.py, a 10-minute clip; a short one spends more on the identity):
        # landmarks 84%, the fit 11%, the lighting 3%; the photometric refinement a fifth of the accurate mode.
        stages = {"landmarks": 0.84, "identity": 0.04, "fitting": 0.09}
        if self.photometric:
            stages = {k: v * 0.8 for k, v in stages.items()} | {"photometric": 0.2}
        if self.wants_lighting():
            stages["lighting"] = 0.03
        if self.personalize:  # modeling takes about as long as capturing (bench/model.py)
            stages = {k: v / 2 for k, v in stages.items()} | {"keyframes": 0.05, "shape": 0.2, "albedo": 0.25}
        return stages

    def wants_lighting(self) -> bool:
        return self.quality != "fast" if self.lighting is None else bool(self.lighting)


def _versions() -> dict[str, str]:
    out = {"likeness": __version__, "python": platform.python_version(), "numpy": np.__version__}
    try:
        import cv2

        out["opencv"] = cv2.__version__
    except ImportError:  # pragma: no cover
        pass
    try:
        from importlib.metadata import version

        out["mediapipe"] = version("mediapipe")
    except Exception:  # pragma: no cover - not installed
        pass
    return out


def _check_options(options: CaptureOptions) -> None:
    if options.quality not in QUALITY:
        raise CaptureError(f"unknown quality {options.quality!r}; choose one of {', '.join(QUALITY)}")
    if options.smoothing < 0:
        raise CaptureError(f"smoothing must be 0 or more, got {options.smoothing}")
    if options.focal is not None and options.focal <= 0:
        raise CaptureError(f"focal length must be positive, got {options.focal}")
    if options.photometric_stride < 1:
        raise CaptureError(f"the photometric stride must be 1 or more, got {options.photometric_stride}")


def capture_video(video_path: str | os.PathLike, options: CaptureOptions | None = None,
                  job: Job | None = None) -> Capture:
    """Track the face in a video into a Capture.

    Raises CaptureError (a message for the user) for an unreadable video, a clip without a face or bad
    options, and core.job.Cancelled when the job is cancelled. Frames where the face is missing are kept,
    flagged tracked=False, with the last good frame's values.
    """
    options = options or CaptureOptions()
    _check_options(options)
    try:
        reader = open_video(video_path, options.start, options.stop, options.stride)
    except VideoError as e:
        raise CaptureError(str(e)) from e
    return capture_frames(reader, options, job, source=str(Path(video_path)))


def capture_frames(reader, options: CaptureOptions | None = None, job: Job | None = None,
                   source: str = "") -> Capture:
    """capture_video on an already opened frame source.

    reader: iterable over core.video.Frame (iterated once), with width, height,
    fps and frame_count attributes, as core.video.VideoReader (whose range/stride it already applies;
    options.start/stop/stride are only recorded). source: what to record as the source video.
    """
    options = options or CaptureOptions()
    job = job or quiet_job()
    _check_options(options)
    job.weights = options.stages()
    # keep_s: the landmark pass keeping what the fit reads (points and colours to their files, face crops)
    timing = {"decode_wait_s": 0.0, "landmarks_s": 0.0, "keep_s": 0.0, "fitting_s": 0.0, "lighting_s": 0.0}
    # The face model and how the detector's points sit on it come first: a missing set-up is said now, not
    # after minutes of video. Their few milliseconds count as fitting (layout_s).
    t0 = time.perf_counter()
    try:
        model = load_face_model()
    except FaceModelSourceError as e:
        raise CaptureError(str(e)) from e
    t_model = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:
        backend = get_backend(options.backend, face_index=options.face_index, **options.backend_options)
    except (LandmarkBackendError, TypeError) as e:
        raise CaptureError(f"landmark backend {options.backend!r} cannot run: {e}") from e
    timing["backend_s"] = time.perf_counter() - t0
    n_points = backend.n_points
    t0 = time.perf_counter()
    try:
        layout = layout_for(n_points, model)
    except FaceModelSourceError as e:
        if hasattr(backend, "close"):
            backend.close()
        raise CaptureError(str(e)) from e
    timing["layout_s"] = t_model + time.perf_counter() - t0
    want_light = options.wants_lighting()
    # The temporary files go when the capture's landmarks (a memmap of one) do, or at once on an error or cancel.
    # The photometric refinement reads the face crops of every few frames: kept as the frames go by (in a
    # temporary file too), so that the clip is decoded once.
    try:
        with FrameFile((n_points, 2), np.float32) as points, \
                FrameFile((n_points, 3), np.uint8) if want_light else contextlib.nullcontext() as colours, \
                CropKeeper(options.photometric_stride) if options.photometric else contextlib.nullcontext() as keeper:
            # The fit's compiled kernels load (numba: ~0.8 s of CPU the first time in a process, with the
            # photometric refinement's) while the detector runs. Not while it is set up: both hold the GIL. On 2
            # cores this hides nothing (the landmark pass slows by about as much, session 20): an application
            # that stays open calls warm_up_capture before its first capture instead (the Blender panel does).
            warming = threading.Thread(target=warm_up_capture, args=(options.photometric,), name="likeness-warm-up",
                                       daemon=True)
            warming.start()
            return _capture(reader, options, job, source, backend, timing, points, colours, keeper, warming,
                            model, layout)
    except TemporaryFileError as e:
        raise CaptureError(f"{e} (in {tempfile.gettempdir()}: is the disk full?)") from e


def warm_up_capture(photometric: bool = True, cache_dir: Path | None = None) -> None:
    """Load what a capture's fit would otherwise load on its way (the compiled kernels: numba's imports and cache
    reads; with photometric, the refinement's and the face model's tables from cache_dir, default: the usual
    cache). Once per process; later calls cost milliseconds. Never raises: it is only a head start, and the fit
    loads whatever this could not."""
    try:
        warm_up()
        if photometric:
            from .tracking.photometric import warm_up as warm_up_photometric

            warm_up_photometric(load_face_model(cache_dir))
    except Exception:  # noqa: BLE001 - only a head start: the fit loads the kernels itself if this failed
        pass


def _capture(reader, options: CaptureOptions, job: Job, source: str, backend, timing: dict, points: FrameFile,
             colours: FrameFile | None, keeper: CropKeeper | None, warming: threading.Thread, model,
             layout) -> Capture:
    """capture_frames once its backend runs: points and colours (None: no lighting) take the per-frame arrays,
    keeper (None: no photometric refinement) the face crops the refinement reads."""
    video_path = source or "video"
    # 1. landmarks, streamed: the reader decodes ahead on its own thread; we keep only small arrays.
    indices, stamps, conf, found_face = array("q"), array("d"), array("d"), array("b")
    n_points = backend.n_points
    missing = np.full((n_points, 2), np.nan, np.float32)
    no_colour = np.zeros((n_points, 3), np.uint8)
    want_light = colours is not None
    current: list = [None]  # the frame the backend is looking at (it yields one result per frame, in order)

    def frames():
        it = iter(reader)
        while True:
            t0 = time.perf_counter()
            try:
                frame = next(it)
            except StopIteration:
                return
            except VideoError as e:
                raise CaptureError(str(e)) from e
            timing["decode_wait_s"] += time.perf_counter() - t0
            indices.append(frame.index)
            stamps.append(frame.timestamp_s)
            current[0] = frame.image
            yield frame

    t_start = time.perf_counter()
    try:
        with backend if hasattr(backend, "__enter__") else contextlib.nullcontext(backend):
            for found in backend.track(frames(), job=job, total=max(reader.frame_count, 1)):
                found_face.append(found is not None)
                t_fit = time.perf_counter()  # what the fit keeps of the frame: not the landmark stage's time
                if keeper is not None:
                    keeper.push(len(found_face) - 1, current[0], None if found is None else found.points)
                if found is None:
                    points.append(missing)
                    conf.append(0.0)
                    if want_light:
                        colours.append(no_colour)
                else:
                    points.append(found.points)
                    conf.append(float(found.confidence))
                    if want_light:
                        colours.append(sample_colours(current[0], found.points))
                timing["keep_s"] += time.perf_counter() - t_fit
                current[0] = None
    except LandmarkBackendError as e:
        raise CaptureError(f"landmark backend {options.backend!r} failed: {e}") from e
    timing["landmarks_s"] = time.perf_counter() - t_start - timing["decode_wait_s"] - timing["keep_s"]
    n = len(points)
    if n == 0:
        raise CaptureError(f"{video_path}: no frames in the range start={options.start} stop={options.stop}")
    valid = np.asarray(found_face, bool)
    if not valid.any():
        raise CaptureError(f"no face found in {n} frame{'s' if n != 1 else ''} of {video_path}")

    # 2. fit
    t0 = time.perf_counter()
    warming.join()
    timing["warm_up_wait_s"] = time.perf_counter() - t0
    neutral = None
    frame_indices = np.asarray(indices)
    if options.neutral_frame is not None:
        hits = np.flatnonzero(frame_indices == options.neutral_frame)
        if not len(hits):
            raise CaptureError(f"neutral frame {options.neutral_frame} is not among the captured frames "
                               f"({frame_indices[0]}..{frame_indices[-1]} every {options.stride})")
        neutral = int(hits[0])
    t0 = time.perf_counter()
    tracking = TrackingOptions(quality=options.quality, smoothing=options.smoothing, neutral_frame=neutral,
                               focal=options.focal)
    refine = None
    if options.photometric:
        def refine(fits):
            t_refine = time.perf_counter()
            rings = MEDIAPIPE_LID_RINGS if options.iris_gaze and layout.name == "mediapipe478" else None
            timing["photometric_frames"] = refine_fits(fits, keeper.finish(), points, model, rings, job)
            timing["photometric_s"] = time.perf_counter() - t_refine
    try:
        result = track_clip(points, valid, (reader.width, reader.height), layout, model,
                            timestamps=np.asarray(stamps), detector_confidence=np.asarray(conf),
                            options=tracking, job=job, refine=refine)
    except TrackingError as e:
        raise CaptureError(str(e)) from e
    except VideoError as e:
        raise CaptureError(str(e)) from e
    timing["fitting_s"] = time.perf_counter() - t0 - timing.get("photometric_s", 0.0) + timing.pop("layout_s")
    timing.update({f"fit_{k}": v for k, v in result.timing.items()})

    # 3. lighting from the colours under the landmarks
    lighting = None
    if want_light:
        t0 = time.perf_counter()
        lighting = _fit_lighting(colours, result, layout, model, job)
        timing["lighting_s"] = time.perf_counter() - t0

    metadata = {
        "source_video": source,
        "frame_range": [options.start, options.stop, options.stride],
        "source_fps": reader.fps,
        "backend": options.backend,
        "layout": layout.name,
        "versions": _versions(),
        "options": asdict(options),
        "keyframes": frame_indices[result.keyframes].tolist(),
        "tracked_fraction": float(result.tracked.mean()),
        "timing": timing,
    }
    capture = Capture(
        names=result.names, weights=result.weights, tracked=result.tracked, rotation=result.rotation,
        translation=result.translation, timestamps=np.asarray(stamps, np.float64),
        fps=reader.fps / options.stride, image_size=(reader.width, reader.height), focal=result.focal,
        identity=result.identity, gaze=None if result.gaze is None else result.gaze.astype(np.float32),
        lighting=lighting, confidence=result.confidence.astype(np.float32),
        landmarks=points.mapped() if options.keep_landmarks else None, frame_indices=frame_indices,
        metadata=metadata)
    return capture


@dataclass
class CaptureResult:
    """What a capture job hands to its caller: the capture, and the person's model when one was asked for."""

    capture: Capture
    personal: PersonalModel | None = None
    personal_error: str | None = None  # why no personal model was made where one was asked for


def run_capture(video_path: str | os.PathLike, options: CaptureOptions | None = None,
                job: Job | None = None) -> CaptureResult:
    """Capture, then (options.personalize) model the person and re-track with the personal model.

    A clip the person cannot be modeled from (too few usable frames) still gives its capture: the result says
    why in personal_error, and the caller decides (the CLI writes the capture and exits non-zero, the add-on
    builds the generic head and warns)."""
    options = options or CaptureOptions()
    job = job or quiet_job()
    capture = capture_video(video_path, options, job)
    if not options.personalize:
        return CaptureResult(capture)
    try:
        person, capture = personalize(video_path, capture, ModelingOptions(personal_shapes=options.personal_shapes),
                                      job=job)
    except ModelingError as e:
        return CaptureResult(capture, None, str(e))
    return CaptureResult(capture, person)


def _fit_lighting(colours, result, layout, model, job: Job, chunk: int = 128) -> np.ndarray:
    """(N, 9, 3) SH coefficients per captured frame (held from the last good frame where none).

    colours: (N, L, 3) uint8, an array or a FrameFile (read a chunk at a time).
    """
    n = len(colours)
    normals = surface_normals(model, result.identity, layout.corners, layout.bary)
    lm = layout.model
    use = layout.weights > 0
    out = np.full((n, 9, 3), np.nan, np.float32)
    for a in range(0, n, chunk):  # chunks keep the (frames, points, 3) temporaries small
        b = min(n, a + chunk)
        job.step("lighting", a, n)
        rot = result.rotation_matrices[a:b]
        pts = lm.points(result.identity, result.raw_weights[a:b].astype(np.float64))
        pts = np.einsum("nij,nlj->nli", rot, pts) + result.translation[a:b, None, :]
        out[a:b] = fit_lighting(colours[a:b], normals, rot, pts, use)
    job.step("lighting", n, n)
    good = np.isfinite(out).all((1, 2)) & result.tracked
    if not good.any():
        return np.zeros((n, 9, 3), np.float32)
    idx = np.maximum.accumulate(np.where(good, np.arange(n), -1))
    idx[idx < 0] = int(np.argmax(good))
    return out[idx]


def fitted_vertices(capture: Capture, model, frame: int, eyes: bool = True) -> np.ndarray:
    """(V, 3) camera-space vertices of the fitted head at capture frame `frame`, eyeballs turned by the gaze."""
    from .render.camera import transform
    from .render.shading import rotate_eyes

    v = model.vertices(capture.identity, capture.weights[frame]).astype(np.float64)
    if eyes and capture.gaze is not None:
        v = rotate_eyes(model, v, capture.gaze[frame])
    return transform(v, capture.rotation[frame], capture.translation[frame])


# iBUG 68 contours: jaw, brows, nose bridge, nostrils, eyes (closed), lips (closed).
_CONTOURS = ((range(0, 17), False), (range(17, 22), False), (range(22, 27), False), (range(27, 31), False),
             (range(31, 36), False), (range(36, 42), True), (range(42, 48), True), (range(48, 60), True),
             (range(60, 68), True))


def write_overlays(video_path: str | os.PathLike, capture: Capture, out_dir: str | os.PathLike, count: int = 6,
                   frames: list[int] | None = None, crop: bool = True) -> list[Path]:
    """PNG overlays of the fit on `count` tracked frames (default: evenly spread).

    Drawn: the fitted face mesh (green wireframe), its 68 landmark contours (yellow), iris rings at the
    fitted pupils turned by the gaze (cyan), and the detector's points (red: its 68 subset and iris centres).
    crop: cut to the face and enlarge it to at least 600 px high, so the fit can be judged by eye.
    """
    import cv2

    from .render.camera import Camera
    from .render.overlay import draw_mesh_overlay, draw_points
    from .tracking.layout import MEDIAPIPE_TO_68

    model = load_face_model()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if frames is None:
        good = np.flatnonzero(capture.tracked)
        frames = good[np.linspace(0, len(good) - 1, min(count, len(good))).round().astype(int)].tolist()
    stop = model.submeshes["narrow_face"][1]
    tris = model.triangles[(model.triangles < stop).all(1)]
    pupils = []  # the front-most vertex of each eyeball: the pupil centre, turned with the eye
    for side in ("left", "right"):
        a, b = model.submeshes[f"eyeball_{side}"]
        pupils.append(a + int(np.argmax(model.neutral[a:b, 2])))
    camera = Camera(capture.image_size[0], capture.image_size[1], capture.focal)
    written = []
    stem = Path(video_path).stem

    def front(p2, t):  # front faces of the outward-wound mesh turn clockwise in pixels (y down)
        a, b, c = p2[t[:, 0]], p2[t[:, 1]], p2[t[:, 2]]
        return t[(b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1]) < 0]

    for f in frames:
        source = int(capture.frame_indices[f])
        try:
            image = next(iter(open_video(video_path, source, source + 1, prefetch=0))).image
        except (VideoError, StopIteration) as e:
            raise CaptureError(f"cannot read frame {source} of {video_path} for the overlay") from e
        v_cam = fitted_vertices(capture, model, f)
        p2 = camera.project(v_cam)
        scale, offset = 1.0, np.zeros(2)
        if crop:
            face = p2[:stop]
            lo, hi = face.min(0), face.max(0)
            size = float((hi - lo).max()) * 1.3
            centre = (lo + hi) / 2
            x0, y0 = (centre - size / 2).astype(int)
            x1, y1 = x0 + int(size), y0 + int(size)
            pad = max(0, -x0, -y0, x1 - image.shape[1], y1 - image.shape[0])
            image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT)
            image = image[y0 + pad: y1 + pad, x0 + pad: x1 + pad]
            scale = max(1.0, 600.0 / max(image.shape[0], 1))
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
            offset = np.array([x0, y0], np.float64)
        q = (p2 - offset) * scale
        img = draw_mesh_overlay(image, q, front(q, tris), color=(0, 200, 0), alpha=0.35, front_only=False)
        for k in pupils:  # an iris-sized ring (about 6 mm radius) around each fitted pupil
            r = 0.006 * capture.focal / -v_cam[k, 2] * scale
            cv2.circle(img, tuple(np.round(q[k] * 16).astype(int)), int(round(r * 16)), (255, 255, 0), 2,
                       cv2.LINE_AA, 4)
        lm = q[model.landmarks68]
        for idx, closed in _CONTOURS:
            pts = np.round(lm[list(idx)] * 16).astype(np.int32)
            cv2.polylines(img, [pts], closed, (0, 255, 255), 2, cv2.LINE_AA, 4)
        if capture.landmarks is not None and np.isfinite(capture.landmarks[f]).all():
            det = capture.landmarks[f]
            det = det[MEDIAPIPE_TO_68] if len(det) == 478 else det
            img = draw_points(img, (det - offset) * scale, color=(0, 0, 255), radius=2)
            if len(capture.landmarks[f]) == 478:
                img = draw_points(img, (capture.landmarks[f][[468, 473]] - offset) * scale, (0, 0, 255), 3)
        label = f"frame {source}  {'tracked' if capture.tracked[f] else 'LOST'}  conf {capture.confidence[f]:.2f}"
        cv2.putText(img, label, (10, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
        path = out_dir / f"{stem}_{source:06d}.png"
        cv2.imwrite(str(path), img)
        written.append(path)
    return written
