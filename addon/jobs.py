"""Long work from Blender: where the caches live, the worker thread, and the capture job's two halves.

The worker thread runs only core code and writes only plain Python attributes (Worker.progress, .result,
.error); the main thread reads them from a timer and is the only one to touch bpy (build, UI state).
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bpy

from ..core.job import Cancelled, Job, Progress

# The one worker that may run at a time (the panel and the Cancel operator find it here).
ACTIVE: Worker | None = None


class InputError(ValueError):
    """Bad settings from the UI (no video, missing face model, ...): reported, nothing runs."""


def root_package() -> str:
    """The extension's package: bl_ext.<repo>.likeness inside Blender, 'likeness' when loaded from a checkout."""
    return __package__.rpartition(".")[0] or __package__


def is_extension() -> bool:
    return root_package().startswith("bl_ext.")


def preferences(context=None):
    addon = (context or bpy.context).preferences.addons.get(root_package())
    return addon.preferences if addon else None


def cache_dir(context=None) -> Path:
    """The face-model cache: the folder in preferences, else the extension's user folder (never its own
    install folder, which upgrades wipe), else (a checkout, tests) core's default ($LIKENESS_CACHE_DIR or
    ~/.cache/likeness), the same one the command line uses."""
    prefs = preferences(context)
    if prefs is not None and prefs.cache_dir:
        return Path(bpy.path.abspath(prefs.cache_dir))
    if is_extension():
        return Path(bpy.utils.extension_path_user(root_package(), path="cache", create=True))
    from ..core.facemodel import default_cache_dir

    return default_cache_dir()


def face_model_ready(context=None) -> bool:
    """The face-model cache and its MediaPipe correspondence are there (what 'Set up Face Model' makes)."""
    folder = cache_dir(context)
    if not (folder / "current.json").is_file():
        return False
    from ..core.facemodel.correspondence import correspondence_path

    try:
        return correspondence_path(folder).is_file()
    except Exception:  # noqa: BLE001 - an unreadable current.json: not ready, set up again
        return False


_OUTDATED: dict[Path, str | None] = {}  # cache folder -> why its correspondence wants refitting (None: current)


def correspondence_outdated(context=None) -> str | None:
    """Why the cache's landmark correspondence should be fitted again (an upgrade changed the code that fits
    it), or None; read once a session per cache folder (it reads the fitting code's source to tell)."""
    folder = cache_dir(context)
    if folder not in _OUTDATED:
        try:
            from ..core.facemodel.correspondence import load_correspondence
            from ..core.synth.correspondence_fit import stale_because

            _OUTDATED[folder] = stale_because(load_correspondence(folder), load_model(context))
        except Exception:  # noqa: BLE001 - no cache or no correspondence: face_model_ready says so instead
            _OUTDATED[folder] = None
    return _OUTDATED[folder]


def forget_correspondence_checks() -> None:
    """After a set-up: the next capture reads the (maybe refitted) correspondence's recipe again."""
    _OUTDATED.clear()


def load_model(context=None):
    from ..core.facemodel import load_face_model

    return load_face_model(cache_dir(context))


# --- the worker ----------------------------------------------------------------------------------------


class Worker:
    """Runs work(job) on a daemon thread; the main thread polls .done and reads .progress/.result/.error."""

    def __init__(self, work: Callable[[Job], Any], title: str, weights: dict[str, float] | None = None):
        self.title = title
        self.job = Job(on_progress=self._store, weights=dict(weights or {}))
        self.progress = Progress(stage="starting")
        self.result: Any = None
        self.error: BaseException | None = None
        self.error_trace = ""
        self.cancelled = False
        self.started = time.perf_counter()
        self._work = work
        self._thread = threading.Thread(target=self._run, name=f"likeness-{title}", daemon=True)

    def start(self) -> Worker:
        global ACTIVE
        if ACTIVE is not None and not ACTIVE.done:
            raise InputError(f"Likeness is busy ({ACTIVE.title}): wait for it or cancel it first")
        ACTIVE = self
        self._thread.start()
        return self

    def _store(self, progress: Progress) -> None:
        self.progress = progress  # one attribute write: atomic for the reading thread

    def _run(self) -> None:
        try:
            self.result = self._work(self.job)
        except Cancelled:
            self.cancelled = True
        except BaseException as e:  # everything reaches the main thread as a report
            self.error = e
            self.error_trace = traceback.format_exc()

    @property
    def done(self) -> bool:
        return self._thread.ident is not None and not self._thread.is_alive()

    def cancel(self) -> None:
        self.job.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done

    def release(self) -> None:
        global ACTIVE
        if ACTIVE is self:
            ACTIVE = None


def busy() -> bool:
    return ACTIVE is not None and not ACTIVE.done


_WARMING: threading.Thread | None = None  # the session's one warm-up (see warm_up_once)


