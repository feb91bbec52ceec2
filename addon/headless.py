"""The whole job without UI: video (or a saved capture) -> head in the scene -> .blend (and a preview PNG).

`blender -b --python tools/blender_batch.py -- --video V --out OUT.blend` ends up in main(); tests call
run() through the bpy module. Progress goes to stdout; errors return a non-zero exit code with the message.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import bpy

from ..core.job import Cancelled, Job, Progress
from . import jobs

# The preview's longer side at most this many pixels: a 4K clip's preview at full size took 131 s of Cycles on
# 2 cores (the head's build 1.5 s); at 1280 it is ~9x fewer pixels. Clips up to 720p render at their own size.
PREVIEW_SIDE = 1280


class _Printer:
    """A progress line at most twice a second (and at each new stage), for logs and terminals."""

    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.last = 0.0
        self.stage = None

    def __call__(self, p: Progress) -> None:
        now = time.perf_counter()
        if p.stage == self.stage and now - self.last < 0.5 and p.done != p.total:
            return
        self.last, self.stage = now, p.stage
        eta = jobs.format_eta(p.eta_seconds)
        print(f"likeness: {p.fraction * 100:5.1f}% {p.stage} {p.done}/{p.total} (remaining {eta})",
              file=self.out, flush=True)


def run(
    video: str | None = None,
    *,
    capture: str | None = None,
    personal: str | None = None,
    out: str | None = None,
    render: str | None = None,
    render_size: int | None = PREVIEW_SIDE,
    start: int = 0,
    end: int = -1,
    stride: int = 1,
    quality: str = "balanced",
    backend: str = "mediapipe",
    smoothing: float = 0.5,
    neutral_frame: int = -1,
    personalize: bool = False,
    personal_shapes: bool = False,
    photometric: bool = False,
    background: bool = True,
    name: str = "Likeness",
    job: Job | None = None,
    context=None,
):
    """Capture `video` (or load `capture`, a saved .npz, and optionally `personal`), build the head in the
    current scene, save `out` (.blend) and render `render` (PNG, Cycles; its longer side at most `render_size`
    pixels, None or 0 for the clip's own size). Returns build.HeadBuild.

    Raises jobs.InputError for bad input, core.job.Cancelled when job was cancelled (nothing built).
    """
    context = context or bpy.context
    folder = jobs.cache_dir(context)
    if not jobs.face_model_ready(context):
        raise jobs.InputError(f"the face model is not set up in {folder}: run `python -m core setup` first")
    if video is None and capture is None:
        raise jobs.InputError("give a video or a capture file")
    if video is not None and not Path(video).is_file():
        raise jobs.InputError(f"video not found: {video}")
    for path, what in ((out, "the .blend"), (render, "the preview")):
        if path:
            _check_writable(Path(path), what)
    request = jobs.CaptureRequest(video=str(Path(video).resolve()) if video else "", cache_dir=folder,
                                  start=start, end=end, stride=stride, quality=quality, backend=backend,
                                  smoothing=smoothing, neutral_frame=neutral_frame, personalize=personalize,
                                  personal_shapes=personal_shapes, photometric=photometric,
                                  background=background and video is not None)
    if capture is not None:
        result = _load_saved(capture, personal)
    else:
        job = job or Job(on_progress=_Printer())
        result = jobs.run_capture(request, job)
    built = jobs.build_result(context, request, result, name=name)
    built.personal_error = getattr(result, "personal_error", None)  # main() says it; the head is the generic one
    if render:
        render_preview(context, built, render, size=render_size)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        bpy.ops.wm.save_as_mainfile(filepath=str(Path(out).resolve()), check_existing=False)
    return built


def _check_writable(path: Path, what: str) -> None:
    """Before the capture: a batch job of a long clip should not find out at its end that it cannot save."""
    from ..core.io.outputs import unwritable_because

    why = unwritable_because(path)
    if why:
        raise jobs.InputError(f"cannot write {what} to {path}: {why}")


def _load_saved(capture_path: str, personal_path: str | None):
    from ..core.io.capture import Capture, CaptureFileError

    try:
        capture = Capture.load(capture_path)
    except CaptureFileError as e:
        raise jobs.InputError(str(e)) from e
    personal = None
    if personal_path:
        from ..core.io.personal import PersonalModel, PersonalModelFileError

        try:
            personal = PersonalModel.load(personal_path)
        except PersonalModelFileError as e:
            raise jobs.InputError(str(e)) from e
    return _Saved(capture, personal)


class _Saved:
    def __init__(self, capture, personal):
        self.capture, self.personal = capture, personal


def add_preview_lighting(context, collection) -> None:
    """A key light beside the camera and a dim grey world, enough to look at the head."""
    scene = context.scene
    light = bpy.data.lights.new("Likeness Key Light", "AREA")
    light.energy = 8.0
    light.size = 0.5
    obj = bpy.data.objects.new("Likeness Key Light", light)
    obj.location = (0.4, -0.2, 0.5)
    obj.rotation_euler = (math.radians(75), 0.0, math.radians(60))
    collection.objects.link(obj)
    if scene.world is None:
        scene.world = bpy.data.worlds.new("Likeness World")
    scene.world.use_nodes = True
    scene.world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.3, 0.3, 0.3, 1.0)


def render_preview(context, built, path: str, *, frame: int | None = None, size: int | None = PREVIEW_SIDE,
                   samples: int = 16) -> str:
    """Render one frame with Cycles on the CPU through the capture's camera; returns the PNG path.

    size: the longer side at most this many pixels (the scene's resolution is kept; the render scaled down);
    None or 0: the scene's full resolution."""
    scene = context.scene
    if built.camera is None:
        raise jobs.InputError("the capture has no camera (no focal length): nothing to render through")
    add_preview_lighting(context, built.collection)
    scene.camera = built.camera
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    side = max(scene.render.resolution_x, scene.render.resolution_y)
    scene.render.resolution_percentage = max(1, int(100 * size / side)) if size and side > size else 100
    scene.frame_set(int(frame if frame is not None else built.frames[0]))
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = str(Path(path).resolve())
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.render.render(write_still=True)
    return scene.render.filepath


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="blender -b --python tools/blender_batch.py --",
                                description="Likeness: capture a face from a video into a .blend, headless")
    p.add_argument("--video", help="the video to capture")
    p.add_argument("--capture", help="a saved capture (.npz) to build instead of capturing")
    p.add_argument("--personal", help="a saved personal model (.npz) to build with --capture")
    p.add_argument("--out", required=True, help="the .blend to write")
    p.add_argument("--render", help="also render a preview PNG (Cycles, CPU)")
    p.add_argument("--render-size", type=int, default=PREVIEW_SIDE,
                   help=f"the preview's longer side at most this many pixels (default {PREVIEW_SIDE}; 0: the clip's)")
    p.add_argument("--start", type=int, default=0, help="first video frame (0-based)")
    # Inclusive, as the panel's End Frame and Blender's frame ranges are (`python -m core capture --end` stops
    # before its frame, as Python ranges do).
    p.add_argument("--end", type=int, default=-1, help="last video frame, included (-1: to the end)")
    p.add_argument("--stride", type=int, default=1, help="keep every n-th frame")
    p.add_argument("--quality", choices=("fast", "balanced", "accurate"), default="balanced")
    p.add_argument("--backend", choices=("mediapipe", "fan"), default="mediapipe")
    p.add_argument("--smoothing", type=float, default=0.5, help="temporal smoothing strength, 0 = raw fits")
    p.add_argument("--neutral-frame", type=int, default=-1,
                   help="video frame of a neutral face: weights are made relative to it (-1: none)")
    p.add_argument("--personalize", action="store_true", help="also model the person: their albedo on the head")
    p.add_argument("--shapes", action=argparse.BooleanOptionalAction, default=False,
                   help="with --personalize: also fit personal blendshapes (experimental; default: generic shapes "
                        "with the person's albedo)")
    p.add_argument("--photometric", action="store_true", help="refine the fit against the pixels (slower)")
    p.add_argument("--no-background", action="store_true", help="no video behind the camera")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if not args.video and not args.capture:
        print("likeness: give --video or --capture", file=sys.stderr)
        return 2
    bpy.ops.wm.read_factory_settings(use_empty=True)
    t0 = time.perf_counter()
    try:
        built = run(args.video, capture=args.capture, personal=args.personal, out=args.out, render=args.render,
                    render_size=args.render_size,
                    start=args.start, end=args.end, stride=args.stride, quality=args.quality,
                    backend=args.backend, smoothing=args.smoothing, neutral_frame=args.neutral_frame,
                    personalize=args.personalize, personal_shapes=args.shapes, photometric=args.photometric,
                    background=not args.no_background)
    except (jobs.InputError, Cancelled) as e:
        print(f"likeness: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # the message is for the user; the traceback for whoever reads the log
        import traceback

        traceback.print_exc()
        print(f"likeness: failed: {e}", file=sys.stderr)
        return 1
    print(f"likeness: wrote {args.out} ({len(built.frames)} keyed frames, {time.perf_counter() - t0:.1f} s)")
    if built.personal_error:  # asked for and not made: the .blend holds the generic head
        print(f"likeness: no personal model, the head is the generic one: {built.personal_error}", file=sys.stderr)
        return 1
    return 0
