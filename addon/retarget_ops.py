"""Retargeting in Blender: find a character's shape-key meshes, auto-map, key a capture onto them in bulk,
put head and eye rotations on bones, and the Live Link Face CSV import/export operators.

The numbers come from core.retarget (mapping, apply, rotations); this module only finds data-blocks,
converts core's Y-up frame to Blender's Z-up one (as addon.build does) and hands arrays to addon.keying.
Every operator checks its whole input first and changes nothing when something is wrong.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np
from bpy.props import BoolProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from ..core.facemodel.arkit import ARKIT_NAMES
from ..core.io.capture import Capture, CaptureFileError
from ..core.io.livelink import LiveLinkError, export_csv, import_csv
from ..core.retarget import Mapping, MappingError, MappingRow, apply, auto_map, capture_sources
from ..core.retarget.mapping import SOURCE_NAMES
from ..core.retarget.pose import gaze_rotations, head_rotations, matrices_to_quaternions
from . import keying
from .build import capture_frames

# core (x, y, z) Y up -> Blender (x, -z, y) Z up, as addon.build: C = Rx(+90 deg).
C = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
HEAD_BONE_NAMES = ("Head", "head", "DEF-head", "CC_Base_Head", "mixamorig:Head", "J_Bip_C_Head")
EYE_BONE_NAMES = {"L": ("LeftEye", "eye.L", "Eye_L", "eye_L", "CC_Base_L_Eye", "mixamorig:LeftEye", "J_Adj_L_FaceEye"),
                  "R": ("RightEye", "eye.R", "Eye_R", "eye_R", "CC_Base_R_Eye", "mixamorig:RightEye",
                        "J_Adj_R_FaceEye")}

# The capture chosen by the last import/capture in this session (the "Last capture" source).
_LAST: dict = {"capture": None, "label": ""}
_CACHE: dict = {}


class RetargetError(Exception):
    """Bad input for a retarget operation; the message is for the user."""


def remember_capture(capture: Capture, label: str = "") -> None:
    """Make `capture` the session's last capture (called after Capture from Video and CSV import)."""
    _LAST["capture"] = capture
    _LAST["label"] = label or f"{capture.n_frames} frames"


def last_capture() -> Capture | None:
    return _LAST["capture"]


def load_capture(path: str) -> Capture:
    """A .npz capture or a Live Link Face .csv, cached by path and modification time."""
    p = Path(bpy.path.abspath(path)) if path else None
    if p is None or not str(path).strip():
        raise RetargetError("no capture: choose a capture file (.npz or Live Link .csv)")
    if not p.is_file():
        raise RetargetError(f"capture file not found: {p}")
    key = (str(p), p.stat().st_mtime_ns)
    if key in _CACHE:
        return _CACHE[key]
    try:
        capture = import_csv(p) if p.suffix.lower() == ".csv" else Capture.load(p)
    except (CaptureFileError, LiveLinkError) as e:
        raise RetargetError(str(e)) from e
    _CACHE.clear()
    _CACHE[key] = capture
    return capture


def active_capture(settings) -> Capture:
    if settings.capture_source == "LAST":
        if _LAST["capture"] is None:
            raise RetargetError("no capture in this session yet: capture a video, import a Live Link CSV, "
                                "or choose a capture file")
        return _LAST["capture"]
    return load_capture(settings.capture_path)


# --- the target ---------------------------------------------------------------------------------------

def target_objects(settings) -> list[bpy.types.Object]:
    if settings.target_type == "COLLECTION":
        return list(settings.target_collection.all_objects) if settings.target_collection else []
    obj = settings.target_object
    if obj is None:
        return []
    if obj.type == "ARMATURE":
        return [obj, *obj.children_recursive]
    return [obj]


def target_meshes(settings) -> list[bpy.types.Object]:
    """Mesh objects of the target with shape keys, one per shape-key data-block."""
    seen, out = set(), []
    for obj in target_objects(settings):
        if obj.type != "MESH" or obj.data.shape_keys is None or len(obj.data.shape_keys.key_blocks) < 2:
            continue
        key = obj.data.shape_keys.as_pointer()
        if key not in seen:
            seen.add(key)
            out.append(obj)
    return out


