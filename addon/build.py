"""Scene building from a capture (main thread only): head mesh, ARKit shape keys, keys, material, camera.

Conventions: core is right-handed Y up (camera looking down -Z); Blender is Z up. Everything is converted
once, here, by the rotation C = Rx(+90 deg): (x, y, z) -> (x, -z, y). Core's camera then sits at the world
origin looking down +Y, and the head pose R, t (v_cam = R v + t, R = Rz(c) Ry(b) Rx(a)) becomes the
object transform C R C^T = Ry(-c) Rz(b) Rx(a), which is exactly Blender's 'XZY' Euler mode with angles
(a, -c, b), and location C t. No Euler conversion, no wrap-around: the file's angles are keyed as they are.

A sample at time t lands on scene frame 1 + round(t * scene fps); the scene runs at the video's frame rate
(not the capture's, which a stride lowers), so video frame i is scene frame i + 1 and a movie clip starting
at frame 1 lines up with the keys. Untracked samples are not keyed: their F-curves interpolate across the gap.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import bpy
import numpy as np

from ..core.facemodel.arkit import ARKIT_NAMES, arkit_name_to_ict, ict_to_arkit
from . import keying

FIRST_FRAME = 1  # scene frame of video frame 0

# Parts of the ICT head -> material slot. Sub-mesh ranges come from FaceModel.submeshes.
PARTS = {
    "skin": ("face", "head_and_neck", "eye_socket_left", "eye_socket_right"),
    "mouth": ("mouth_socket", "gums_and_tongue"),
    "teeth": ("teeth",),
    # Each eyeball is an outer shell (sclera with the cornea bulge) around an inner one (iris, pupil); the
    # inner ranges lie inside the eyeball ranges, so they are assigned after.
    "cornea": ("eyeball_left", "eyeball_right"),
    "eyes": ("iris_left", "iris_right"),
    # Alpha-textured cards upstream, never rendered by Likeness (DESIGN.md): kept in the mesh so vertex
    # ids match the model, with a fully transparent material.
    "cards": ("lacrimal_fluid_left", "lacrimal_fluid_right", "eye_blend_left", "eye_blend_right",
              "eye_occlusion_left", "eye_occlusion_right", "eyelashes_left", "eyelashes_right"),
}
SKIN_DISPLAY = (0.82, 0.67, 0.58)  # plain skin tone in display values, used when there is no albedo map
PART_COLORS = {  # linear RGB
    "skin": (0.62, 0.40, 0.30), "mouth": (0.35, 0.06, 0.06), "teeth": (0.80, 0.78, 0.70),
    "cornea": (0.80, 0.80, 0.78), "eyes": (0.80, 0.80, 0.78),
}
EYE_RADIUS = "likeness_eye_radius"  # vertex attribute: mm from the eye's optical axis (eyes only)
CORNEA_MM, IRIS_MM, PUPIL_MM = 6.0, 5.8, 2.0
EYE_RAMP_MM = 8.0  # distance from the axis at the end (position 1) of the eyes' colour ramp
IRIS_COLOR = (0.10, 0.05, 0.025)  # linear RGB, brown: where the personal model has no eye colour
ATLAS_GRID = 4  # dynamic albedo maps per atlas image side: 16 maps per image keeps EEVEE's sampler count low
MAX_ATLAS_SIZE = 8192


@dataclass
class HeadBuild:
    """What build_head made, for callers that want to add to it (tests, retargeting)."""

    collection: bpy.types.Collection
    head: bpy.types.Object
    camera: bpy.types.Object | None
    frames: np.ndarray  # (keys,) scene frames that were keyed
    personal_error: str | None = None  # why a personal model asked for was not made (the head is the generic one)


def to_blender(points: np.ndarray) -> np.ndarray:
    """(..., 3) core Y-up coordinates -> Blender Z-up: (x, y, z) -> (x, -z, y)."""
    points = np.asarray(points, np.float32)
    out = np.empty_like(points)
    out[..., 0] = points[..., 0]
    out[..., 1] = -points[..., 2]
    out[..., 2] = points[..., 1]
    return out


def pose_to_blender(rotation_deg: np.ndarray, translation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Core head pose (frames, 3) XYZ degrees + (frames, 3) metres -> Blender 'XZY' Euler radians, location."""
    a = np.radians(np.asarray(rotation_deg, np.float64))
    euler = np.stack([a[:, 0], -a[:, 2], a[:, 1]], axis=1).astype(np.float32)
    return euler, to_blender(translation)


