"""Retarget speed: a 10-minute 30 fps capture (18,000 frames) keyed onto a character with 52 ARKit shape keys on
4 meshes (the Ready Player Me puppet in ../shared/puppets when present, else 4 built meshes), plus the head bone.

Run: .venv/bin/python bench/retarget.py [--frames 18000] [--built]. Last line: seconds=<retarget time>.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PUPPET = ROOT.parent / "shared" / "puppets" / "brunette-t.glb"


def _likeness():
    spec = importlib.util.spec_from_file_location("blender_batch", ROOT / "tools" / "blender_batch.py")
    batch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(batch)
    return batch.load_package()


def _built_character(bpy, names):
    """An armature with a Head bone and 4 child meshes (2,000 / 100 / 120 / 120 vertices), 52 keys each."""
    arm_data = bpy.data.armatures.new("Rig")
    arm = bpy.data.objects.new("Rig", arm_data)
    bpy.context.scene.collection.objects.link(arm)
    bpy.context.view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    bone = arm_data.edit_bones.new("Head")
    bone.head, bone.tail = (0, 0, 1.5), (0, 0, 1.7)
    bpy.ops.object.mode_set(mode="OBJECT")
    rng = np.random.default_rng(0)
    for name, n in (("Head", 2000), ("Teeth", 100), ("EyeLeft", 120), ("EyeRight", 120)):
        mesh = bpy.data.meshes.new(name)
        mesh.from_pydata(rng.normal(0, 0.1, (n, 3)).tolist(), [], [])
        obj = bpy.data.objects.new(name, mesh)
        bpy.context.scene.collection.objects.link(obj)
        obj.parent = arm
        obj.shape_key_add(name="Basis")
        for k in names:
            obj.shape_key_add(name=k, from_mix=False)
    return arm


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--frames", type=int, default=18000)
    p.add_argument("--built", action="store_true", help="build the 4 meshes even when the puppet is there")
    args = p.parse_args()
    likeness = _likeness()
    import bpy
    from likeness.addon import retarget_ops
    from likeness.core.facemodel.arkit import ARKIT_NAMES
    from likeness.core.io.capture import Capture
    from likeness.core.retarget import ICT_NAMES, auto_map

    likeness.register()
    try:
        _run(args, bpy, retarget_ops, auto_map, Capture, ICT_NAMES, ARKIT_NAMES)
    finally:
        # bpy 4.5 as a module hangs at exit while Python operators are still registered.
        likeness.unregister()


def _run(args, bpy, retarget_ops, auto_map, Capture, ICT_NAMES, ARKIT_NAMES) -> None:  # noqa: N803
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    if PUPPET.exists() and not args.built:
        bpy.ops.import_scene.gltf(filepath=str(PUPPET))
        arm, source = bpy.data.objects["Armature"], "puppet"
    else:
        arm, source = _built_character(bpy, ARKIT_NAMES), "built"
    settings = scene.likeness_retarget
    settings.target_object = arm
    meshes = retarget_ops.target_meshes(settings)
    mapping, _ = auto_map(retarget_ops.key_names(meshes))

    n = args.frames
    rng = np.random.default_rng(0)
    capture = Capture(names=ICT_NAMES, weights=rng.uniform(0, 1, (n, len(ICT_NAMES))),
                      tracked=rng.uniform(size=n) > 0.01, rotation=rng.normal(0, 5, (n, 3)),
                      translation=np.zeros((n, 3)), timestamps=np.arange(n) / 30.0, fps=30.0,
                      image_size=(1280, 720), focal=1000.0)
    head, eyes, _ = retarget_ops.head_and_eyes(settings, mapping, meshes)
    t0 = time.perf_counter()
    result = retarget_ops.retarget(bpy.context, capture, mapping, meshes, head=head, eyes=eyes)
    t1 = time.perf_counter()
    keys = sum(len(fc.keyframe_points) for a in bpy.data.actions for fc in a.fcurves)
    print(f"character={source} meshes={len(meshes)} mapped_keys={len(mapping.rows)} frames={n} "
          f"keyed_frames={result.frames} head={result.head or '-'} keyframes={keys}")
    print(f"seconds={t1 - t0:.2f}")


if __name__ == "__main__":
    main()