def target_armature(settings) -> bpy.types.Object | None:
    objs = target_objects(settings)
    for obj in objs:
        if obj.type == "ARMATURE":
            return obj
    for obj in objs:
        parent = obj.parent
        if parent is not None and parent.type == "ARMATURE":
            return parent
        for mod in getattr(obj, "modifiers", ()):
            if mod.type == "ARMATURE" and mod.object is not None:
                return mod.object
    return None


def key_names(meshes) -> list[str]:
    """Shape key names over all meshes, in first-seen order, without the reference (basis) keys."""
    names: dict[str, None] = {}
    for obj in meshes:
        keys = obj.data.shape_keys
        for kb in keys.key_blocks:
            if kb != keys.reference_key:
                names.setdefault(kb.name)
    return list(names)


def find_bone(armature, wanted: str, fallbacks=()) -> str | None:
    if armature is None:
        return None
    bones = armature.data.bones
    for name in (wanted, *fallbacks):
        if name and name in bones:
            return name
    return None


# --- mapping rows <-> Mapping ---------------------------------------------------------------------------

def rows_to_mapping(settings) -> Mapping:
    """UI rows -> Mapping: rows sharing a target are one mapping row (weights summed per source), and its
    offset/clamp/gain/gamma come from the first of them."""
    source = settings.source_names.lower()
    known = set(SOURCE_NAMES[source])
    rows: dict[str, MappingRow] = {}
    for i, item in enumerate(settings.rows):
        if not item.target:
            raise RetargetError(f"mapping row {i + 1} has no target key")
        if item.source and item.source not in known:
            raise RetargetError(f"mapping row {i + 1} ({item.target}): unknown {source} source {item.source!r}")
        if item.clamp_min > item.clamp_max:
            raise RetargetError(f"mapping row {i + 1} ({item.target}): clamp min is above max")
        row = rows.get(item.target)
        if row is None:
            row = rows[item.target] = MappingRow(
                item.target, {}, offset=item.offset,
                clamp=(item.clamp_min, item.clamp_max) if item.use_clamp else None,
                gain=item.gain, gamma=item.gamma)
        if item.source:
            row.sources[item.source] = row.sources.get(item.source, 0.0) + item.weight
    return Mapping(rows=list(rows.values()), source=source, name="")


def mapping_to_rows(settings, mapping: Mapping) -> None:
    settings.rows.clear()
    settings.source_names = mapping.source.upper()
    for row in mapping.rows:
        sources = sorted(row.sources.items(), key=lambda kv: -abs(kv[1])) or [("", 0.0)]
        for s, w in sources:
            item = settings.rows.add()
            item.target, item.source, item.weight = row.target, s, w
            item.offset, item.gain, item.gamma = row.offset, row.gain, row.gamma
            item.use_clamp = row.clamp is not None
            if row.clamp is not None:
                item.clamp_min, item.clamp_max = row.clamp
    settings.active_row = 0


def presets_dir() -> Path:
    """Mapping presets: the extension's user folder, or a temp folder when not installed as an extension."""
    package = __package__.rpartition(".")[0] or __package__
    try:
        folder = Path(bpy.utils.extension_path_user(package, path="mappings", create=True))
    except (ValueError, TypeError, RuntimeError, AttributeError):
        folder = Path(tempfile.gettempdir()) / "likeness" / "mappings"
        folder.mkdir(parents=True, exist_ok=True)
    return folder


# --- keying ------------------------------------------------------------------------------------------

@dataclass
class RetargetResult:
    frames: int = 0
    meshes: dict[str, int] = field(default_factory=dict)  # mesh object -> keys keyed on it
    head: str = ""
    eyes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


def check_mapping(mapping: Mapping, meshes) -> None:
    if not meshes:
        raise RetargetError("the target has no mesh with shape keys")
    if not mapping.rows:
        raise RetargetError("the mapping is empty: press Auto-map or load a mapping")
    present = set(key_names(meshes))
    absent = [t for t in mapping.targets if t not in present]
    if absent:
        shown = ", ".join(absent[:6]) + (f" and {len(absent) - 6} more" if len(absent) > 6 else "")
        raise RetargetError(f"the mapping names shape keys the target does not have: {shown}")