def capture_frames(capture, fps: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(scene frames (keys,), sample index (keys,)) of the tracked samples, one key per scene frame."""
    fps = fps or capture.fps
    frames = FIRST_FRAME + np.rint(np.asarray(capture.timestamps, np.float64) * fps).astype(np.int64)
    samples = np.nonzero(capture.tracked)[0]
    frames = frames[samples]
    # Two samples rounding to one frame (variable frame rate): keep the later.
    _, last = np.unique(frames[::-1], return_index=True)
    keep = np.sort(len(frames) - 1 - last)
    return frames[keep].astype(np.float32), samples[keep]


def build_head(
    context,
    capture,
    model,
    personal=None,
    name: str = "Likeness",
    *,
    video_path: str | None = None,
    camera: bool = True,
    set_scene: bool = True,
) -> HeadBuild:
    """Build a collection with the head (mesh, 52 ARKit shape keys, keys, material) and optionally a camera.

    capture: core.io.Capture; model: core.facemodel.FaceModel; personal: a PersonalModel or None (see
    _personal() for what is read from it). video_path: the video, shown behind the camera when given.
    set_scene: set the scene's fps, frame range, resolution and camera from the capture.
    """
    if not np.any(capture.tracked):
        raise ValueError("the capture has no tracked frame: no face was found in the video")
    p = _personal(personal, model, capture)
    collection = bpy.data.collections.new(name)
    context.scene.collection.children.link(collection)

    mesh = _head_mesh(f"{name} Head", model, p["neutral"])
    head = bpy.data.objects.new(f"{name} Head", mesh)
    collection.objects.link(head)
    _shape_keys(head, model, p["neutral"], p["expressions"], p["expression_names"])
    _materials(mesh, model, p["albedo"], p["dynamic"], p["iris"])

    if set_scene:
        _scene_timing(context.scene, capture)
    fps = context.scene.render.fps / context.scene.render.fps_base
    frames, samples = capture_frames(capture, fps)
    _animate(head, capture, frames, samples)
    head["likeness"] = {"frames": int(capture.n_frames), "tracked": int(np.sum(capture.tracked)),
                        "fps": float(capture.fps), "video": str(video_path or capture.metadata.get("source_video", "")),
                        "metadata": json.dumps(capture.metadata, default=str)[:4000]}

    cam = None
    if camera and capture.focal > 0 and capture.image_size[0] > 0:
        cam = build_camera(context, capture, collection, f"{name} Camera", video_path, set_scene=set_scene)
    return HeadBuild(collection, head, cam, frames)


def _personal(personal, model, capture) -> dict:
    """Rest shape, expression deltas, albedo and dynamic albedo: from a PersonalModel, else generic ICT.

    Albedo values are the video's display values (0..1, sRGB-like) in the FaceModel.atlas_uvs layout;
    dynamic albedo deltas (k, s, s, 3) add to them with weight = the shape's value. iris: the eyes' colour,
    linear RGB (IRIS_COLOR where the model has none).
    """
    if personal is None:
        identity = capture.identity if np.any(capture.identity) else None
        return {"neutral": model.identity_shape(identity), "expressions": model.expressions,
                "expression_names": tuple(model.expression_names), "albedo": None, "dynamic": [],
                "iris": IRIS_COLOR}
    from ..core.facemodel.arkit import ict_name_to_arkit

    dynamic = [(ict_name_to_arkit(n), m) for n, m in zip(personal.dynamic_albedo_names, personal.dynamic_albedo)]
    # display -> linear as the skin's Gamma 2.2 node does it, for one colour
    iris = IRIS_COLOR if personal.eye_colour is None else tuple(float(c) ** 2.2 for c in personal.eye_colour)
    return {"neutral": personal.neutral(model), "expressions": personal.expression_deltas(model),
            "expression_names": tuple(model.expression_names), "albedo": personal.albedo, "dynamic": dynamic,
            "iris": iris}


def _head_mesh(name: str, model, neutral: np.ndarray) -> bpy.types.Mesh:
    mesh = bpy.data.meshes.new(name)
    n_loops = len(model.polygon_vertices)
    mesh.vertices.add(len(neutral))
    mesh.vertices.foreach_set("co", to_blender(neutral).ravel())
    mesh.loops.add(n_loops)
    mesh.loops.foreach_set("vertex_index", model.polygon_vertices.astype(np.int32))
    mesh.polygons.add(len(model.polygon_sizes))
    mesh.polygons.foreach_set("loop_start", model.polygon_starts.astype(np.int32))
    mesh.update(calc_edges=True)

    ict = mesh.uv_layers.new(name="ICT")  # upstream UDIM layout, for ICT-compatible textures
    ict.uv.foreach_set("vector", model.uvs[model.polygon_uvs].astype(np.float32).ravel())
    atlas = mesh.uv_layers.new(name="Likeness")  # core.render.atlas layout: the maps Likeness makes
    atlas.uv.foreach_set("vector", np.asarray(model.atlas_uvs, np.float32).ravel())
    atlas.active = True
    atlas.active_render = True

    mesh.polygons.foreach_set("material_index", _polygon_parts(model))
    radius = mesh.attributes.new(EYE_RADIUS, "FLOAT", "POINT")
    radius.data.foreach_set("value", _eye_radius(model, neutral))
    mesh.polygons.foreach_set("use_smooth", np.ones(len(model.polygon_sizes), bool))
    return mesh


def _polygon_parts(model) -> np.ndarray:
    """(polygons,) material index by the sub-mesh of each polygon's first vertex."""
    first = model.polygon_vertices[model.polygon_starts]
    index = np.zeros(len(first), np.int32)
    for slot, submeshes in enumerate(PARTS.values()):
        for sub in submeshes:
            a, b = model.submeshes[sub]
            index[(first >= a) & (first < b)] = slot
    return index


def _eye_radius(model, neutral) -> np.ndarray:
    """(V,) distance in mm of each eye vertex from its eye's forward axis through the cornea's apex.

    ICT ships no eye texture; the materials draw sclera, iris and pupil from this distance instead, and
    as a vertex attribute it follows the eyes when eyeLook* shape keys turn them.
    """
    out = np.zeros(len(neutral), np.float32)
    for side in ("left", "right"):
        a, b = model.submeshes[f"eyeball_{side}"]
        shell_end = model.submeshes[f"iris_{side}"][0]
        apex = neutral[a:shell_end][np.argmax(neutral[a:shell_end, 2])]  # core is +z forward
        out[a:b] = 1000.0 * np.linalg.norm(neutral[a:b, :2] - apex[:2], axis=1)
    return out


def _shape_keys(obj, model, neutral, expressions, expression_names) -> None:
    """Basis + the 52 ARKit keys; a split ARKit shape is the sum of its ICT halves (weight w = both at w)."""
    basis = to_blender(neutral)
    obj.shape_key_add(name="Basis", from_mix=False)
    index = {n: i for i, n in enumerate(expression_names)}
    for arkit in ARKIT_NAMES:
        key = obj.shape_key_add(name=arkit, from_mix=False)
        sources = [index[s] for s in arkit_name_to_ict(arkit) if s in index]
        # tongueOut has no ICT shape: an empty key, so all 52 ARKit names exist for retargeting and export.
        if sources:
            delta = np.sum([np.asarray(expressions[i], np.float32) for i in sources], axis=0)
            key.data.foreach_set("co", (basis + to_blender(delta)).ravel())
    obj.data.shape_keys.name = f"{obj.name} Keys"
    obj.data.shape_keys.use_relative = True


def video_fps(capture) -> float:
    """The source video's frame rate: the pipeline's metadata, else the capture's times its frame stride."""
    fps = float(capture.metadata.get("source_fps") or 0.0)
    if fps > 0:
        return fps
    fps = float(capture.fps) if capture.fps > 0 else 30.0
    steps = np.diff(np.asarray(capture.frame_indices))
    return fps * float(np.median(steps)) if len(steps) and np.median(steps) > 0 else fps


def _scene_timing(scene, capture) -> None:
    fps = video_fps(capture)
    scene.render.fps = max(1, round(fps))
    scene.render.fps_base = scene.render.fps / fps
    frames = FIRST_FRAME + np.rint(np.asarray(capture.timestamps) * fps).astype(int)
    scene.frame_start = int(frames.min())
    scene.frame_end = int(frames.max())


def _animate(head, capture, frames: np.ndarray, samples: np.ndarray) -> None:
    key = head.data.shape_keys
    arkit = ict_to_arkit(capture.weights[samples], capture.names)  # (keys, 52)
    present = set(capture.names)
    cols = [a for a, name in enumerate(ARKIT_NAMES) if any(s in present for s in arkit_name_to_ict(name))]
    keying.key_array(key, [(f'key_blocks["{ARKIT_NAMES[a]}"].value', 0) for a in cols], frames, arkit[:, cols])

    head.rotation_mode = "XZY"
    euler, location = pose_to_blender(capture.rotation[samples], capture.translation[samples])
    paths = [("location", i) for i in range(3)] + [("rotation_euler", i) for i in range(3)]
    keying.key_array(head, paths, frames, np.concatenate([location, euler], axis=1), group="Head Pose")
    # Show the first keyed pose without needing a frame change.
    head.location = location[0].tolist()
    head.rotation_euler = euler[0].tolist()


def build_camera(context, capture, collection, name: str, video_path: str | None = None, *,
                 set_scene: bool = True) -> bpy.types.Object:
    """The video's camera: at the origin looking down +Y (core's -Z), focal and resolution from the capture."""
    width, height = (int(v) for v in capture.image_size)
    data = bpy.data.cameras.new(name)
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = 36.0
    data.lens = float(capture.focal) * data.sensor_width / width
    data.clip_start = 0.01
    data.clip_end = 100.0
    cam = bpy.data.objects.new(name, data)
    cam.rotation_euler = (math.pi / 2, 0.0, 0.0)
    collection.objects.link(cam)
    if video_path:
        clip = bpy.data.movieclips.load(bpy.path.abspath(video_path), check_existing=True)
        clip.frame_start = FIRST_FRAME
        data.show_background_images = True
        bg = data.background_images.new()
        bg.source = "MOVIE_CLIP"
        bg.clip = clip
        bg.alpha = 1.0
        bg.frame_method = "FIT"
    if set_scene:
        scene = context.scene
        scene.camera = cam
        scene.render.resolution_x = width
        scene.render.resolution_y = height
        scene.render.resolution_percentage = 100
        scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    return cam


# --- materials -------------------------------------------------------------------------------------------


def _materials(mesh, model, albedo, dynamic, iris=IRIS_COLOR) -> None:
    for part in PARTS:
        if part == "skin":
            mat = _skin_material(mesh.name, albedo, dynamic, mesh.shape_keys)
        elif part == "cards":
            mat = _transparent_material(f"{mesh.name} Cards")
        elif part in ("cornea", "eyes"):
            mat = _eye_material(f"{mesh.name} {part.title()}", cornea=part == "cornea", iris=iris)
        else:
            mat = _plain_material(f"{mesh.name} {part.title()}", PART_COLORS[part],
                                  roughness=0.15 if part == "teeth" else 0.5)
        mesh.materials.append(mat)


def _eye_material(name, cornea: bool, iris=IRIS_COLOR):
    """Outer shell: clear over the iris, white elsewhere; inner: pupil, iris (linear RGB), sclera by axis
    distance."""
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    tree = mat.node_tree
    nodes, links = tree.nodes, tree.links
    bsdf = nodes["Principled BSDF"]
    bsdf.inputs["Roughness"].default_value = 0.05 if cornea else 0.3
    attr = nodes.new("ShaderNodeAttribute")
    attr.attribute_type = "GEOMETRY"
    attr.attribute_name = EYE_RADIUS
    attr.location = (-900, 300)
    if cornea:
        bsdf.inputs["Base Color"].default_value = (*PART_COLORS["cornea"], 1.0)
        clear = nodes.new("ShaderNodeMath")
        clear.operation = "LESS_THAN"
        clear.inputs[1].default_value = CORNEA_MM
        clear.location = (-600, 300)
        links.new(attr.outputs["Fac"], clear.inputs[0])
        # Alpha 0 over the iris (a glossy clear coat stays), 1 on the sclera.
        invert = nodes.new("ShaderNodeMath")
        invert.operation = "SUBTRACT"
        invert.inputs[0].default_value = 1.0
        invert.location = (-400, 300)
        links.new(clear.outputs[0], invert.inputs[1])
        links.new(invert.outputs[0], bsdf.inputs["Alpha"])
        mat.surface_render_method = "BLENDED"
    else:
        ramp = nodes.new("ShaderNodeValToRGB")
        ramp.location = (-600, 300)
        elements = ramp.color_ramp.elements
        ramp.color_ramp.interpolation = "LINEAR"
        top = EYE_RAMP_MM
        math_node = nodes.new("ShaderNodeMath")
        math_node.operation = "DIVIDE"
        math_node.inputs[1].default_value = top
        math_node.location = (-750, 300)
        links.new(attr.outputs["Fac"], math_node.inputs[0])
        links.new(math_node.outputs[0], ramp.inputs["Fac"])
        stops = [(0.0, (0.005, 0.005, 0.005)), (PUPIL_MM / top, (0.005, 0.005, 0.005)),
                 ((PUPIL_MM + 0.3) / top, iris), (IRIS_MM / top, iris),
                 ((IRIS_MM + 0.4) / top, PART_COLORS["eyes"]), (1.0, PART_COLORS["eyes"])]
        elements[0].position, elements[0].color = stops[0][0], (*stops[0][1], 1.0)
        elements[1].position, elements[1].color = stops[-1][0], (*stops[-1][1], 1.0)
        for position, color in stops[1:-1]:
            element = elements.new(position)
            element.color = (*color, 1.0)
        links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    mat.diffuse_color = (*PART_COLORS["eyes"], 1.0)
    return mat


def _plain_material(name, color, roughness=0.5):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*color, 1.0)
    bsdf.inputs["Roughness"].default_value = roughness
    mat.diffuse_color = (*color, 1.0)
    return mat


