"""`python -m core synth`: render a synthetic clip with its ground truth (video.mp4 + truth.npz)."""

from __future__ import annotations

import sys
import time

from . import UserError


def add_arguments(p):
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same clip)")
    p.add_argument("--frames", type=int, default=90, help="number of frames")
    p.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("W", "H"), help="frame size")
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--personal", action="store_true",
                   help="add personal shape corrections and expression-dependent albedo")
    p.add_argument("--albedo-size", type=int, default=1024, help="albedo atlas size in texels")
    p.add_argument("-o", "--out", required=True, help="output folder")


def run(args) -> int:
    from ..facemodel import FaceModelSourceError
    from ..job import Job
    from ..synth import generate

    if args.frames < 1:
        raise UserError(f"--frames must be at least 1, got {args.frames}")
    if min(args.size) < 32:
        raise UserError(f"--size must be at least 32x32, got {args.size[0]}x{args.size[1]}")
    if args.albedo_size < 64:
        raise UserError(f"--albedo-size must be at least 64, got {args.albedo_size}")
    t0 = time.perf_counter()

    def progress(p):
        if p.stage == "render":
            print(f"\rrendering frame {p.done}/{p.total}", end="", file=sys.stderr, flush=True)

    try:
        generate(args.seed, args.frames, tuple(args.size), personal=args.personal, fps=args.fps,
                 out_dir=args.out, job=Job(on_progress=progress), albedo_size=args.albedo_size)
    except FaceModelSourceError as e:
        raise UserError(str(e)) from e
    except (OSError, ValueError) as e:
        raise UserError(f"cannot write the clip to {args.out}: {e}") from e
    dt = time.perf_counter() - t0
    print(f"\r{args.frames} frames in {dt:.1f} s ({args.frames / dt:.1f} frames/s): {args.out}/video.mp4, "
          f"{args.out}/truth.npz", file=sys.stderr)
    return 0