def retarget(context, capture: Capture, mapping: Mapping, meshes, *, head=None, eyes=None,
             reference: str = "median", set_range: bool = True) -> RetargetResult:
    """Key the capture onto every mesh that has the mapped keys, at the scene's frame rate.

    head: None, ("BONE", armature, bone_name) or ("OBJECT", obj); eyes: None or (armature, left, right).
    Untracked samples are not keyed (their curves interpolate across), as in addon.build.
    """
    t0 = time.perf_counter()
    check_mapping(mapping, meshes)
    if not np.any(capture.tracked):
        raise RetargetError("the capture has no tracked frame")
    scene = context.scene
    frames, samples = capture_frames(capture, scene_fps(scene))
    x, names = capture_sources(capture.names, capture.weights[samples], mapping.source)
    values = apply(mapping, x, names)  # (keys, targets)
    result = RetargetResult(frames=len(frames))
    column = {t: i for i, t in enumerate(mapping.targets)}
    keyed: dict[tuple[str, ...], bpy.types.Key] = {}  # mapped key set -> the Key whose curves carry it
    for obj in meshes:
        keys = obj.data.shape_keys
        here = tuple(t for t in mapping.targets if t in keys.key_blocks)
        if not here:
            continue
        first = keyed.get(here)
        if first is not None and _share_animation(first, keys):
            pass  # same keys, same values: the meshes share one action (and slot), keyed once
        else:
            paths = [(f'key_blocks["{bpy.utils.escape_identifier(t)}"].value', 0) for t in here]
            keying.key_array(keys, paths, frames, values[:, [column[t] for t in here]], group="Likeness")
            keyed.setdefault(here, keys)
        for t in here:  # show the first keyed value without a frame change
            keys.key_blocks[t].value = float(values[0, column[t]])
        result.meshes[obj.name] = len(here)
    if head is not None:
        rot = head_rotations(capture.rotation[samples], reference)
        result.head = _key_rotation(head, rot, frames)
    if eyes is not None:
        if capture.gaze is None:
            result.notes.append("the capture has no gaze; eye bones not keyed")
        else:
            armature, left, right = eyes
            g = gaze_rotations(capture.gaze[samples])
            for name, i in ((left, 0), (right, 1)):
                if name:
                    _key_rotation(("BONE", armature, name), g[:, i], frames)
                    result.eyes.append(name)
    if set_range:
        scene.frame_start, scene.frame_end = int(frames.min()), int(frames.max())
    result.seconds = time.perf_counter() - t0
    return result


def _share_animation(source: bpy.types.Key, keys: bpy.types.Key) -> bool:
    """Let `keys` play `source`'s action when that loses nothing: it has no action, or already this one."""
    action = source.animation_data.action
    own = keys.animation_data.action if keys.animation_data else None
    if own is not None and own != action:
        return False
    adt = keys.animation_data or keys.animation_data_create()
    adt.action = action
    if hasattr(action, "slots"):  # Blender 4.4+: one slot can animate several data-blocks
        adt.action_slot = source.animation_data.action_slot
    return True


def _key_rotation(where, rot_core: np.ndarray, frames: np.ndarray) -> str:
    """Key (keys, 3, 3) core-frame rotations as quaternions on a pose bone or an object."""
    r_world = C @ rot_core @ C.T  # the same turn in Blender's Z-up frame (characters face -Y)
    if where[0] == "BONE":
        _, armature, bone_name = where
        b = np.array(armature.matrix_world.to_3x3().normalized() @ armature.data.bones[bone_name].matrix_local.to_3x3())
        b /= np.linalg.norm(b, axis=0, keepdims=True)
        local = b.T @ r_world @ b  # pose rotations act in the bone's rest frame
        pbone = armature.pose.bones[bone_name]
        pbone.rotation_mode = "QUATERNION"
        q = matrices_to_quaternions(local)
        path = f'pose.bones["{bpy.utils.escape_identifier(bone_name)}"].rotation_quaternion'
        keying.key_array(armature, [(path, i) for i in range(4)], frames, q, group=bone_name)
        pbone.rotation_quaternion = q[0].tolist()
        return f"{armature.name}:{bone_name}"
    _, obj = where
    rest = np.array(obj.matrix_basis.to_3x3().normalized())
    q = matrices_to_quaternions(r_world @ rest)
    obj.rotation_mode = "QUATERNION"
    keying.key_array(obj, [("rotation_quaternion", i) for i in range(4)], frames, q, group="Head Rotation")
    obj.rotation_quaternion = q[0].tolist()
    return obj.name


