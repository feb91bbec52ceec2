"""Keying speed: a 10-minute 30 fps capture (18,000 frames x 52 ARKit shape keys + head pose) onto the head.

Run: .venv/bin/python bench/keying.py [--frames 18000]. Last line: seconds=<keying time>.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _likeness():
    spec = importlib.util.spec_from_file_location("blender_batch", ROOT / "tools" / "blender_batch.py")
    batch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(batch)
    return batch.load_package()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--frames", type=int, default=18000)
    args = p.parse_args()
    _likeness()
    import bpy
    from likeness.addon import build
    from likeness.core.facemodel import load_face_model
    from likeness.core.io.capture import Capture

    model = load_face_model()
    n = args.frames
    rng = np.random.default_rng(0)
    capture = Capture(names=model.expression_names, weights=rng.uniform(0, 1, (n, len(model.expression_names))),
                      tracked=rng.uniform(size=n) > 0.01, rotation=rng.normal(0, 5, (n, 3)),
                      translation=rng.normal(0, 0.01, (n, 3)) + (0, 0, -0.6), timestamps=np.arange(n) / 30.0,
                      fps=30.0, image_size=(1280, 720), focal=1000.0)
    bpy.ops.wm.read_factory_settings(use_empty=True)

    t0 = time.perf_counter()
    one = Capture(names=capture.names, weights=capture.weights[:1], tracked=[True], rotation=capture.rotation[:1],
                  translation=capture.translation[:1], timestamps=capture.timestamps[:1], fps=30.0,
                  image_size=capture.image_size, focal=capture.focal)
    built = build.build_head(bpy.context, one, model)  # the head with one key: what a capture starts from
    t1 = time.perf_counter()
    frames, samples = build.capture_frames(capture)
    build._animate(built.head, capture, frames, samples)
    t2 = time.perf_counter()

    keys = built.head.data.shape_keys
    curves = list(build.keying.channels(keys)) + list(build.keying.channels(built.head))
    total = sum(len(fc.keyframe_points) for fc in curves)
    bpy.context.scene.frame_set(n // 2)
    t3 = time.perf_counter()
    for f in range(n // 2 + 1, n // 2 + 31):  # playback: one second of frames after the first evaluation
        bpy.context.scene.frame_set(f)
    t4 = time.perf_counter()
    print(f"frames={n} keyed_frames={len(frames)} fcurves={len(curves)} keys={total}")
    print(f"build_head_seconds={t1 - t0:.2f} first_frame_set_seconds={t3 - t2:.3f} "
          f"playback_fps={30 / (t4 - t3):.0f}")
    print(f"seconds={t2 - t1:.2f}")


if __name__ == "__main__":
    main()
