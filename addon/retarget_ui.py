"""The Retarget panel in the Likeness tab: target, mapping rows with live preview, presets, Retarget, Live Link CSV."""

from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from ..core.retarget.mapping import SOURCE_NAMES
from . import retarget_ops


def _source_search(self, context, edit_text):
    names = SOURCE_NAMES[context.scene.likeness_retarget.source_names.lower()]
    return [n for n in names if edit_text.lower() in n.lower()]

def _target_search(self, context, edit_text):
    meshes = retarget_ops.target_meshes(context.scene.likeness_retarget)
    return [n for n in retarget_ops.key_names(meshes) if edit_text.lower() in n.lower()]

def _preview(self, context):
    """Set the row's target key on every target mesh (a live look; keyed curves win on frame change)."""
    for obj in retarget_ops.target_meshes(context.scene.likeness_retarget):
        kb = obj.data.shape_keys.key_blocks.get(self.target)
        if kb is not None:
            kb.value = self.preview

class LikenessMappingItem(bpy.types.PropertyGroup):
    """One source feeding one target key; rows sharing a target add up (curve settings from the first)."""

    target: StringProperty(name="Target Key", search=_target_search, description="The character's shape key")
    source: StringProperty(name="Source", search=_source_search,
                           description="Capture shape (ARKit name, or ICT name when the source is ICT)")
    weight: FloatProperty(name="Weight", default=1.0, soft_min=-2.0, soft_max=2.0)
    offset: FloatProperty(name="Offset", default=0.0, soft_min=-1.0, soft_max=1.0)
    use_clamp: BoolProperty(name="Clamp", default=True)
    clamp_min: FloatProperty(name="Min", default=0.0, soft_min=-1.0, soft_max=1.0)
    clamp_max: FloatProperty(name="Max", default=1.0, soft_min=0.0, soft_max=2.0)
    gain: FloatProperty(name="Gain", default=1.0, soft_min=0.0, soft_max=3.0)
    gamma: FloatProperty(name="Gamma", default=1.0, min=0.01, soft_max=4.0)
    preview: FloatProperty(name="Preview", default=0.0, min=0.0, max=1.0, update=_preview,
                           description="Set this key on all target meshes to look at it")

class LikenessRetargetSettings(bpy.types.PropertyGroup):
    target_type: EnumProperty(name="Target", items=[
        ("OBJECT", "Object", "An armature (its child meshes) or one mesh"),
        ("COLLECTION", "Collection", "Every mesh in a collection")], default="OBJECT")
    target_object: PointerProperty(name="Character", type=bpy.types.Object,
                                   poll=lambda self, obj: obj.type in {"ARMATURE", "MESH"})
    target_collection: PointerProperty(name="Collection", type=bpy.types.Collection)
    capture_source: EnumProperty(name="Capture", items=[
        ("FILE", "File", "A capture .npz or a Live Link Face .csv"),
        ("LAST", "Last Capture", "The last capture made or imported in this session")], default="FILE")
    capture_path: StringProperty(name="Capture File", subtype="FILE_PATH",
                                 description="A Likeness capture (.npz) or a Live Link Face CSV (.csv)")
    source_names: EnumProperty(name="Source Names", items=[
        ("ARKIT", "ARKit", "Map from the 52 ARKit shapes (converted from the capture's ICT weights)"),
        ("ICT", "ICT", "Map from the capture's 53 ICT shapes directly")], default="ARKIT")
    rows: CollectionProperty(type=LikenessMappingItem)
    active_row: IntProperty(name="Row", default=0)
    report: StringProperty(name="Auto-map Report")
    head_mode: EnumProperty(name="Head", items=[
        ("AUTO", "Auto", "The rig's head bone if it has one"),
        ("BONE", "Bone", "A bone of the target's armature"),
        ("OBJECT", "Object", "An object's rotation"),
        ("NONE", "None", "No head rotation")], default="AUTO")
    head_bone: StringProperty(name="Head Bone", default="Head")
    head_object: PointerProperty(name="Head Object", type=bpy.types.Object)
    head_reference: EnumProperty(name="Rest Pose", items=[
        ("MEDIAN", "Median", "The performer's median pose is the character's rest pose"),
        ("FIRST", "First Frame", "The first frame's pose is the rest pose"),
        ("CAMERA", "Facing Camera", "Facing the camera squarely is the rest pose")], default="MEDIAN")
    gaze_mode: EnumProperty(name="Eyes", items=[
        ("AUTO", "Auto", "Key the gaze onto the eye bones, unless the eyeballs turn with mapped eyeLook keys"),
        ("BONES", "Bones", "Always key the gaze onto the eye bones"),
        ("NONE", "None", "No eye bone rotation")], default="AUTO")
    left_eye_bone: StringProperty(name="Left Eye", default="LeftEye")
    right_eye_bone: StringProperty(name="Right Eye", default="RightEye")
    set_frame_range: BoolProperty(name="Set Frame Range", default=True,
                                  description="Set the scene's frame range to the keyed frames")