def _bound_to(obj, bone: str) -> bool:
    """Whether some vertex of obj follows `bone` by more than half (it is, e.g., that eyeball)."""
    group = obj.vertex_groups.get(bone)
    if group is None:
        return obj.parent_type == "BONE" and obj.parent_bone == bone
    index = group.index
    return any(g.group == index and g.weight > 0.5 for v in obj.data.vertices for g in v.groups)


def eyes_moved_by_keys(mapping: Mapping, meshes, bone: str) -> bool:
    """True when a mesh bound to the eye bone has mapped eyeLook keys (Ready Player Me eyeballs): keying the
    bone as well would turn the eye twice."""
    look = {r.target for r in mapping.rows if any(s.startswith("eyeLook") for s in r.sources)}
    return any(_bound_to(obj, bone) for obj in meshes if look & set(obj.data.shape_keys.key_blocks.keys()))


def head_and_eyes(settings, mapping: Mapping | None = None, meshes=()):
    """(head, eyes, notes) arguments for retarget() from the panel settings."""
    armature = target_armature(settings)
    head, notes = None, []
    if settings.head_mode in ("AUTO", "BONE"):
        wanted = settings.head_bone
        bone = find_bone(armature, wanted, HEAD_BONE_NAMES if settings.head_mode == "AUTO" else ())
        if bone:
            head = ("BONE", armature, bone)
        elif settings.head_mode == "BONE":
            where = armature.name if armature else "no armature in the target"
            raise RetargetError(f"head bone {wanted!r} not found ({where})")
    elif settings.head_mode == "OBJECT":
        if settings.head_object is None:
            raise RetargetError("choose the object that takes the head rotation")
        head = ("OBJECT", settings.head_object)
    eyes = None
    if settings.gaze_mode != "NONE" and armature is not None:
        found = [find_bone(armature, settings.left_eye_bone, EYE_BONE_NAMES["L"]),
                 find_bone(armature, settings.right_eye_bone, EYE_BONE_NAMES["R"])]
        if settings.gaze_mode == "AUTO" and mapping is not None:
            for i, bone in enumerate(found):
                if bone and eyes_moved_by_keys(mapping, meshes, bone):
                    notes.append(f"{bone} turns with its eyeLook shape keys; bone left alone")
                    found[i] = None
        if any(found):
            eyes = (armature, *found)
    return head, eyes, notes


def _settings(context):
    return context.scene.likeness_retarget


def _shorten(names, n=12) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


# --- operators ------------------------------------------------------------------------------------------

class LIKENESS_OT_retarget_auto_map(bpy.types.Operator):
    """Match the target's shape keys to capture shapes by name (ARKit, Character Creator, VRM, VRoid, visemes)"""

    bl_idname = "likeness.retarget_auto_map"
    bl_label = "Auto-map"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = _settings(context)
        meshes = target_meshes(settings)
        if not meshes:
            self.report({"ERROR"}, "Likeness: the target has no mesh with shape keys")
            return {"CANCELLED"}
        mapping, report = auto_map(key_names(meshes), source=settings.source_names.lower())
        mapping_to_rows(settings, mapping)
        settings.report = report.summary()
        self.report({"INFO"}, f"Likeness: {len(mapping.rows)} keys mapped on {len(meshes)} meshes")
        if report.unmapped:
            self.report({"INFO"}, f"Not mapped: {_shorten(report.unmapped)}")
        if report.arkit_not_driven:
            self.report({"INFO"}, f"Capture shapes the character lacks: {_shorten(report.arkit_not_driven)}")
        return {"FINISHED"}


