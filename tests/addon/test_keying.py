"""addon.keying: whole F-curves from arrays on objects, shape keys, pose bones and node trees."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")


@pytest.fixture
def keying(likeness, empty_scene):
    from likeness.addon import keying

    return keying


def _points(fcurve) -> np.ndarray:
    co = np.empty(2 * len(fcurve.keyframe_points), np.float32)
    fcurve.keyframe_points.foreach_get("co", co)
    return co.reshape(-1, 2)


def test_object_location_keys_and_evaluates(keying):
    obj = bpy.data.objects.new("o", None)
    bpy.context.scene.collection.objects.link(obj)
    frames = np.arange(1, 101, dtype=float)
    values = np.sin(frames / 10)
    fc = keying.key_values(obj, "location", 2, frames, values)
    co = _points(fc)
    assert len(co) == 100
    np.testing.assert_allclose(co[:, 0], frames)
    np.testing.assert_allclose(co[:, 1], values, atol=1e-6)
    assert {k.interpolation for k in fc.keyframe_points} == {"LINEAR"}
    bpy.context.scene.frame_set(37)
    assert obj.location.z == pytest.approx(values[36], abs=1e-5)
    if hasattr(bpy.types, "ActionSlot"):  # 4.4+: the ID has its own slot in a layered action
        assert obj.animation_data.action_slot is not None
        assert obj.animation_data.action_slot.target_id_type == "OBJECT"


def test_replace_and_merge(keying):
    obj = bpy.data.objects.new("o", None)
    keying.key_values(obj, "location", 0, [1, 2, 3], [1, 2, 3])
    fc = keying.key_values(obj, "location", 0, [10, 20], [5, 6])  # replace: only the new keys
    assert _points(fc)[:, 0].tolist() == [10, 20]
    fc = keying.key_values(obj, "location", 0, [15, 20, 30], [7, 8, 9], replace=False)
    np.testing.assert_allclose(_points(fc), [[10, 5], [15, 7], [20, 8], [30, 9]])


def test_key_array_shape_keys_with_group(keying):
    mesh = bpy.data.meshes.new("m")
    mesh.vertices.add(1)
    obj = bpy.data.objects.new("o", mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.shape_key_add(name="Basis")
    for name in ("a", "b"):
        obj.shape_key_add(name=name)
    key = mesh.shape_keys
    values = np.array([[0.1, 0.9], [0.2, 0.8], [0.3, 0.7]])
    fcs = keying.key_array(key, [('key_blocks["a"].value', 0), ('key_blocks["b"].value', 0)],
                           [5, 6, 7], values, group="Face")
    assert [fc.group.name for fc in fcs] == ["Face", "Face"]
    bpy.context.scene.frame_set(6)
    assert key.key_blocks["b"].value == pytest.approx(0.8)
    with pytest.raises(ValueError, match="values"):
        keying.key_array(key, [('key_blocks["a"].value', 0)], [1, 2], values)


def test_pose_bone_and_node_tree(keying):
    arm = bpy.data.armatures.new("arm")
    rig = bpy.data.objects.new("rig", arm)
    bpy.context.scene.collection.objects.link(rig)
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    bone = arm.edit_bones.new("head")
    bone.tail = (0, 0, 1)
    bpy.ops.object.mode_set(mode="OBJECT")
    fc = keying.key_values(rig, 'pose.bones["head"].rotation_quaternion', 1, [1, 11], [0.0, 0.5])
    assert len(fc.keyframe_points) == 2
    bpy.context.scene.frame_set(6)
    assert rig.pose.bones["head"].rotation_quaternion[1] == pytest.approx(0.25, abs=1e-5)

    mat = bpy.data.materials.new("m")
    mat.use_nodes = True
    fc = keying.key_values(mat.node_tree, 'nodes["Principled BSDF"].inputs[2].default_value', 0, [1, 2], [0, 1],
                           interpolation="CONSTANT")
    assert fc.keyframe_points[0].interpolation == "CONSTANT"


def test_bad_input(keying):
    obj = bpy.data.objects.new("o", None)
    with pytest.raises(ValueError, match="differ"):
        keying.key_values(obj, "location", 0, [1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="interpolation"):
        keying.key_values(obj, "location", 0, [1], [1], interpolation="SMOOTH")
