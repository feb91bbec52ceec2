"""The Blender side of Likeness: properties, panel, operators, scene building and headless runs (bpy only)."""

from __future__ import annotations

import importlib
import importlib.util

import bpy

from . import operators, panel, properties

_CLASSES = (*properties.CLASSES, *operators.CLASSES, *panel.CLASSES)
# UI written by other parts of the project; registered when present in this build.
_OPTIONAL = ("retarget_ui",)


def _optional_modules():
    for name in _OPTIONAL:
        if importlib.util.find_spec(f"{__name__}.{name}") is not None:
            yield importlib.import_module(f".{name}", __name__)


@bpy.app.handlers.persistent
def _reset_job_state(_dummy=None):
    """A file saved while a job ran must not show it running after loading."""
    for scene in bpy.data.scenes:
        state = getattr(scene, "likeness_job", None)
        if state is not None and state.running:
            state.running = False


def register():
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    properties.register_properties()
    for module in _optional_modules():
        module.register()
    if _reset_job_state not in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.append(_reset_job_state)


def unregister():
    from . import jobs

    if jobs.ACTIVE is not None:
        jobs.ACTIVE.cancel()
    if _reset_job_state in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_reset_job_state)
    for module in reversed(list(_optional_modules())):
        module.unregister()
    properties.unregister_properties()
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
