"""`python -m core setup`: build the face-model cache from the ICT-FaceKit source."""

from __future__ import annotations

import time

from . import UserError


def add_arguments(p):
    p.add_argument("--source", help="ICT-FaceKit folder, .zip or .tar.xz (default: $LIKENESS_ICT_SOURCE)")
    p.add_argument("--cache-dir", help="cache folder (default: ~/.cache/likeness)")


def run(args) -> int:
    from ..facemodel import FaceModelSourceError, load_face_model
    from ..facemodel.cache import build_cache

    t0 = time.perf_counter()
    try:
        folder = build_cache(args.source, args.cache_dir)
        t1 = time.perf_counter()
        model = load_face_model(args.cache_dir)
    except FaceModelSourceError as e:
        raise UserError(str(e)) from e
    t2 = time.perf_counter()
    size = sum(f.stat().st_size for f in folder.iterdir()) / 1e6
    print(f"face model: {folder} ({size:.0f} MB, {model.n_vertices} vertices, {model.n_expressions} "
          f"expressions, {model.n_identities} identities); set-up {t1 - t0:.1f} s, load {1000 * (t2 - t1):.0f} ms")
    _landmark_correspondence(args, model)
    return 0


def _landmark_correspondence(args, model) -> None:
    """MediaPipe-478 -> ICT surface points, fitted once per face model and build recipe (about a minute)."""
    from ..facemodel.correspondence import correspondence_path
    from ..synth.correspondence_fit import ensure_correspondence

    def announce(why: str) -> None:
        print(f"landmark correspondence: {why}; fitting to MediaPipe on synthetic renders (about a minute)...",
              flush=True)

    corr, _ = ensure_correspondence(args.cache_dir, model, announce=announce)
    print(f"landmark correspondence: {correspondence_path(args.cache_dir)} ({corr.method})")
