"""addon.build: the head from a capture, checked against core's own geometry, saved and reloaded."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")


@pytest.fixture
def built(likeness, model, empty_scene, make_capture):
    from likeness.addon import build

    capture = make_capture(model.expression_names, frames=12, untracked=(5,))
    return capture, build.build_head(bpy.context, capture, model)


def _fcurves(id_data):
    from likeness.addon import keying

    return list(keying.channels(id_data))


def _world_vertices(obj) -> np.ndarray:
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    co = np.empty(3 * len(mesh.vertices), np.float32)
    mesh.vertices.foreach_get("co", co)
    evaluated.to_mesh_clear()
    m = np.array(evaluated.matrix_world)
    return co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3]


def _check_scene(head, capture, model, n_keys):
    from likeness.core.facemodel.arkit import ARKIT_NAMES

    keys = head.data.shape_keys
    assert [k.name for k in keys.key_blocks] == ["Basis", *ARKIT_NAMES]
    curves = _fcurves(keys)
    assert len(curves) == 51  # every ARKit shape but tongueOut, which ICT lacks
    tracked_frames = [float(1 + i) for i in range(capture.n_frames) if capture.tracked[i]]
    for fc in curves:
        co = np.empty(2 * len(fc.keyframe_points), np.float32)
        fc.keyframe_points.foreach_get("co", co)
        assert co[0::2].tolist() == tracked_frames
    assert len(tracked_frames) == n_keys
    pose = {(fc.data_path, fc.array_index) for fc in _fcurves(head)}
    assert pose == {("location", i) for i in range(3)} | {("rotation_euler", i) for i in range(3)}
    assert head.rotation_mode == "XZY"


def test_head_matches_core_geometry(likeness, model, built):
    """At a keyed frame the evaluated mesh in world space is core's camera-space head, converted to Z up."""
    from likeness.addon.build import to_blender
    from likeness.core.facemodel.arkit import ARKIT_NAMES, arkit_to_ict, ict_to_arkit
    from likeness.core.render.camera import transform

    capture, result = built
    assert set(result.collection.objects) == {result.head, result.camera}
    _check_scene(result.head, capture, model, n_keys=11)
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end, scene.render.fps) == (1, 12, 30)

    for sample in (0, 7):
        scene.frame_set(1 + sample)
        arkit = ict_to_arkit(capture.weights[sample], capture.names)
        assert result.head.data.shape_keys.key_blocks["jawOpen"].value == pytest.approx(
            arkit[ARKIT_NAMES.index("jawOpen")], abs=1e-5)
        # Split ARKit shapes (browInnerUp, cheekPuff) drive both ICT halves at the ARKit value.
        ict = arkit_to_ict(arkit, model.expression_names)
        expected = transform(model.vertices(capture.identity, ict), capture.rotation[sample],
                             capture.translation[sample])
        got = _world_vertices(result.head)
        np.testing.assert_allclose(got, to_blender(expected), atol=2e-5)  # 20 microns


def test_untracked_frames_are_not_keyed_but_interpolated(likeness, model, built):
    capture, result = built
    bpy.context.scene.frame_set(6)  # sample 5 was not tracked: halfway between samples 4 and 6
    from likeness.core.facemodel.arkit import ARKIT_NAMES, ict_to_arkit

    arkit = ict_to_arkit(capture.weights[[4, 6]], capture.names)[:, ARKIT_NAMES.index("jawOpen")]
    assert result.head.data.shape_keys.key_blocks["jawOpen"].value == pytest.approx(arkit.mean(), abs=1e-5)


def test_camera_projects_like_core(likeness, model, built):
    from bpy_extras.object_utils import world_to_camera_view
    from likeness.addon.build import to_blender
    from likeness.core.render.camera import Camera, transform
    from mathutils import Vector

    capture, result = built
    scene = bpy.context.scene
    scene.frame_set(1)
    assert scene.camera == result.camera
    assert (scene.render.resolution_x, scene.render.resolution_y) == capture.image_size
    ict = np.zeros(len(capture.names))
    points = transform(model.vertices(capture.identity, ict)[model.landmarks68[:5]], capture.rotation[0],
                       capture.translation[0])
    expected = Camera(*capture.image_size, capture.focal).project(points)
    w, h = capture.image_size
    for p, e in zip(to_blender(points), expected):
        ndc = world_to_camera_view(scene, result.camera, Vector(p.tolist()))
        # Blender's principal point is the image centre w/2, core's (w-1)/2: half a pixel apart.
        assert ndc.x * w == pytest.approx(e[0] + 0.5, abs=0.05)
        assert (1 - ndc.y) * h == pytest.approx(e[1] + 0.5, abs=0.05)


def test_shape_key_shapes(likeness, model, built):
    from likeness.addon.build import to_blender

    capture, result = built
    blocks = result.head.data.shape_keys.key_blocks

    def co(name):
        out = np.empty(3 * model.n_vertices, np.float32)
        blocks[name].data.foreach_get("co", out)
        return out.reshape(-1, 3)

    basis = co("Basis")
    np.testing.assert_allclose(basis, to_blender(model.identity_shape(capture.identity)), atol=1e-6)
    names = list(model.expression_names)
    halves = model.expressions[names.index("browInnerUp_L")] + model.expressions[names.index("browInnerUp_R")]
    np.testing.assert_allclose(co("browInnerUp") - basis, to_blender(halves), atol=1e-6)
    np.testing.assert_allclose(co("eyeBlinkLeft") - basis,
                               to_blender(model.expressions[names.index("eyeBlink_L")]), atol=1e-6)
    assert np.array_equal(co("tongueOut"), basis)


