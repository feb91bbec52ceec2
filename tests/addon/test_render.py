"""A Cycles render through the capture's camera shows the face, and dynamic albedo follows its shape key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
LOOK = Path("/tmp/likeness_look")


def _pixels(path) -> np.ndarray:
    image = bpy.data.images.load(str(path))
    w, h = image.size
    px = np.empty(w * h * image.channels, np.float32)
    image.pixels.foreach_get(px)
    bpy.data.images.remove(image)
    return px.reshape(h, w, -1)[::-1, :, :3]  # rows top-down


def _flushing_head(model, make_capture, size=160, focal=420.0):
    """A head whose jawOpen (1 on frame 1, 0 on frame 2) also reddens the skin through dynamic albedo."""
    from likeness.addon import build
    from likeness.core.io.personal import generic_personal_model

    personal = generic_personal_model(model, albedo=np.full((64, 64, 3), (0.8, 0.65, 0.55), np.float32))
    personal.dynamic_albedo_names = ("jawOpen",)
    personal.dynamic_albedo = np.broadcast_to(np.float32((0.2, -0.25, -0.25)), (1, 8, 8, 3)).copy()
    capture = make_capture(model.expression_names, frames=2, untracked=(), size=(size, size), focal=focal)
    capture.weights[:] = 0.0
    capture.weights[0, list(capture.names).index("jawOpen")] = 1.0  # frame 1: mouth open and flushed
    capture.rotation[:] = (0.0, 15.0, 0.0)
    return build.build_head(bpy.context, capture, model, personal)


@pytest.mark.slow
def test_cycles_render_shows_face_and_dynamic_albedo(likeness, model, empty_scene, make_capture):
    from likeness.addon import headless

    built = _flushing_head(model, make_capture)

    LOOK.mkdir(parents=True, exist_ok=True)
    flushed = _pixels(headless.render_preview(bpy.context, built, str(LOOK / "render_frame1.png"), frame=1,
                                              samples=8))
    plain = _pixels(headless.render_preview(bpy.context, built, str(LOOK / "render_frame2.png"), frame=2,
                                            samples=8))
    assert flushed.shape == (160, 160, 3)
    background = plain[2, 2]
    centre = plain[50:110, 50:110]
    assert plain.std() > 0.05  # not blank
    assert np.mean(np.abs(centre - background).sum(axis=-1) > 0.1) > 0.9  # the face fills the middle
    # Skin: redder than green and blue; with jawOpen = 1 the dynamic map reddens it further.
    cheek = (slice(60, 80), slice(45, 60))
    r, g, b = plain[cheek].reshape(-1, 3).mean(0)
    assert r > g > b
    red_ratio = lambda img: img[cheek][..., 0].mean() / img[cheek][..., 1].mean()  # noqa: E731
    assert red_ratio(flushed) > 1.2 * red_ratio(plain)


@pytest.mark.slow
def test_the_preview_is_scaled_down_to_its_size_only(likeness, model, empty_scene, make_capture):
    # a 4K clip's full-size Cycles preview took 131 s here: the preview's longer side is capped
    from likeness.addon import headless

    built = _flushing_head(model, make_capture, size=160, focal=420.0)
    LOOK.mkdir(parents=True, exist_ok=True)
    small = _pixels(headless.render_preview(bpy.context, built, str(LOOK / "render_small.png"), frame=2, size=64,
                                            samples=2))
    assert small.shape == (64, 64, 3) and small.std() > 0.05  # scaled down, still the face
    assert bpy.context.scene.render.resolution_x == 160  # the scene keeps the clip's resolution
    full = _pixels(headless.render_preview(bpy.context, built, str(LOOK / "render_full.png"), frame=2, samples=2))
    assert full.shape == (160, 160, 3)  # below the default cap: the clip's own size


@pytest.mark.slow
def test_eevee_render_shows_dynamic_albedo(likeness, model, empty_scene, make_capture):
    """EEVEE (software OpenGL here, ~10 s) draws the same material: shape-key drivers reach its shaders."""
    from likeness.addon import headless

    built = _flushing_head(model, make_capture, size=96, focal=252.0)
    headless.add_preview_lighting(bpy.context, built.collection)
    scene = bpy.context.scene
    engines = [e.identifier for e in scene.render.bl_rna.properties["engine"].enum_items]
    scene.render.engine = next(e for e in ("BLENDER_EEVEE_NEXT", "BLENDER_EEVEE") if e in engines)
    scene.eevee.taa_render_samples = 4
    images = []
    for frame in (1, 2):
        scene.frame_set(frame)
        scene.render.filepath = str(LOOK / f"eevee_frame{frame}.png")
        try:
            bpy.ops.render.render(write_still=True)
        except RuntimeError as e:
            pytest.skip(f"EEVEE cannot render on this machine: {e}")
        images.append(_pixels(scene.render.filepath))
    flushed, plain = images
    cheek = (slice(36, 48), slice(27, 36))
    assert plain.std() > 0.05
    red_ratio = lambda img: img[cheek][..., 0].mean() / img[cheek][..., 1].mean()  # noqa: E731
    assert red_ratio(flushed) > 1.2 * red_ratio(plain)
