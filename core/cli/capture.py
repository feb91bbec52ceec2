"""`python -m core capture VIDEO -o OUT.npz`: track the face in a video into a Capture, with a progress bar."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import UserError, writable_output
from .progress import ProgressBar


def add_arguments(p):
    p.add_argument("video", help="the video file (anything OpenCV's FFmpeg reads: mp4, mov, avi, mkv, webm)")
    p.add_argument("-o", "--output", required=True, help="the Capture .npz to write (a .json lands beside it)")
    p.add_argument("--start", type=int, default=0, help="first source frame (0-based)")
    p.add_argument("--end", type=int, default=None, help="stop before this source frame")
    p.add_argument("--stride", type=int, default=1, help="keep every n-th frame")
    p.add_argument("--backend", choices=("mediapipe", "fan"), default="mediapipe", help="landmark detector")
    p.add_argument("--quality", choices=("fast", "balanced", "accurate"), default="balanced")
    p.add_argument("--smoothing", type=float, default=0.5, help="temporal smoothing strength, 0 = raw fits")
    p.add_argument("--neutral-frame", type=int, default=None,
                   help="source frame index of a neutral face: weights are made relative to it")
    p.add_argument("--focal", type=float, default=None, help="focal length in pixels (default: estimated)")
    p.add_argument("--no-lighting", action="store_true", help="skip the per-frame SH lighting fit")
    p.add_argument("--photometric", action="store_true",
                   help="refine the fit against the pixels: closer weights and gaze, about half the speed")
    p.add_argument("--no-iris-gaze", action="store_true",
                   help="with --photometric: keep MediaPipe's iris points for the gaze, not the iris disc in the image")
    p.add_argument("--photometric-stride", type=int, default=None, metavar="N",
                   help="with --photometric: refine every N-th frame, interpolate the correction between (1 = all; "
                        "default 5)")
    p.add_argument("--csv", default=None, help="also write a Live Link Face CSV")
    p.add_argument("--overlay", default=None, metavar="DIR", help="write PNG overlays of the fitted mesh here")
    p.add_argument("--personalize", action="store_true",
                   help="also model the person (PERSON.npz beside OUT): their albedo maps on the fitted head "
                        "(with --shapes also personal blendshapes, and a re-track with them)")
    p.add_argument("--shapes", action=argparse.BooleanOptionalAction, default=False,
                   help="with --personalize: also fit personal blendshapes and re-track with them (experimental: "
                        "measured worse than the generic ones, see DESIGN.md); default: personal albedo only")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from ..job import Cancelled, Job
    from ..pipeline import CaptureError, CaptureOptions, run_capture, write_overlays

    options = CaptureOptions(start=args.start, stop=args.end, stride=args.stride, backend=args.backend,
                             quality=args.quality, smoothing=args.smoothing, neutral_frame=args.neutral_frame,
                             focal=args.focal, lighting=False if args.no_lighting else None,
                             personalize=args.personalize, personal_shapes=args.shapes,
                             photometric=args.photometric, iris_gaze=not args.no_iris_gaze)
    if args.photometric_stride is not None:
        options.photometric_stride = args.photometric_stride
    writable_output(args.output, "the capture")
    if args.csv:
        writable_output(args.csv, "the CSV")
    if args.overlay:
        writable_output(Path(args.overlay) / "overlay.png", "the overlays")
    bar = ProgressBar(quiet=args.quiet)

    try:
        result = run_capture(args.video, options, Job(on_progress=bar))
    except CaptureError as e:
        raise UserError(str(e)) from e
    except Cancelled as e:
        raise UserError("cancelled") from e
    finally:
        bar.close()
    capture = result.capture
    if result.personal is not None:
        person_path = result.personal.save(Path(args.output).with_suffix("").as_posix() + ".person.npz")
        capture.metadata["personal_model"] = str(person_path)
        print(f"{person_path}: personal model")
    out = capture.save(args.output)
    print(f"{out}: {capture.n_frames} frames, {int(capture.tracked.sum())} tracked, "
          f"{capture.fps:.2f} fps, focal {capture.focal:.0f} px")
    if args.csv:
        try:
            from ..io.livelink import export_csv
        except ImportError as e:
            raise UserError("Live Link CSV export is not available in this build") from e
        export_csv(capture, Path(args.csv))
        print(f"{args.csv}: Live Link Face CSV")
    if args.overlay:
        written = write_overlays(args.video, capture, Path(args.overlay))
        print(f"{args.overlay}: {len(written)} overlay PNGs")
    if result.personal_error:  # the capture is written; what was asked for beyond it was not made
        raise UserError(f"no personal model: {result.personal_error}")
    return 0
