"""`python -m core model VIDEO CAPTURE.npz -o PERSON.npz`: build a PersonalModel, with a progress bar."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import UserError, writable_output
from .progress import ProgressBar


def add_arguments(p):
    p.add_argument("video", help="the video the capture was made from")
    p.add_argument("capture", help="its Capture .npz (from `python -m core capture`)")
    p.add_argument("-o", "--output", required=True,
                   help="the PersonalModel .npz to write (.json and PNG textures land beside it)")
    p.add_argument("--keyframes", type=int, default=30, help="keyframes for the photometric term and lighting")
    p.add_argument("--shapes", action=argparse.BooleanOptionalAction, default=False,
                   help="also fit personal blendshapes (experimental: on synthetic and real clips they measure "
                        "worse than the generic ones, see DESIGN.md); default: the generic shapes, personal albedo")
    p.add_argument("--no-dynamic", action="store_true", help="no dynamic (expression-dependent) albedo")
    p.add_argument("--albedo-size", type=int, default=1024, help="static albedo map size (>= 1024)")
    p.add_argument("--retrack", action="store_true",
                   help="with --shapes: track the capture's landmarks again with the personal model, repeating "
                        "while the fit improves; writes the re-tracked capture beside the model as "
                        "<output>.capture.npz (without --shapes there is nothing to re-track with)")
    p.add_argument("--generic-on-failure", action="store_true",
                   help="write a generic model (with a warning) where the face is mostly untracked")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from ..io.capture import Capture, CaptureFileError
    from ..job import Cancelled, Job
    from ..modeling import ModelingError, ModelingOptions, build_personal_model, personalize

    if args.albedo_size < 1024:
        raise UserError(f"--albedo-size must be at least 1024, got {args.albedo_size}")
    if args.keyframes < 1:
        raise UserError(f"--keyframes must be at least 1, got {args.keyframes}")
    writable_output(args.output, "the personal model")
    try:
        capture = Capture.load(args.capture)
    except CaptureFileError as e:
        raise UserError(str(e)) from e
    options = ModelingOptions(keyframes=args.keyframes, personal_shapes=args.shapes,
                              dynamic_albedo=not args.no_dynamic,
                              on_poor_tracking="generic" if args.generic_on_failure else "error")
    options.albedo.size = args.albedo_size
    bar = ProgressBar(quiet=args.quiet)

    job = Job(on_progress=bar)
    try:
        if args.retrack:
            person, capture = personalize(args.video, capture, options, job)
        else:
            person = build_personal_model(args.video, capture, options, job)
    except ModelingError as e:
        raise UserError(str(e)) from e
    except Cancelled as e:
        raise UserError("cancelled") from e
    finally:
        bar.close()
    person.metadata["source_capture"] = str(Path(args.capture))
    out = person.save(args.output)
    for w in person.metadata.get("warnings", []):
        print(f"likeness: warning: {w}", file=sys.stderr)
    fitted = person.metadata.get("fitted_shapes", [])
    eyes = "not seen" if person.eye_colour is None else "RGB " + " ".join(f"{c:.2f}" for c in person.eye_colour)
    print(f"{out}: {len(fitted)} personalized shapes, albedo {person.albedo.shape[0]} px, dynamic albedo for "
          f"{len(person.dynamic_albedo_names)} shapes ({', '.join(person.dynamic_albedo_names) or 'none'}), "
          f"eye colour {eyes}; {person.metadata.get('timing', {}).get('total_s', 0):.1f} s")
    if args.retrack:
        capture.metadata["personal_model"] = {"id": person.id, "path": str(out)}
        cap_out = capture.save(Path(str(out.with_suffix("")) + ".capture.npz"))
        print(f"{cap_out}: capture tracked with the personal model "
              f"(landmark RMS {person.metadata.get('tracking_rms_px')})")
    return 0
