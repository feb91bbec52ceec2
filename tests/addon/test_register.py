"""Registering the add-on: classes, properties, panel placement; register, unregister, register again."""

from __future__ import annotations

import pytest

bpy = pytest.importorskip("bpy")


def _registered() -> bool:
    return hasattr(bpy.types, "VIEW3D_PT_likeness") and hasattr(bpy.types.Scene, "likeness")


@pytest.fixture
def registered(likeness):
    likeness.register()
    yield likeness
    likeness.unregister()


def test_register_unregister_register(likeness):
    for _ in range(2):
        likeness.register()
        assert _registered()
        assert hasattr(bpy.ops.likeness, "capture_video") and hasattr(bpy.ops.likeness, "setup_face_model")
        likeness.unregister()
        assert not _registered()
        assert "likeness" not in dir(bpy.types.Scene)


def test_panel_in_sidebar_and_properties(registered):
    panel = bpy.types.VIEW3D_PT_likeness
    assert (panel.bl_space_type, panel.bl_region_type, panel.bl_category) == ("VIEW_3D", "UI", "Likeness")
    settings = bpy.context.scene.likeness
    assert settings.quality == "balanced" and settings.backend == "mediapipe"
    assert settings.stride == 1 and settings.frame_end == -1 and settings.neutral_frame == -1
    settings.quality = "accurate"
    with pytest.raises(TypeError):
        settings.quality = "ultra"
    state = bpy.context.scene.likeness_job
    assert state.running is False and state.progress == 0.0
    operator = bpy.types.LIKENESS_OT_capture_video
    assert operator.bl_options == {"REGISTER", "UNDO"}


def test_optional_retarget_ui_registered_with_it(registered):
    import importlib.util

    if importlib.util.find_spec("likeness.addon.retarget_ui") is None:
        pytest.skip("no retargeting UI in this checkout")
    import likeness.addon.retarget_ui as ui

    classes = [c for c in vars(ui).values() if isinstance(c, type) and issubclass(c, bpy.types.Panel)
               and c.__module__ == ui.__name__]
    assert classes and all(getattr(bpy.types, c.__name__, None) is not None for c in classes)