def _transparent_material(name):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes = mat.node_tree.nodes
    nodes.remove(nodes["Principled BSDF"])
    transparent = nodes.new("ShaderNodeBsdfTransparent")
    mat.node_tree.links.new(transparent.outputs[0], nodes["Material Output"].inputs["Surface"])
    mat.surface_render_method = "BLENDED"  # EEVEE; Cycles reads the shader alone
    mat.diffuse_color = (1.0, 1.0, 1.0, 0.0)
    return mat


def image_from_array(name: str, rgb: np.ndarray, *, signed: bool = False) -> bpy.types.Image:
    """(H, W, 3) values, rows top-down -> a packed Non-Color image.

    signed=False: 0..1 values in an 8-bit image packed as PNG; signed=True: a float image packed as
    OpenEXR (deltas keep their sign). Non-Color: the material does its own display -> linear conversion.
    """
    rgb = np.asarray(rgb, np.float32)
    h, w = rgb.shape[:2]
    image = bpy.data.images.new(name, w, h, alpha=False, float_buffer=signed)
    image.colorspace_settings.name = "Non-Color"
    rgba = np.ones((h, w, 4), np.float32)
    rgba[..., :3] = rgb[::-1]  # Blender stores rows bottom-up
    image.pixels.foreach_set(rgba.ravel())
    image.file_format = "OPEN_EXR" if signed else "PNG"
    image.pack()
    return image