def warm_up_once(context=None) -> threading.Thread | None:
    """The first time the panel shows with the face model set up: the fit's compiled kernels load on a thread
    (core.pipeline.warm_up_capture, ~0.8 s of CPU once a session), while the animator picks a video. Loaded
    during a capture instead, they slowed its landmark pass by about as much on two cores. Returns the thread
    it started, None where it had started one already."""
    global _WARMING
    if _WARMING is not None:
        return None
    folder = cache_dir(context)  # read here: the thread touches no bpy

    def load() -> None:
        from ..core.pipeline import warm_up_capture

        warm_up_capture(photometric=True, cache_dir=folder)

    _WARMING = threading.Thread(target=load, name="likeness-warm-up", daemon=True)
    _WARMING.start()
    return _WARMING


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "estimating..."
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds // 60 % 60:02d} min"


def show_progress(state, worker: Worker) -> None:
    """Copy the worker's progress into the scene's LikenessJobState (main thread)."""
    p = worker.progress
    state.running = not worker.done
    state.stage = p.stage or ""
    state.progress = min(1.0, max(0.0, p.fraction))
    state.frames_done = int(p.done)
    state.frames_total = int(p.total)
    state.eta = format_eta(p.eta_seconds)


def clear_progress(state, message: str) -> None:
    state.running = False
    state.stage = ""
    state.progress = 0.0
    state.eta = ""
    state.message = message


# --- the capture job -------------------------------------------------------------------------------------


@dataclass
class CaptureRequest:
    """Everything the capture needs, read from the UI on the main thread before the worker starts."""

    video: str
    cache_dir: Path
    start: int = 0
    end: int = -1
    stride: int = 1
    quality: str = "balanced"
    backend: str = "mediapipe"
    smoothing: float = 0.5
    neutral_frame: int = -1
    personalize: bool = False
    personal_shapes: bool = False
    photometric: bool = False
    background: bool = True


def request_from_settings(settings, context=None) -> CaptureRequest:
    """Validate the panel's settings; raises InputError with a message for the user."""
    raw = (settings.video_path or "").strip()
    if not raw:
        raise InputError("Choose a video first")
    video = bpy.path.abspath(raw)
    if not os.path.isfile(video):
        raise InputError(f"Video not found: {video}")
    if settings.frame_end >= 0 and settings.frame_end < settings.frame_start:
        raise InputError(f"End frame {settings.frame_end} is before start frame {settings.frame_start}")
    folder = cache_dir(context)
    if not face_model_ready(context):
        raise InputError(f"The face model is not set up (no complete cache in {folder}): press 'Set up Face Model'")
    return CaptureRequest(video=video, cache_dir=folder, start=settings.frame_start, end=settings.frame_end,
                          stride=settings.stride, quality=settings.quality, backend=settings.backend,
                          smoothing=settings.smoothing, neutral_frame=settings.neutral_frame,
                          personalize=settings.personalize, personal_shapes=settings.personal_shapes,
                          photometric=settings.photometric, background=settings.use_background)


def run_capture(request: CaptureRequest, job: Job):
    """Worker side: core.pipeline.run_capture with the request's options; returns its CaptureResult."""
    from ..core import pipeline

    # core finds its face-model cache through this variable where an API takes no folder.
    os.environ["LIKENESS_CACHE_DIR"] = str(request.cache_dir)
    options = pipeline.CaptureOptions(  # the panel's End is the last frame; the pipeline's stop is one past it
        start=request.start, stop=None if request.end < 0 else request.end + 1, stride=request.stride,
        quality=request.quality, backend=request.backend, smoothing=request.smoothing,
        neutral_frame=None if request.neutral_frame < 0 else request.neutral_frame,
        personalize=request.personalize, personal_shapes=request.personal_shapes,
        photometric=request.photometric)
    return pipeline.run_capture(request.video, options, job)


def capture_and_personal(result):
    """(Capture, PersonalModel or None) from a pipeline CaptureResult, or from a bare Capture (loaded files)."""
    return getattr(result, "capture", result), getattr(result, "personal", None)


DATA_KINDS = ("objects", "meshes", "materials", "images", "actions", "collections", "cameras", "movieclips",
              "shape_keys", "lights", "node_groups")


def snapshot() -> dict[str, set[int]]:
    """Pointers of the data-blocks that exist now, to remove what a failed build left behind."""
    return {kind: {d.as_pointer() for d in getattr(bpy.data, kind)} for kind in DATA_KINDS}


def remove_new(before: dict[str, set[int]]) -> None:
    for kind in ("objects", "collections", "meshes", "cameras", "lights", "materials", "images", "actions",
                 "movieclips", "node_groups"):
        data = getattr(bpy.data, kind)
        for d in [d for d in data if d.as_pointer() not in before[kind]]:
            data.remove(d)


def build_result(context, request: CaptureRequest, result, name: str = "Likeness"):
    """Main thread: the capture's head, keys and camera in the scene; nothing left behind on failure."""
    from .build import build_head

    capture, personal = capture_and_personal(result)
    model = load_model(context) if request.cache_dir is None else _model_from(request.cache_dir)
    before = snapshot()
    try:
        return build_head(context, capture, model, personal, name=name,
                          video_path=request.video if request.background else None)
    except BaseException:
        remove_new(before)
        raise


def _model_from(folder: Path):
    from ..core.facemodel import load_face_model

    return load_face_model(folder)