class LIKENESS_OT_retarget_row_add(bpy.types.Operator):
    """Add a mapping row (several rows with the same target key add up)"""

    bl_idname = "likeness.retarget_row_add"
    bl_label = "Add Mapping Row"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = _settings(context)
        item = settings.rows.add()
        if len(settings.rows) > 1:
            item.target = settings.rows[settings.active_row].target
        item.source, item.weight = ARKIT_NAMES[0] if settings.source_names == "ARKIT" else "", 1.0
        settings.active_row = len(settings.rows) - 1
        return {"FINISHED"}


class LIKENESS_OT_retarget_row_remove(bpy.types.Operator):
    """Remove the selected mapping row"""

    bl_idname = "likeness.retarget_row_remove"
    bl_label = "Remove Mapping Row"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return len(_settings(context).rows) > 0

    def execute(self, context):
        settings = _settings(context)
        settings.rows.remove(settings.active_row)
        settings.active_row = max(0, min(settings.active_row, len(settings.rows) - 1))
        return {"FINISHED"}


class LIKENESS_OT_retarget_save_mapping(bpy.types.Operator):
    """Save the mapping rows as a JSON preset in the extension's user folder"""

    bl_idname = "likeness.retarget_save_mapping"
    bl_label = "Save Mapping Preset"

    name: StringProperty(name="Name", default="my-character")

    def invoke(self, context, event):
        return context.window_manager.invoke_props_dialog(self)

    def execute(self, context):
        name = bpy.path.clean_name(self.name.strip()) if self.name.strip() else ""
        if not name:
            self.report({"ERROR"}, "Likeness: give the preset a name")
            return {"CANCELLED"}
        try:
            mapping = rows_to_mapping(_settings(context))
        except (RetargetError, MappingError) as e:
            self.report({"ERROR"}, f"Likeness: {e}")
            return {"CANCELLED"}
        mapping.name = name
        path = mapping.save(presets_dir() / f"{name}.json")
        self.report({"INFO"}, f"Likeness: saved {len(mapping.rows)} rows to {path}")
        return {"FINISHED"}


class LIKENESS_OT_retarget_load_mapping(bpy.types.Operator, ImportHelper):
    """Load a mapping (JSON) into the rows"""

    bl_idname = "likeness.retarget_load_mapping"
    bl_label = "Load Mapping"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".json"
    filter_glob: StringProperty(default="*.json", options={"HIDDEN"})

    def invoke(self, context, event):
        if not self.filepath:
            self.filepath = str(presets_dir()) + os.sep
        return super().invoke(context, event)

    def execute(self, context):
        settings = _settings(context)
        try:
            mapping = Mapping.load(self.filepath)
        except MappingError as e:
            self.report({"ERROR"}, f"Likeness: {e}")
            return {"CANCELLED"}
        meshes = target_meshes(settings)
        absent = [t for t in mapping.targets if t not in set(key_names(meshes))] if meshes else []
        mapping_to_rows(settings, mapping)
        settings.report = f"loaded {Path(self.filepath).name}: {len(mapping.rows)} rows"
        self.report({"INFO"}, f"Likeness: loaded {len(mapping.rows)} rows from {Path(self.filepath).name}")
        if absent:
            self.report({"WARNING"}, f"Likeness: the target lacks these mapped keys: {_shorten(absent)}")
        return {"FINISHED"}


