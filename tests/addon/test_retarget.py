"""Retargeting in real Blender: auto-map the Ready Player Me puppet, key a capture, save and reload, bad input
leaves the scene unchanged, and (slow) a real clip's smile rendered on the puppet with Cycles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
ROOT = Path(__file__).resolve().parents[2]
PUPPET = ROOT.parent / "shared" / "puppets" / "brunette-t.glb"
CLIP = ROOT.parent / "shared" / "media" / "clips" / "liveportrait_source_s32.mp4"
LOOK = Path("/tmp/likeness_look")
MESHES = ("Wolf3D_Head", "Wolf3D_Teeth", "EyeLeft", "EyeRight")


@pytest.fixture(scope="module")
def registered(likeness):
    mine = not hasattr(bpy.types.Scene, "likeness_retarget")
    if mine:
        likeness.register()
    assert hasattr(bpy.types.Scene, "likeness_retarget"), "addon/__init__.py did not register retarget_ui"
    yield likeness
    if mine:
        likeness.unregister()


@pytest.fixture
def puppet(registered):
    if not PUPPET.exists():
        pytest.skip(f"{PUPPET} is not there")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=str(PUPPET))
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    settings = scene.likeness_retarget
    settings.target_type = "OBJECT"
    settings.target_object = bpy.data.objects["Armature"]
    return settings


def _capture(likeness, frames=90, smile_at=45):
    """Smooth synthetic ICT weights, with a broad smile peaking at `smile_at`, plus head motion and gaze."""
    from likeness.core.io.capture import Capture
    from likeness.core.retarget import ICT_NAMES

    t = np.arange(frames) / 30.0
    phase = np.linspace(0, 2 * np.pi, len(ICT_NAMES), endpoint=False)
    weights = 0.25 + 0.2 * np.sin(2 * np.pi * 0.4 * t[:, None] + phase[None, :])
    bump = np.exp(-0.5 * ((np.arange(frames) - smile_at) / 6.0) ** 2)
    for n, peak in (("mouthSmile_L", 1.0), ("mouthSmile_R", 1.0), ("cheekSquint_L", 0.6), ("cheekSquint_R", 0.6),
                    ("jawOpen", 0.3)):
        weights[:, ICT_NAMES.index(n)] = peak * bump
    for n in ("eyeBlink_L", "eyeBlink_R", "mouthFunnel", "mouthPucker", "mouthClose", "mouthRollLower",
              "mouthRollUpper", "jawForward"):
        weights[:, ICT_NAMES.index(n)] *= 1 - bump
    tracked = np.ones(frames, bool)
    tracked[10] = False
    rotation = np.stack([3 * np.sin(t), 12 * np.sin(1.3 * t), 4 * np.sin(0.7 * t)], axis=1)
    gaze = np.stack([np.stack([10 * np.sin(2 * t), -5 * np.cos(t)], 1)] * 2, axis=1)
    return Capture(names=ICT_NAMES, weights=np.clip(weights, 0, 1), tracked=tracked, rotation=rotation,
                   translation=np.zeros((frames, 3)), timestamps=t, fps=30.0, image_size=(512, 512), focal=600.0,
                   gaze=gaze.astype(np.float32))


def _counts() -> dict:
    out = {k: len(getattr(bpy.data, k)) for k in ("objects", "meshes", "actions", "shape_keys", "collections",
                                                    "armatures", "materials")}
    out["fcurves"] = sum(len(a.fcurves) for a in bpy.data.actions)
    out["keys"] = sum(len(fc.keyframe_points) for a in bpy.data.actions for fc in a.fcurves)
    out["key_values"] = tuple(round(kb.value, 6) for k in bpy.data.shape_keys for kb in k.key_blocks)
    return out


def test_auto_map_finds_all_arkit_keys_on_the_four_meshes(puppet):
    from likeness.addon import retarget_ops
    from likeness.core.facemodel.arkit import ARKIT_NAMES

    assert bpy.ops.likeness.retarget_auto_map() == {"FINISHED"}
    meshes = retarget_ops.target_meshes(puppet)
    assert sorted(o.name for o in meshes) == sorted(MESHES)
    mapping = retarget_ops.rows_to_mapping(puppet)
    assert {r.target: r.sources for r in mapping.rows} == {a: {a: 1.0} for a in ARKIT_NAMES}
    for obj in meshes:
        assert set(ARKIT_NAMES) <= set(obj.data.shape_keys.key_blocks.keys()), obj.name
    assert "viseme_aa" in puppet.report and "tongueOut" in puppet.report


def _check_keys(likeness, capture, scene_fps=30.0):
    """Every mapped key on every mesh evaluates to the mapped weight at the keyed frames."""
    from likeness.addon import keying, retarget_ops
    from likeness.addon.build import capture_frames
    from likeness.core.retarget import apply, capture_sources

    settings = bpy.context.scene.likeness_retarget
    mapping = retarget_ops.rows_to_mapping(settings)
    frames, samples = capture_frames(capture, scene_fps)
    x, names = capture_sources(capture.names, capture.weights[samples])
    want = apply(mapping, x, names)
    checked = 0
    for name in MESHES:
        key = bpy.data.objects[name].data.shape_keys
        curves = keying.channels(key)
        for c, target in enumerate(mapping.targets):
            fc = curves.find(f'key_blocks["{target}"].value')
            assert fc is not None, (name, target)
            got = np.array([fc.evaluate(f) for f in frames])
            np.testing.assert_allclose(got, want[:, c], atol=1e-4, err_msg=f"{name} {target}")
            checked += 1
    assert checked == 4 * 52
    return frames


def test_retarget_keys_save_and_reload(likeness, puppet, tmp_path):
    capture = _capture(likeness)
    path = capture.save(tmp_path / "cap.npz")
    puppet.capture_path = str(path)
    assert bpy.ops.likeness.retarget_auto_map() == {"FINISHED"}
    assert bpy.ops.likeness.retarget_apply() == {"FINISHED"}
    arm = bpy.data.objects["Armature"]
    assert arm.pose.bones["Head"].rotation_mode == "QUATERNION"
    frames = _check_keys(likeness, capture)
    assert len(frames) == capture.n_frames - 1  # the untracked sample is not keyed
    blend = tmp_path / "retarget.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    _check_keys(likeness, capture)
    # the head bone turns in the world as the captured head turns (core Y up -> Blender Z up: C = Rx(90))
    from likeness.core.render.camera import euler_to_matrix

    scene = bpy.context.scene
    arm = bpy.data.objects["Armature"]
    c = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])

    def world(i):
        scene.frame_set(int(1 + round(capture.timestamps[i] * 30)))
        m = np.array((arm.matrix_world @ arm.pose.bones["Head"].matrix).to_3x3())
        return m / np.linalg.norm(m, axis=0)

    yaw = capture.rotation[:, 1]
    a, b = int(np.argmax(yaw)), int(np.argmin(yaw))
    assert 10 not in (a, b)
    measured = world(b) @ world(a).T
    r = euler_to_matrix(capture.rotation)
    expected = c @ (r[b] @ r[a].T) @ c.T
    angle = np.degrees(np.arccos(np.clip((np.trace(measured.T @ expected) - 1) / 2, -1, 1)))
    assert angle < 0.5
    assert np.degrees(np.arccos(np.clip((np.trace(measured) - 1) / 2, -1, 1))) > 15  # it did turn
    # the puppet's eyeballs turn with their own eyeLook keys, so the eye bones are left alone by default...
    eyes = {'pose.bones["LeftEye"].rotation_quaternion', 'pose.bones["RightEye"].rotation_quaternion'}
    assert not eyes & {fc.data_path for fc in arm.animation_data.action.fcurves}
    # ...and keyed when asked
    bpy.context.scene.likeness_retarget.gaze_mode = "BONES"
    assert bpy.ops.likeness.retarget_apply() == {"FINISHED"}
    assert eyes <= {fc.data_path for fc in arm.animation_data.action.fcurves}


def test_mapping_preset_save_load(likeness, puppet, tmp_path, monkeypatch):
    from likeness.addon import retarget_ops

    monkeypatch.setattr(retarget_ops, "presets_dir", lambda: tmp_path)
    bpy.ops.likeness.retarget_auto_map()
    puppet.rows[0].weight = 0.5
    puppet.rows[0].gamma = 2.0
    before = retarget_ops.rows_to_mapping(puppet)
    assert bpy.ops.likeness.retarget_save_mapping(name="rpm test") == {"FINISHED"}
    saved = next(tmp_path.glob("*.json"))
    assert json.loads(saved.read_text())["format"] == "likeness.mapping"
    puppet.rows.clear()
    assert bpy.ops.likeness.retarget_load_mapping(filepath=str(saved)) == {"FINISHED"}
    after = retarget_ops.rows_to_mapping(puppet)
    assert after.rows == before.rows


def test_preview_slider_sets_the_key_on_all_meshes(puppet):
    bpy.ops.likeness.retarget_auto_map()
    item = next(i for i in puppet.rows if i.target == "mouthSmileLeft")
    item.preview = 0.7
    for name in MESHES:
        assert bpy.data.objects[name].data.shape_keys.key_blocks["mouthSmileLeft"].value == pytest.approx(0.7)


def _refused(op, message, **kwargs):
    """The operator reports an error (bpy.ops raises it as RuntimeError) with this message."""
    with pytest.raises(RuntimeError, match=message):
        op(**kwargs)


def test_bad_input_leaves_the_scene_unchanged(likeness, puppet, tmp_path):
    capture = _capture(likeness, frames=20)
    puppet.capture_path = str(capture.save(tmp_path / "cap.npz"))
    bpy.ops.likeness.retarget_auto_map()
    rows_before = len(puppet.rows)

    # a mapping naming keys that do not exist
    puppet.rows.add().target = "noSuchKey"
    puppet.rows[-1].source = "jawOpen"
    before = _counts()
    _refused(bpy.ops.likeness.retarget_apply, "does not have: noSuchKey")
    assert _counts() == before
    puppet.rows.remove(len(puppet.rows) - 1)

    # a malformed JSON preset: rows unchanged
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "likeness.mapping", "version": 1, "rows": [{"target": "x", "sources": {"jaw": 1}}]}')
    _refused(bpy.ops.likeness.retarget_load_mapping, "unknown arkit source name 'jaw'", filepath=str(bad))
    assert len(puppet.rows) == rows_before and _counts() == before

    # a CSV with missing columns
    csv = tmp_path / "take.csv"
    csv.write_text("Timecode,BlendShapeCount,EyeBlinkLeft\n00:00:00:00.000,61,0.5\n")
    _refused(bpy.ops.likeness.import_livelink_csv, "missing column", filepath=str(csv))
    assert _counts() == before

    # a missing capture file
    puppet.capture_path = str(tmp_path / "gone.npz")
    _refused(bpy.ops.likeness.retarget_apply, "not found")
    assert _counts() == before

    # a target with no shape keys
    bpy.ops.mesh.primitive_cube_add()
    puppet.target_object = bpy.context.active_object
    before = _counts()
    _refused(bpy.ops.likeness.retarget_auto_map, "no mesh with shape keys")
    puppet.capture_path = str(capture.save(tmp_path / "cap.npz"))
    _refused(bpy.ops.likeness.retarget_apply, "no mesh with shape keys")
    assert _counts() == before


def test_livelink_import_keys_the_take_and_export_writes_it(likeness, puppet, tmp_path):
    from likeness.core.io.livelink import export_csv, import_csv

    capture = _capture(likeness, frames=30)
    take = export_csv(capture, tmp_path / "take.csv")
    assert bpy.ops.likeness.import_livelink_csv(filepath=str(take)) == {"FINISHED"}
    assert len(puppet.rows) == 52
    fc = bpy.data.objects["Wolf3D_Head"].data.shape_keys.animation_data.action.fcurves
    assert len(fc) == 52
    out = tmp_path / "out.csv"
    assert bpy.ops.likeness.export_livelink_csv(filepath=str(out)) == {"FINISHED"}
    np.testing.assert_allclose(import_csv(out).weights, import_csv(take).weights, atol=1e-6)


def _frame_camera_on(obj_name, frame):
    """A camera in front of the evaluated head (the puppet faces -Y), the face filling most of the frame."""
    scene = bpy.context.scene
    scene.frame_set(frame)
    obj = bpy.data.objects[obj_name]
    deps = bpy.context.evaluated_depsgraph_get()
    ev = obj.evaluated_get(deps)
    mesh = ev.to_mesh()
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    ev.to_mesh_clear()
    m = np.array(obj.matrix_world)
    pts = co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3]
    lo, hi = pts.min(0), pts.max(0)
    centre = (lo + hi) / 2
    centre[2] -= 0.02  # eyes to chin rather than the crown
    cam_data = bpy.data.cameras.new("Face Camera")
    cam_data.lens = 85
    cam = bpy.data.objects.new("Face Camera", cam_data)
    scene.collection.objects.link(cam)
    size = max(hi[0] - lo[0], hi[2] - lo[2])
    distance = 1.05 * size * cam_data.lens / cam_data.sensor_width
    cam.location = (centre[0], lo[1] - distance, centre[2])
    cam.rotation_euler = (np.pi / 2, 0, 0)
    scene.camera = cam
    light_data = bpy.data.lights.new("Key", "AREA")
    light_data.energy, light_data.size = 60, 0.5
    light = bpy.data.objects.new("Key", light_data)
    light.location = (centre[0] + 0.4, lo[1] - 0.6, centre[2] + 0.4)
    light.rotation_euler = (np.radians(55), 0, np.radians(35))
    scene.collection.objects.link(light)
    world = scene.world or bpy.data.worlds.new("World")
    scene.world = world
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.25, 0.27, 0.3, 1)


@pytest.mark.slow
def test_real_clip_retarget_and_cycles_render(likeness, puppet, tmp_path):
    """A real clip (s32, a woman who smiles and turns her head) drives the puppet; the smile frame is rendered."""
    if not CLIP.exists():
        pytest.skip(f"{CLIP} is not there")
    from likeness.core.facemodel.arkit import ARKIT_NAMES, ict_to_arkit
    from likeness.core.pipeline import CaptureOptions, capture_video

    capture = capture_video(str(CLIP), CaptureOptions(stop=100))
    arkit = ict_to_arkit(capture.weights, capture.names)
    smile = arkit[:, ARKIT_NAMES.index("mouthSmileLeft")] + arkit[:, ARKIT_NAMES.index("mouthSmileRight")]
    smile[~capture.tracked] = -1
    peak = int(np.argmax(smile))
    puppet.capture_path = str(capture.save(tmp_path / "s32.npz"))
    assert bpy.ops.likeness.retarget_auto_map() == {"FINISHED"}
    assert bpy.ops.likeness.retarget_apply() == {"FINISHED"}
    frames = _check_keys(likeness, capture, 30.0)
    frame = int(1 + round(capture.timestamps[peak] * 30))
    assert frame in frames.astype(int)
    scene = bpy.context.scene
    scene.frame_set(frame)
    head_keys = bpy.data.objects["Wolf3D_Head"].data.shape_keys.key_blocks
    assert head_keys["mouthSmileLeft"].value == pytest.approx(arkit[peak, ARKIT_NAMES.index("mouthSmileLeft")],
                                                              abs=1e-4)

    _frame_camera_on("Wolf3D_Head", frame)
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 16
    scene.cycles.device = "CPU"
    scene.render.resolution_x = scene.render.resolution_y = 320
    scene.render.resolution_percentage = 100
    LOOK.mkdir(parents=True, exist_ok=True)
    out = LOOK / "retarget_smile.png"
    scene.render.filepath = str(out)
    bpy.ops.render.render(write_still=True)
    image = bpy.data.images.load(str(out))
    px = np.empty(320 * 320 * image.channels, np.float32)
    image.pixels.foreach_get(px)
    px = px.reshape(320, 320, -1)[::-1, :, :3]
    assert px.std() > 0.05  # not blank: a face in front of the grey background
    centre = px[100:220, 100:220]
    assert np.mean(np.abs(centre - px[3, 3]).sum(-1) > 0.1) > 0.5
    print(f"smile frame {frame}: mouthSmileLeft {arkit[peak, ARKIT_NAMES.index('mouthSmileLeft')]:.2f}, "
          f"jawOpen {arkit[peak, ARKIT_NAMES.index('jawOpen')]:.2f}; render {out}")


def test_meshes_share_one_action_unless_one_has_its_own(likeness, puppet, tmp_path):
    from likeness.addon import keying

    eye = bpy.data.objects["EyeRight"].data.shape_keys
    keying.key_values(eye, 'key_blocks["viseme_aa"].value', 0, [1, 50], [0.0, 1.0])  # the user's own curve
    own = eye.animation_data.action
    puppet.capture_path = str(_capture(likeness, frames=20).save(tmp_path / "cap.npz"))
    bpy.ops.likeness.retarget_auto_map()
    assert bpy.ops.likeness.retarget_apply() == {"FINISHED"}
    actions = {n: bpy.data.objects[n].data.shape_keys.animation_data.action for n in MESHES}
    assert actions["Wolf3D_Head"] == actions["Wolf3D_Teeth"] == actions["EyeLeft"]
    assert actions["EyeRight"] == own  # kept, with the mapped curves added beside the user's curve
    paths = {fc.data_path for fc in keying.channels(eye)}
    assert 'key_blocks["viseme_aa"].value' in paths and 'key_blocks["jawOpen"].value' in paths
    _check_keys(likeness, _capture(likeness, frames=20))
