"""Render a synthetic clip of a random subject with its full ground truth (video.mp4 + truth.npz)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..facemodel import load_face_model
from ..job import Job, quiet_job
from ..render.camera import Camera, transform
from ..render.sh import SH_C0, sh_basis
from ..render.shading import eye_centres, render_face, rotate_eyes
from .albedo import procedural_albedo, texel_geometry
from .motion import expression_curves, head_motion
from .personal import dynamic_albedo, personal_expressions

# Forehead-to-chin height of a typical head (m): what "the face fills x% of the frame" measures.
FACE_HEIGHT = 0.19
# Cosine-lobe convolution factors of SH bands 0, 1, 2 (Ramamoorthi-Hanrahan), for directional lights.
_BAND_FACTOR = np.array([np.pi] + [2 * np.pi / 3] * 3 + [np.pi / 4] * 5)


def directional_sh(direction: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """(9, 3) irradiance coefficients of a distant light from unit `direction` (camera space, towards the
    light); a surface facing it straight gets about `colour` (RGB)."""
    d = np.asarray(direction, np.float64)
    d = d / np.linalg.norm(d)
    return np.outer(_BAND_FACTOR * sh_basis(d) / np.pi, colour)


def random_lighting(rng: np.random.Generator, frames: int, fps: float) -> np.ndarray:
    """(frames, 9, 3): mostly ambient plus a key light (front-ish, above, to a side), a weak fill, slow drift."""
    ambient = rng.uniform(0.35, 0.6) * (1 + rng.normal(0, 0.04, 3))
    key_colour = rng.uniform(0.45, 0.8) * (1 + rng.normal(0, 0.06, 3))
    azimuth = np.radians(rng.uniform(-60, 60))
    elevation = np.radians(rng.uniform(5, 50))
    t = np.arange(frames) / fps
    drift = np.radians(4.0) * np.sin(2 * np.pi * rng.uniform(0.02, 0.1) * t + rng.uniform(0, 6))
    out = np.zeros((frames, 9, 3))
    fill = directional_sh(np.array([-np.sin(azimuth), -0.2, 1.0]), 0.15 * key_colour)
    for i in range(frames):
        a = azimuth + drift[i]
        key = np.array([np.sin(a) * np.cos(elevation), np.sin(elevation), np.cos(a) * np.cos(elevation)])
        out[i] = directional_sh(key, key_colour) + fill
        out[i, 0] += ambient / SH_C0
    return out


def random_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """(H, W, 3) float RGB: a muted two-colour gradient with blurred noise."""
    c0, c1 = rng.uniform(0.1, 0.75, 3), rng.uniform(0.1, 0.75, 3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width]
    s = ((xx - width / 2) * np.cos(angle) + (yy - height / 2) * np.sin(angle)) / max(width, height) + 0.5
    bg = c0 * (1 - s[..., None]) + c1 * s[..., None]
    noise = rng.normal(size=(height, width, 3)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), max(width, height) / 25)
    noise /= max(float(np.abs(noise).max()), 1e-6)
    return np.clip(bg + 0.08 * noise, 0, 1).astype(np.float32)


def _streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent random streams, so that e.g. the subject does not change with the clip length."""
    names = ("subject", "albedo", "personal", "motion", "head", "camera", "light", "background", "noise")
    seqs = np.random.SeedSequence(seed).spawn(len(names))
    return {n: np.random.default_rng(s) for n, s in zip(names, seqs)}


