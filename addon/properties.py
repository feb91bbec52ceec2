"""Scene-level settings of a capture and the state of the running job, as the panel shows them."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

QUALITY_ITEMS = [
    ("fast", "Fast", "Fewer fitting iterations; for previews"),
    ("balanced", "Balanced", "The default trade-off of speed and accuracy"),
    ("accurate", "Accurate", "More fitting iterations and a stronger identity fit; slowest"),
]
BACKEND_ITEMS = [
    ("mediapipe", "MediaPipe", "MediaPipe Face Mesh (bundled, fast)"),
    ("fan", "FAN", "face-alignment FAN 68-point network (needs PyTorch and face-alignment installed)"),
]


class LikenessSettings(bpy.types.PropertyGroup):
    """What to capture and how; stored in the scene, so it is saved with the .blend."""

    video_path: StringProperty(name="Video", subtype="FILE_PATH", description="The video to capture from")
    frame_start: IntProperty(name="Start", default=0, min=0, description="First video frame (0-based)")
    frame_end: IntProperty(name="End", default=-1, min=-1, description="Last video frame, -1 for the end")
    stride: IntProperty(name="Stride", default=1, min=1, max=100, description="Use every n-th video frame")
    quality: EnumProperty(name="Quality", items=QUALITY_ITEMS, default="balanced")
    backend: EnumProperty(name="Landmarks", items=BACKEND_ITEMS, default="mediapipe")
    smoothing: FloatProperty(name="Smoothing", default=0.5, min=0.0, max=1.0, subtype="FACTOR",
                             description="Temporal smoothing of pose and expressions")
    neutral_frame: IntProperty(name="Neutral Frame", default=-1, min=-1,
                               description="A video frame with a neutral face, -1 to find one automatically")
    use_background: BoolProperty(name="Video as Camera Background", default=True,
                                 description="Add a camera that matches the video, with the video behind it")
    personalize: BoolProperty(name="Personalize", default=False,
                              description="Model this person: their skin, and how it changes with the "
                                          "expressions, on their head shape (slower)")
    personal_shapes: BoolProperty(name="Personal Shapes", default=False,
                                  description="With Personalize: also fit this person's blendshapes "
                                              "(experimental: they still measure worse than the generic shapes, "
                                              "which keep the person's skin and head shape)")
    # On in the panel: it keeps up with real time at 720p since it reads the crops of one decoding pass, and the
    # expressions and gaze an animator keys are closer (synthetic clips: weights 0.075 vs 0.093, gaze 2.3 vs
    # 4.2 degrees). The command line and the batch script keep the landmark fit unless asked (--photometric).
    photometric: BoolProperty(name="Photometric", default=True,
                              description="Refine the fit against the video's pixels: closer expressions "
                                          "and gaze, at about three quarters of the speed. Off for a quick preview")


class LikenessJobState(bpy.types.PropertyGroup):
    """What the panel shows about the running job; written by the operator on the main thread only."""

    running: BoolProperty(name="Running", default=False)
    stage: StringProperty(name="Stage")
    progress: FloatProperty(name="Progress", default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    frames_done: IntProperty(name="Done")
    frames_total: IntProperty(name="Total")
    eta: StringProperty(name="ETA")
    message: StringProperty(name="Message", description="The last message of the last job")


class LikenessPreferences(bpy.types.AddonPreferences):
    """Per-user choices: where the face-model cache lives."""

    bl_idname = __package__.rpartition(".")[0] or __package__

    cache_dir: StringProperty(
        name="Face Model Cache", subtype="DIR_PATH",
        description="Folder of an existing face-model cache; empty: the extension's own user folder")

    def draw(self, context):
        self.layout.prop(self, "cache_dir")


CLASSES = (LikenessSettings, LikenessJobState, LikenessPreferences)


def register_properties() -> None:
    bpy.types.Scene.likeness = PointerProperty(type=LikenessSettings)
    bpy.types.Scene.likeness_job = PointerProperty(type=LikenessJobState)


def unregister_properties() -> None:
    del bpy.types.Scene.likeness_job
    del bpy.types.Scene.likeness
