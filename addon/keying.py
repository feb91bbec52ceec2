"""Fast bulk keying: whole F-curves written from arrays, for any animatable ID (Blender 4.2 to 5.x).

One call writes one F-curve: `keyframe_points.add(n)` plus `foreach_set` of the (frame, value) pairs and
the interpolation, then one `fcurve.update()`. That is about 1000x faster than keyframe_insert per frame.

Works on any ID with animation data and any RNA path on it, e.g.

- shape keys: key_values(mesh.shape_keys, 'key_blocks["jawOpen"].value', 0, frames, values)
- objects:    key_values(obj, "location", 2, frames, z)
- pose bones: key_values(armature_obj, 'pose.bones["head"].rotation_quaternion', 0, frames, w)
- materials:  key_values(mat.node_tree, 'nodes["Mix"].inputs[0].default_value', 0, frames, values)

Blender 4.4+ stores F-curves in slotted (layered) actions: Action -> slot -> layer -> strip -> channelbag.
`Action.fcurves` still works in 4.4/4.5 as a legacy view but is gone in 5.0, so on 4.4+ this module always
goes through the channelbag of the ID's slot (creating action, slot, layer and strip as needed); on 4.2/4.3
it uses `Action.fcurves`.
"""

from __future__ import annotations

from collections.abc import Sequence

import bpy
import numpy as np

INTERPOLATIONS = ("CONSTANT", "LINEAR", "BEZIER")


def channels(id_data, action_name: str | None = None):
    """The F-curve collection that animates id_data (an ID), creating action/slot/channelbag as needed.

    The returned collection has .new(data_path, index=...), .find(data_path, index=...) and .remove(fc)
    on every supported Blender version.
    """
    adt = id_data.animation_data or id_data.animation_data_create()
    action = adt.action
    if action is None:
        action = bpy.data.actions.new(action_name or f"{id_data.name}Action")
        adt.action = action
    if not hasattr(action, "slots"):  # Blender 4.2/4.3: one F-curve list per action
        return action.fcurves
    slot = adt.action_slot
    if slot is None:
        # An action shared by several IDs gets one slot per ID; reuse a free one of the right type first.
        slot = next((s for s in action.slots if s.target_id_type == id_data.id_type and not s.users()), None)
        if slot is None:
            slot = action.slots.new(id_type=id_data.id_type, name=id_data.name)
        adt.action_slot = slot
    layer = action.layers[0] if len(action.layers) else action.layers.new("Layer")
    strip = layer.strips[0] if len(layer.strips) else layer.strips.new(type="KEYFRAME")
    return strip.channelbag(slot, ensure=True).fcurves


def key_values(
    id_data,
    data_path: str,
    index: int,
    frames: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    interpolation: str = "LINEAR",
    replace: bool = True,
    fcurves=None,
):
    """Write one F-curve: frames (n,) and values (n,) -> keyframes; returns the F-curve.

    Frames must be increasing (duplicates are merged by Blender, the later value wins). replace=True
    drops any keys the curve had; replace=False merges the new keys in (existing keys on the same frames
    are overwritten). Pass `fcurves` (from channels()) when keying many paths of one ID to skip the lookup.
    """
    frames = np.asarray(frames, np.float32).ravel()
    values = np.asarray(values, np.float32).ravel()
    if frames.shape != values.shape:
        raise ValueError(f"frames {frames.shape} and values {values.shape} differ in length")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation {interpolation!r} is not one of {INTERPOLATIONS}")
    if fcurves is None:
        fcurves = channels(id_data)
    fcurve = fcurves.find(data_path, index=index)
    if fcurve is not None and replace:
        fcurves.remove(fcurve)
        fcurve = None
    if fcurve is None:
        fcurve = fcurves.new(data_path, index=index)
    points = fcurve.keyframe_points
    old = len(points)
    n = len(frames)
    co = np.empty((n, 2), np.float32)
    co[:, 0] = frames
    co[:, 1] = values
    mode = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items[interpolation].value
    if old:  # merge: rewrite the whole curve, update() below sorts and removes duplicate frames
        before = np.empty(2 * old, np.float32)
        points.foreach_get("co", before)
        modes = np.empty(old, np.int32)
        points.foreach_get("interpolation", modes)
        keep = ~np.isin(before[0::2], frames)
        co = np.concatenate([before.reshape(-1, 2)[keep], co])
        modes = np.concatenate([modes[keep], np.full(n, mode, np.int32)])
        points.clear()
        points.add(len(co))
    else:
        modes = np.full(n, mode, np.int32)
        points.add(n)
    points.foreach_set("co", co.ravel())
    points.foreach_set("interpolation", modes)
    fcurve.update()
    return fcurve


def key_array(
    id_data,
    paths: Sequence[tuple[str, int]],
    frames: Sequence[float] | np.ndarray,
    values: np.ndarray,
    *,
    interpolation: str = "LINEAR",
    group: str | None = None,
) -> list:
    """Key many channels of one ID at the same frames: paths [(data_path, index)] x values (n, channels).

    Replaces the curves' keys; `group` puts the curves in a named F-curve group (Blender 4.4+ channelbag
    groups, or the action's groups before). Returns the F-curves in path order.
    """
    values = np.asarray(values, np.float32)
    if values.ndim != 2 or values.shape[1] != len(paths):
        raise ValueError(f"values {values.shape} should be (frames, {len(paths)})")
    fcurves = channels(id_data)
    grp = _group(id_data, group) if group else None
    out = []
    for c, (path, index) in enumerate(paths):
        fc = key_values(id_data, path, index, frames, values[:, c], interpolation=interpolation, fcurves=fcurves)
        if grp is not None:
            fc.group = grp
        out.append(fc)
    return out


def _group(id_data, name: str):
    action = id_data.animation_data.action
    if hasattr(action, "slots"):  # 4.4+: the channelbag owns the groups
        from bpy_extras.anim_utils import action_get_channelbag_for_slot

        groups = action_get_channelbag_for_slot(action, id_data.animation_data.action_slot).groups
    else:
        groups = action.groups
    return groups.get(name) or groups.new(name)


def clear(id_data) -> None:
    """Unassign and (if no one else uses it) delete the ID's action."""
    adt = id_data.animation_data
    if adt is None or adt.action is None:
        return
    action = adt.action
    adt.action = None
    if action.users == 0:
        bpy.data.actions.remove(action)