def _iris_colour(head) -> np.ndarray:
    """The colour of the eyes' material between the pupil and the sclera (linear RGB)."""
    from likeness.addon.build import EYE_RAMP_MM, IRIS_MM, PUPIL_MM

    eyes = head.data.materials[f"{head.data.name} Eyes"]
    ramp = next(n for n in eyes.node_tree.nodes if n.type == "VALTORGB")
    return np.array(ramp.color_ramp.evaluate((PUPIL_MM + IRIS_MM) / 2 / EYE_RAMP_MM)[:3])


def test_generic_head_has_the_default_brown_eyes(likeness, built):
    from likeness.addon.build import IRIS_COLOR

    np.testing.assert_allclose(_iris_colour(built[1].head), IRIS_COLOR, atol=1e-6)


def test_personal_material_drivers_save_and_reload(likeness, model, empty_scene, make_capture, tmp_path):
    from likeness.addon import build
    from likeness.core.io.personal import generic_personal_model

    rng = np.random.default_rng(1)
    personal = generic_personal_model(model, albedo=rng.uniform(0.3, 0.8, (64, 64, 3)).astype(np.float32))
    personal.dynamic_albedo_names = ("jawOpen", "browInnerUp_L", "eyeBlink_R")
    personal.dynamic_albedo = rng.normal(0, 0.05, (3, 16, 16, 3)).astype(np.float32)
    personal.eye_colour = np.array([0.3, 0.45, 0.6], np.float32)  # blue, display values
    capture = make_capture(model.expression_names, frames=6, untracked=())
    result = build.build_head(bpy.context, capture, model, personal, name="Person")

    def check(head):
        skin = head.data.materials[0]
        assert skin.name == f"{head.data.name} Skin"
        tree = skin.node_tree
        images = {n.image.name for n in tree.nodes if n.type == "TEX_IMAGE"}
        assert len(images) == 2  # static albedo + one atlas holding the three dynamic maps
        albedo = tree.nodes["Albedo"].image
        assert tuple(albedo.size) == (64, 64) and albedo.packed_file is not None
        drivers = {d.data_path: d.driver for d in tree.animation_data.drivers}
        assert len(drivers) == 3
        targets = set()
        for driver in drivers.values():
            assert driver.expression == "var" and driver.is_valid
            (var,) = driver.variables
            assert var.targets[0].id == head.data.shape_keys
            targets.add(var.targets[0].data_path)
        assert targets == {f'key_blocks["{n}"].value' for n in ("jawOpen", "browInnerUp", "eyeBlinkRight")}
        # the irises take the person's colour, in linear values (the skin's Gamma 2.2)
        np.testing.assert_allclose(_iris_colour(head), personal.eye_colour ** 2.2, atol=1e-6)
        _check_scene(head, capture, model, n_keys=6)

    check(result.head)
    # The albedo's pixels went in top row first: the image's top-left pixel is the map's [0, 0].
    albedo = result.head.data.materials[0].node_tree.nodes["Albedo"].image
    pixels = np.empty(64 * 64 * 4, np.float32)
    albedo.pixels.foreach_get(pixels)
    np.testing.assert_allclose(pixels.reshape(64, 64, 4)[-1, 0, :3], personal.albedo[0, 0], atol=1 / 255)

    path = tmp_path / "head.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    head = bpy.data.objects["Person Head"]
    assert head.users_collection[0].name == "Person"
    check(head)
    bpy.context.scene.frame_set(3)
    from likeness.core.facemodel.arkit import ARKIT_NAMES, ict_to_arkit

    jaw = ict_to_arkit(capture.weights[2], capture.names)[ARKIT_NAMES.index("jawOpen")]
    mix = next(n for n in head.data.materials[0].node_tree.nodes if n.name.endswith("jawOpen"))
    assert mix.inputs[0].default_value == pytest.approx(jaw, abs=1e-5)


def test_capture_without_tracked_frames_is_refused(likeness, model, empty_scene, make_capture):
    from likeness.addon import build

    capture = make_capture(model.expression_names, frames=3, untracked=(0, 1, 2))
    before = len(bpy.data.objects), len(bpy.data.meshes)
    with pytest.raises(ValueError, match="no tracked frame"):
        build.build_head(bpy.context, capture, model)
    assert (len(bpy.data.objects), len(bpy.data.meshes)) == before


def test_stride_keeps_video_frame_numbers(likeness, model, empty_scene, make_capture):
    """Every 2nd frame from video frame 10: the scene runs at the video's 30 fps, keys on frames 11, 13, ..."""
    from likeness.addon import build
    from likeness.core.io.capture import Capture

    c = make_capture(model.expression_names, frames=5, untracked=())
    strided = Capture(names=c.names, weights=c.weights, tracked=c.tracked, rotation=c.rotation,
                      translation=c.translation, timestamps=(10 + 2 * np.arange(5)) / 30.0, fps=15.0,
                      image_size=c.image_size, focal=c.focal, frame_indices=10 + 2 * np.arange(5))
    result = build.build_head(bpy.context, strided, model)
    scene = bpy.context.scene
    assert (scene.render.fps, scene.render.fps_base) == (30, 1.0)
    assert result.frames.tolist() == [11, 13, 15, 17, 19]
    assert (scene.frame_start, scene.frame_end) == (11, 19)