def generate(
    seed: int,
    frames: int,
    size: tuple[int, int] = (512, 512),
    personal: bool = False,
    fps: float = 30.0,
    out_dir: str | Path = "synth",
    job: Job | None = None,
    albedo_size: int = 1024,
    model=None,
) -> dict[str, np.ndarray]:
    """Write out_dir/video.mp4 and out_dir/truth.npz for one random subject and performance; returns the truth.

    Same seed and arguments give the same truth arrays and frames. The image model is exactly
    core.render's: pixel = clip(albedo * SH irradiance) + sensor noise, no gamma, so unwrapped textures and
    fitted lighting compare with the truth directly. See load_truth for the keys.
    """
    job = job or quiet_job()
    width, height = (int(s) for s in size)
    if int(frames) != frames or frames < 1:
        raise ValueError(f"frames must be a positive whole number, got {frames}")
    frames = int(frames)
    if width < 32 or height < 32 or width > 8192 or height > 8192:
        raise ValueError(f"image size must be between 32 and 8192 pixels, got {width}x{height}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    video_path = out / "video.mp4"
    model = model or load_face_model()
    names = model.expression_names
    rng = _streams(int(seed))

    job.step("subject", 0, 1)
    identity = rng["subject"].normal(0, 1, model.n_identities).astype(np.float32)
    albedo = procedural_albedo(model, rng["albedo"], albedo_size)
    extra = np.zeros((len(names), model.n_vertices, 3), np.float32)
    dyn_names: tuple[str, ...] = ()
    dyn = np.zeros((0,) + albedo.shape, np.float32)
    if personal:
        extra = personal_expressions(model, rng["personal"])
        dyn_names, dyn = dynamic_albedo(model, rng["personal"], albedo)
    job.step("subject", 1, 1)

    weights, gaze = expression_curves(rng["motion"], frames, fps, names)
    rotation, drift = head_motion(rng["head"], frames, fps)
    fov = rng["camera"].uniform(40, 60)
    camera = Camera.from_fov(width, height, fov)
    fill = rng["camera"].uniform(0.38, 0.55)
    distance = camera.focal * FACE_HEIGHT / (fill * height)
    # Keep the face inside the frame: sideways drift scaled to the visible half-width at that distance.
    half_w = 0.5 * width / camera.focal * distance
    half_h = 0.5 * height / camera.focal * distance
    offset = np.array([rng["camera"].uniform(-0.15, 0.15) * half_w, rng["camera"].uniform(-0.1, 0.1) * half_h, 0])
    translation = np.array([0.0, 0.0, -distance]) + offset + drift * [half_w / 0.1, half_h / 0.1, distance / 0.6]
    lighting = random_lighting(rng["light"], frames, fps)
    # Exposure, as a camera would set it: frontal skin lands at a mid level (dark skin a little darker),
    # so eye whites and teeth stay below clipping.
    skin = albedo[texel_geometry(model, albedo.shape[0]).part["face"]].mean(0)
    luma = np.array([0.299, 0.587, 0.114])
    frontal = float(luma @ (sh_basis(np.array([0.0, 0.0, 1.0])) @ lighting.mean(0)))
    desired = np.clip(rng["light"].uniform(0.45, 0.62) / max(float(luma @ skin), 1e-3), 0.75, 1.4)
    lighting *= desired / max(frontal, 1e-3)
    background = random_background(rng["background"], width, height)
    noise_sigma = rng["noise"].uniform(1.0, 3.0) / 255
    blur_sigma = rng["noise"].uniform(0.4, 0.7)

    base = model.identity_shape(identity).astype(np.float32)
    shapes = (model.expressions + extra).reshape(len(names), -1)  # (53, V*3) generic + personal
    centres = eye_centres(model, base)
    # Expression-dependent albedo touches few texels: keep their static colour and deltas, and update
    # only those texels of one working copy per frame.
    frame_albedo = albedo.copy()
    flat_albedo = frame_albedo.reshape(-1, 3)
    dyn_idx = [names.index(n) for n in dyn_names]
    if len(dyn):
        support = np.flatnonzero(np.any(dyn.reshape(len(dyn), -1) != 0, axis=0).reshape(-1, 3).any(1))
        dyn_flat = np.ascontiguousarray(dyn.reshape(len(dyn), -1, 3)[:, support])
        static_support = albedo.reshape(-1, 3)[support]

    correspondence = _mediapipe_correspondence()
    lm68 = np.zeros((frames, 68, 2), np.float32)
    vis68 = np.zeros((frames, 68), bool)
    lm_mp = np.zeros((frames, 478, 2), np.float32) if correspondence is not None else None

    fourcc = cv2.VideoWriter_fourcc(*"mp4v")
    writer = cv2.VideoWriter(str(video_path), fourcc, float(fps), (width, height))
    if not writer.isOpened():
        raise OSError(f"cannot write a video to {video_path}")
    try:
        for i in range(frames):
            job.step("render", i, frames)
            v = base + (weights[i] @ shapes).reshape(-1, 3)
            v = rotate_eyes(model, v, gaze[i], centres)
            v_cam = transform(v.astype(np.float64), rotation[i], translation[i])
            if len(dyn):
                acc = static_support.copy()
                for k, j in enumerate(dyn_idx):
                    if weights[i, j] > 1e-4:
                        acc += weights[i, j] * dyn_flat[k]
                flat_albedo[support] = np.clip(acc, 0, 1)
            image, frags = render_face(model, camera, v_cam, frame_albedo, lighting[i], background)
            image = cv2.GaussianBlur(image, (0, 0), blur_sigma)
            # Sensor noise: uniform with the wanted sigma (5x cheaper to draw than normal; after blur-free
            # 8-bit quantization and compression the two are indistinguishable).
            noise = rng["noise"].random(image.shape, dtype=np.float32)
            image += (noise - 0.5) * (noise_sigma * np.sqrt(12.0))
            bgr = image[..., ::-1] * 255.0 + 0.5
            np.clip(bgr, 0, 255, out=bgr)
            writer.write(bgr.astype(np.uint8))

            pts = camera.project(v_cam[model.landmarks68])
            lm68[i] = pts
            vis68[i] = _visible(pts, -v_cam[model.landmarks68, 2], frags.depth)
            if correspondence is not None:
                lm_mp[i] = camera.project(np.asarray(correspondence.points(v_cam, model), np.float64))
        job.step("render", frames, frames)
    finally:
        writer.release()

    truth: dict[str, np.ndarray] = {
        "names": np.array(names),
        "weights": weights.astype(np.float32),
        "rotation": rotation.astype(np.float32),
        "translation": translation.astype(np.float32),
        "timestamps": (np.arange(frames) / fps).astype(np.float64),
        "fps": np.float64(fps),
        "focal": np.float64(camera.focal),
        "image_size": np.array([width, height], np.int32),
        "identity": identity,
        "lighting": lighting.astype(np.float32),
        "landmarks68": lm68,
        "visible68": vis68,
        "gaze": gaze.astype(np.float32),
        "albedo": albedo.astype(np.float16),
        "seed": np.int64(seed),
        "personal": np.bool_(personal),
    }
    if lm_mp is not None:
        truth["landmarks_mp"] = lm_mp
    if personal:
        truth["personal_expressions"] = extra
        truth["dynamic_albedo_names"] = np.array(dyn_names)
        truth["dynamic_albedo"] = dyn.astype(np.float16)
    np.savez_compressed(out / "truth.npz", **truth)
    return truth


def _visible(points: np.ndarray, depth: np.ndarray, zbuffer: np.ndarray, tolerance: float = 0.004) -> np.ndarray:
    """(N,) bool: inside the image and not behind the rendered surface by more than tolerance (m)."""
    h, w = zbuffer.shape
    xy = np.round(points).astype(int)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    out = np.zeros(len(points), bool)
    x, y = xy[inside, 0], xy[inside, 1]
    out[inside] = depth[inside] <= zbuffer[y, x] + tolerance
    return out


def _mediapipe_correspondence():
    """The ICT -> MediaPipe 478-point correspondence when core.facemodel provides one, else None."""
    try:
        from ..facemodel.correspondence import load_correspondence
    except ImportError:
        return None
    try:
        return load_correspondence()
    except Exception:  # noqa: BLE001 - missing data files: the key is optional
        return None


def load_truth(path: str | Path) -> dict[str, np.ndarray]:
    """The truth of a clip: a folder holding truth.npz, or the .npz itself; arrays loaded into memory.

    Keys: names (53,), weights (F, 53), rotation (F, 3) XYZ Euler deg, translation (F, 3) m (v_cam = R v + t),
    timestamps (F,), fps, focal (px), image_size [W, H], identity (100,), lighting (F, 9, 3) camera-space SH,
    landmarks68 (F, 68, 2) px, visible68 (F, 68), gaze (F, 2, 2) [left, right] x [yaw, pitch] deg (pitch down
    positive), albedo (S, S, 3) float16 atlas, seed, personal; landmarks_mp (F, 478, 2) when the MediaPipe
    correspondence exists; personal clips add personal_expressions (53, V, 3), dynamic_albedo_names (k,),
    dynamic_albedo (k, S, S, 3) float16 (albedo = static + sum_i w_i dyn_i).
    """
    p = Path(path)
    if p.is_dir():
        p = p / "truth.npz"
    if not p.exists():
        raise FileNotFoundError(f"no synthetic truth at {p}")
    with np.load(p, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