def _skin_material(mesh_name, albedo, dynamic, shape_keys):
    """Principled skin: static albedo + dynamic albedo deltas added by shape-key drivers.

    The maps hold the video's display values; they are added in display space (as core does) and turned
    into linear reflectance once at the end by a Gamma 2.2 node (within about 1% of the sRGB curve).
    """
    mat = bpy.data.materials.new(f"{mesh_name} Skin")
    mat.use_nodes = True
    tree = mat.node_tree
    nodes, links = tree.nodes, tree.links
    bsdf = nodes["Principled BSDF"]
    bsdf.inputs["Roughness"].default_value = 0.5
    bsdf.location = (600, 300)
    nodes["Material Output"].location = (900, 300)
    uv = nodes.new("ShaderNodeUVMap")
    uv.uv_map = "Likeness"
    uv.location = (-900, 300)

    if albedo is None:  # no personal model: a plain skin tone, still an image so the graph is the same
        albedo = np.broadcast_to(np.float32(SKIN_DISPLAY), (16, 16, 3))
    base = nodes.new("ShaderNodeTexImage")
    base.name = base.label = "Albedo"
    base.image = image_from_array(f"{mesh_name} Albedo", albedo)
    base.location = (-600, 300)
    links.new(uv.outputs["UV"], base.inputs["Vector"])
    color = base.outputs["Color"]

    per_atlas = ATLAS_GRID * ATLAS_GRID
    for first in range(0, len(dynamic), per_atlas):
        chunk = dynamic[first:first + per_atlas]
        image = image_from_array(f"{mesh_name} Dynamic Albedo {first // per_atlas + 1}",
                                 _atlas([m for _, m in chunk]), signed=True)
        for j, (key_name, _) in enumerate(chunk):
            row, col = divmod(j, ATLAS_GRID)
            y = -100 - 220 * (first + j)
            mapping = nodes.new("ShaderNodeMapping")
            mapping.location = (-600, y)
            mapping.inputs["Scale"].default_value = (1 / ATLAS_GRID, 1 / ATLAS_GRID, 1.0)
            mapping.inputs["Location"].default_value = (col / ATLAS_GRID, 1 - (row + 1) / ATLAS_GRID, 0.0)
            links.new(uv.outputs["UV"], mapping.inputs["Vector"])
            tex = nodes.new("ShaderNodeTexImage")
            tex.image = image
            tex.extension = "EXTEND"
            tex.location = (-400, y)
            tex.label = f"{key_name} albedo"
            links.new(mapping.outputs["Vector"], tex.inputs["Vector"])
            mix = nodes.new("ShaderNodeMix")
            mix.data_type = "RGBA"
            mix.blend_type = "ADD"
            mix.clamp_result = False
            mix.name = mix.label = f"Dynamic {first + j:02d} {key_name}"
            mix.location = (-100, y)
            links.new(color, mix.inputs[6])  # A (colour); [0] is the factor
            links.new(tex.outputs["Color"], mix.inputs[7])  # B (colour)
            _drive_by_shape_key(tree, f'nodes["{mix.name}"].inputs[0].default_value', shape_keys, key_name)
            color = mix.outputs[2]  # Result (colour)
    if dynamic:  # sums stay unclamped on the way; the final colour is a reflectance in 0..1
        mix.clamp_result = True
    gamma = nodes.new("ShaderNodeGamma")
    gamma.name = gamma.label = "Display to Linear"
    gamma.inputs["Gamma"].default_value = 2.2
    gamma.location = (300, 300)
    links.new(color, gamma.inputs["Color"])
    links.new(gamma.outputs["Color"], bsdf.inputs["Base Color"])
    mat.diffuse_color = (*PART_COLORS["skin"], 1.0)
    return mat


