"""`python -m core convert IN OUT`: Capture .npz <-> Live Link Face .csv, chosen by the file extensions."""

from __future__ import annotations

from pathlib import Path

from . import UserError, writable_output


def add_arguments(p):
    p.add_argument("input", help="a capture .npz or a Live Link Face .csv")
    p.add_argument("output", help="the .csv or .npz to write")
    p.add_argument("--fps", type=float, default=None,
                   help="timecode frame rate of the CSV (reading: inferred when left out; writing: 60)")


def run(args) -> int:
    from ..io.capture import Capture, CaptureFileError
    from ..io.livelink import LiveLinkError, export_csv, import_csv

    src, dst = Path(args.input), Path(args.output)
    kinds = (src.suffix.lower(), dst.suffix.lower())
    writable_output(dst)
    try:
        if kinds == (".npz", ".csv"):
            capture = Capture.load(src)
            export_csv(capture, dst, fps=args.fps)
        elif kinds == (".csv", ".npz"):
            capture = import_csv(src, fps=args.fps)
            dst = capture.save(dst)
        else:
            raise UserError(f"convert goes .npz -> .csv or .csv -> .npz, not {kinds[0] or '?'} -> {kinds[1] or '?'}")
    except (CaptureFileError, LiveLinkError) as e:
        raise UserError(str(e)) from e
    print(f"{src} -> {dst}: {capture.n_frames} frames, {capture.fps:.2f} fps")
    return 0