class LIKENESS_OT_retarget_apply(bpy.types.Operator):
    """Key the capture onto every mesh of the target that has the mapped shape keys (one undo step)"""

    bl_idname = "likeness.retarget_apply"
    bl_label = "Retarget"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = _settings(context)
        try:
            capture = active_capture(settings)
            mapping = rows_to_mapping(settings)
            meshes = target_meshes(settings)
            check_mapping(mapping, meshes)
            head, eyes, notes = head_and_eyes(settings, mapping, meshes)
        except (RetargetError, MappingError) as e:
            self.report({"ERROR"}, f"Likeness: {e}")
            return {"CANCELLED"}
        result = retarget(context, capture, mapping, meshes, head=head, eyes=eyes,
                          reference=settings.head_reference.lower(), set_range=settings.set_frame_range)
        parts = [f"{result.frames} frames onto {len(result.meshes)} meshes"]
        if result.head:
            parts.append(f"head on {result.head}")
        if result.eyes:
            parts.append(f"eyes on {', '.join(result.eyes)}")
        self.report({"INFO"}, f"Likeness: retargeted {'; '.join(parts)} in {result.seconds:.1f} s")
        for note in notes + result.notes:
            self.report({"INFO"}, f"Likeness: {note}")
        unmapped = [n for n in key_names(meshes) if n not in set(mapping.targets)]
        if unmapped:
            self.report({"INFO"}, f"Likeness: keys left unmapped: {_shorten(unmapped)}")
        return {"FINISHED"}


class LIKENESS_OT_import_livelink(bpy.types.Operator, ImportHelper):
    """Read a Live Link Face CSV as the capture to retarget (and key it onto the target at once)"""

    bl_idname = "likeness.import_livelink_csv"
    bl_label = "Import Live Link CSV"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".csv"
    filter_glob: StringProperty(default="*.csv", options={"HIDDEN"})
    retarget_now: BoolProperty(name="Retarget onto the Target", default=True,
                               description="Key the take onto the chosen target with the current mapping")
    timecode_fps: IntProperty(name="Timecode Rate", default=0, min=0, max=120,
                              description="Frames per second of the take's timecodes; 0 infers it (the app "
                                          "records 60 by default)")

    def execute(self, context):
        settings = _settings(context)
        try:
            capture = import_csv(self.filepath, fps=self.timecode_fps or None)
        except LiveLinkError as e:
            self.report({"ERROR"}, f"Likeness: {e}")
            return {"CANCELLED"}
        meshes = target_meshes(settings)
        if self.retarget_now and meshes:
            try:
                if not len(settings.rows):
                    mapping, report = auto_map(key_names(meshes), source=settings.source_names.lower())
                    mapping_to_rows(settings, mapping)
                    settings.report = report.summary()
                mapping = rows_to_mapping(settings)
                check_mapping(mapping, meshes)
                head, eyes, _ = head_and_eyes(settings, mapping, meshes)
            except (RetargetError, MappingError) as e:
                self.report({"ERROR"}, f"Likeness: {e}")
                return {"CANCELLED"}
            retarget(context, capture, mapping, meshes, head=head, eyes=eyes,
                     reference=settings.head_reference.lower(), set_range=settings.set_frame_range)
        remember_capture(capture, Path(self.filepath).name)
        settings.capture_path = self.filepath
        settings.capture_source = "FILE"
        done = f" and keyed onto {len(meshes)} meshes" if self.retarget_now and meshes else ""
        self.report({"INFO"}, f"Likeness: read {capture.n_frames} frames ({capture.fps:.1f} fps){done}")
        return {"FINISHED"}


class LIKENESS_OT_export_livelink(bpy.types.Operator, ExportHelper):
    """Write the active capture as a Live Link Face CSV"""

    bl_idname = "likeness.export_livelink_csv"
    bl_label = "Export Live Link CSV"

    filename_ext = ".csv"
    filter_glob: StringProperty(default="*.csv", options={"HIDDEN"})

    def execute(self, context):
        try:
            capture = active_capture(_settings(context))
        except RetargetError as e:
            self.report({"ERROR"}, f"Likeness: {e}")
            return {"CANCELLED"}
        try:
            path = export_csv(capture, self.filepath)
        except OSError as e:
            self.report({"ERROR"}, f"Likeness: cannot write {self.filepath}: {e.strerror or e}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Likeness: wrote {capture.n_frames} frames to {path}")
        return {"FINISHED"}


CLASSES = (LIKENESS_OT_retarget_auto_map, LIKENESS_OT_retarget_row_add, LIKENESS_OT_retarget_row_remove,
           LIKENESS_OT_retarget_save_mapping, LIKENESS_OT_retarget_load_mapping, LIKENESS_OT_retarget_apply,
           LIKENESS_OT_import_livelink, LIKENESS_OT_export_livelink)
