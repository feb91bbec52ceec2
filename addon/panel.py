"""The Likeness tab in the 3D View sidebar (N): settings, Capture from Video, progress and Cancel."""

from __future__ import annotations

import bpy

from . import jobs


class VIEW3D_PT_likeness(bpy.types.Panel):
    bl_idname = "VIEW3D_PT_likeness"
    bl_label = "Capture"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Likeness"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.likeness
        state = context.scene.likeness_job
        layout.use_property_split = True
        layout.use_property_decorate = False

        if not jobs.face_model_ready(context):
            box = layout.box()
            box.label(text="The face model is not set up yet", icon="ERROR")
            box.label(text=f"Cache: {jobs.cache_dir(context)}")
            box.operator("likeness.setup_face_model", text="Set up Face Model...", icon="IMPORT")
        else:
            jobs.warm_up_once(context)

        layout.prop(settings, "video_path")
        col = layout.column(align=True)
        col.prop(settings, "frame_start", text="Frames Start")
        col.prop(settings, "frame_end", text="End")
        col.prop(settings, "stride")
        layout.prop(settings, "quality")
        layout.prop(settings, "backend")
        layout.prop(settings, "smoothing", slider=True)
        layout.prop(settings, "neutral_frame")
        col = layout.column(heading="Options")
        col.prop(settings, "personalize")
        sub = col.row()
        sub.enabled = settings.personalize
        sub.prop(settings, "personal_shapes")
        col.prop(settings, "photometric")
        col.prop(settings, "use_background", text="Video Background")

        running = jobs.busy()
        row = layout.row()
        row.scale_y = 1.6
        row.enabled = not running
        row.operator("likeness.capture_video", icon="OUTLINER_OB_CAMERA")

        if running:
            box = layout.box()
            done, total = state.frames_done, state.frames_total
            text = f"{state.stage.capitalize()} {state.progress * 100:.0f}%"
            box.progress(factor=state.progress, type="BAR", text=text)
            col = box.column(align=True)
            col.use_property_split = False
            col.label(text=f"Stage: {state.stage or 'starting'}")
            if total:
                col.label(text=f"Frames: {done} / {total}")
            col.label(text=f"Remaining: {state.eta}")
            box.operator("likeness.cancel", text="Cancel", icon="CANCEL")
        elif state.message:
            layout.label(text=state.message, icon="INFO")


CLASSES = (VIEW3D_PT_likeness,)