class LIKENESS_UL_mapping(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_property, index=0):
        row = layout.row(align=True)
        row.label(text=item.target or "(no target)")
        row.label(text=item.source or "-")
        row.prop(item, "weight", text="")
        row.prop(item, "preview", text="", slider=True)

    def filter_items(self, context, data, propname):
        items = getattr(data, propname)
        flags = [self.bitflag_filter_item] * len(items)
        if self.filter_name:
            wanted = self.filter_name.lower()
            flags = [self.bitflag_filter_item if wanted in (i.target + " " + i.source).lower() else 0
                     for i in items]
        return flags, []

class VIEW3D_PT_likeness_retarget(bpy.types.Panel):
    bl_label = "Retarget"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Likeness"
    bl_order = 10

    def draw(self, context):
        layout = self.layout
        s = context.scene.likeness_retarget
        layout.use_property_split = True
        layout.use_property_decorate = False
        layout.prop(s, "target_type", expand=True)
        layout.prop(s, "target_object" if s.target_type == "OBJECT" else "target_collection")
        layout.prop(s, "capture_source", expand=True)
        if s.capture_source == "FILE":
            layout.prop(s, "capture_path")
        else:
            label = retarget_ops._LAST["label"] or "none yet"
            layout.label(text=f"Last capture: {label}")
        layout.prop(s, "source_names")

        row = layout.row()
        row.scale_y = 1.3
        row.operator("likeness.retarget_auto_map", icon="LINKED")
        if s.report:
            box = layout.box()
            col = box.column(align=True)
            for part in s.report.split("; ")[:4]:
                col.label(text=part[:120])

        layout.use_property_split = False
        row = layout.row()
        row.template_list("LIKENESS_UL_mapping", "", s, "rows", s, "active_row", rows=6)
        col = row.column(align=True)
        col.operator("likeness.retarget_row_add", icon="ADD", text="")
        col.operator("likeness.retarget_row_remove", icon="REMOVE", text="")
        if 0 <= s.active_row < len(s.rows):
            item = s.rows[s.active_row]
            box = layout.box()
            box.use_property_split = True
            box.prop(item, "target")
            box.prop(item, "source")
            box.prop(item, "weight")
            box.prop(item, "offset")
            sub = box.row(align=True, heading="Clamp")
            sub.prop(item, "use_clamp", text="")
            sub2 = sub.row(align=True)
            sub2.active = item.use_clamp
            sub2.prop(item, "clamp_min", text="")
            sub2.prop(item, "clamp_max", text="")
            box.prop(item, "gain")
            box.prop(item, "gamma")
        row = layout.row(align=True)
        row.operator("likeness.retarget_save_mapping", icon="FILE_TICK", text="Save Preset")
        row.operator("likeness.retarget_load_mapping", icon="FILEBROWSER", text="Load")

        row = layout.row()
        row.scale_y = 1.6
        row.operator("likeness.retarget_apply", icon="ARMATURE_DATA")

class VIEW3D_PT_likeness_retarget_head(bpy.types.Panel):
    bl_label = "Head and Eyes"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Likeness"
    bl_parent_id = "VIEW3D_PT_likeness_retarget"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        s = context.scene.likeness_retarget
        layout.use_property_split = True
        layout.use_property_decorate = False
        armature = retarget_ops.target_armature(s)
        layout.prop(s, "head_mode")
        if s.head_mode in ("AUTO", "BONE"):
            if armature is not None:
                layout.prop_search(s, "head_bone", armature.data, "bones")
            else:
                layout.label(text="No armature in the target", icon="INFO")
        elif s.head_mode == "OBJECT":
            layout.prop(s, "head_object")
        layout.prop(s, "head_reference")
        layout.prop(s, "gaze_mode")
        if s.gaze_mode != "NONE" and armature is not None:
            layout.prop_search(s, "left_eye_bone", armature.data, "bones")
            layout.prop_search(s, "right_eye_bone", armature.data, "bones")
        layout.prop(s, "set_frame_range")

class VIEW3D_PT_likeness_livelink(bpy.types.Panel):
    bl_label = "Live Link Face CSV"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Likeness"
    bl_parent_id = "VIEW3D_PT_likeness_retarget"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        row = self.layout.row(align=True)
        row.operator("likeness.import_livelink_csv", icon="IMPORT", text="Import")
        row.operator("likeness.export_livelink_csv", icon="EXPORT", text="Export")

CLASSES = (LikenessMappingItem, LikenessRetargetSettings, LIKENESS_UL_mapping, *retarget_ops.CLASSES,
           VIEW3D_PT_likeness_retarget, VIEW3D_PT_likeness_retarget_head, VIEW3D_PT_likeness_livelink)

def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.likeness_retarget = PointerProperty(type=LikenessRetargetSettings)

def unregister():
    del bpy.types.Scene.likeness_retarget
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
