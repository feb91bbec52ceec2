"""Benchmark: frames per second of render_face at 512x512 (full head, face about 300 px tall)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as bench/render.py from anywhere


def main() -> None:
    from core.facemodel import load_face_model
    from core.render.camera import Camera, transform
    from core.render.sh import SH_C0
    from core.render.shading import render_face

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--frames", type=int, default=60)
    args = p.parse_args()
    model = load_face_model()
    cam = Camera.from_fov(args.size, args.size, 50)
    # brow-to-chin is about 0.14 m in the ICT head; hairline-to-chin about 0.19 m
    distance = cam.focal * 0.19 / (300 * args.size / 512)
    rng = np.random.default_rng(0)
    albedo = rng.uniform(0.3, 0.9, (1024, 1024, 3)).astype(np.float32)
    sh = np.zeros((9, 3))
    sh[0] = 0.8 / SH_C0
    sh[2], sh[3] = 0.4, 0.2
    weights = rng.uniform(0, 0.5, (args.frames, model.n_expressions)).astype(np.float32)
    verts = model.vertices(None, weights)
    render_face(model, cam, transform(verts[0], np.zeros(3), np.array([0, 0, -distance])), albedo, sh)  # compile
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(args.frames):
        pose = np.array([5 * np.sin(i / 9), 20 * np.sin(i / 13), 3 * np.sin(i / 7)])
        v = transform(verts[i], pose, np.array([0, 0, -distance]))
        render_face(model, cam, v, albedo, sh, background=(0.2, 0.2, 0.2))
    fps = args.frames / (time.perf_counter() - t0)
    cpu_fps = args.frames / (time.process_time() - c0)
    # On a shared machine wall time includes waiting for a core; CPU time shows the uncontended rate.
    print(f"cpu_time_fps={cpu_fps:.1f}")
    print(f"render_fps={fps:.1f} size={args.size}")


if __name__ == "__main__":
    main()