def _drive_by_shape_key(tree, data_path: str, shape_keys, key_name: str) -> None:
    """Driver `var` = the shape key's value: a simple expression, evaluated without Python (auto-exec off)."""
    driver = tree.driver_add(data_path).driver
    driver.type = "SCRIPTED"
    driver.expression = "var"
    var = driver.variables.new()
    var.name = "var"
    var.type = "SINGLE_PROP"
    var.targets[0].id_type = "KEY"
    var.targets[0].id = shape_keys
    var.targets[0].data_path = f'key_blocks["{key_name}"].value'


def _atlas(maps: list[np.ndarray]) -> np.ndarray:
    """Up to ATLAS_GRID^2 same-size (h, w, 3) maps -> one (G h, G w, 3) image, row-major tiles, rows top-down."""
    h, w = maps[0].shape[:2]
    step = 1
    while max(h, w) // step * ATLAS_GRID > MAX_ATLAS_SIZE:
        step *= 2
    tiles = [np.asarray(m, np.float32)[::step, ::step] for m in maps]
    th, tw = tiles[0].shape[:2]
    out = np.zeros((ATLAS_GRID * th, ATLAS_GRID * tw, 3), np.float32)
    for j, tile in enumerate(tiles):
        if tile.shape != tiles[0].shape:
            raise ValueError(f"dynamic albedo maps differ in size: {tile.shape} vs {tiles[0].shape}")
        row, col = divmod(j, ATLAS_GRID)
        out[row * th:(row + 1) * th, col * tw:(col + 1) * tw] = tile
    return out
