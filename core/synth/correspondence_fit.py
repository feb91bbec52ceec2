"""Fit the MediaPipe-478 -> ICT surface correspondence to what the detector itself reports on synthetic renders.

Renders of random subjects, expressions, head poses and cameras have known vertices; MediaPipe runs on each.
Start: every landmark's pixel on near-frontal renders is looked up in the render's own fragments (which
triangle, which barycentrics it shows), the median of those surface points snapped back to the neutral
surface; or, where given, MediaPipe's canonical mesh aligned to the model (core.facemodel.correspondence).
Then per landmark a Gauss-Newton step in the surface's tangent plane minimises the reprojection error over
all renders (Huber-weighted), snapped back onto the surface, a few times.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..facemodel import FaceModelSourceError, load_face_model
from ..facemodel.correspondence import (
    MEDIAPIPE_IRIS_LEFT,
    MEDIAPIPE_IRIS_RIGHT,
    N_POINTS,
    Correspondence,
    geometric_correspondence,
    load_correspondence,
    save_correspondence,
    snap_to_surface,
)
from ..facemodel.model import FaceModel
from ..job import Job, quiet_job
from ..render.camera import Camera, euler_to_matrix, transform
from ..render.shading import render_face
from .albedo import procedural_albedo
from .generate import FACE_HEIGHT, random_background, random_lighting

# Renders for the build and for tests: no test may use the build's seeds for evaluation.
BUILD_SEED = 20261127
BUILD_RENDERS = 64
EXPRESSIVE = ("jawOpen", "mouthSmile_L", "mouthSmile_R", "eyeBlink_L", "eyeBlink_R", "browInnerUp_L",
              "browInnerUp_R", "mouthFunnel", "mouthPucker", "mouthStretch_L", "mouthStretch_R", "cheekPuff")


@dataclass
class RenderSet:
    """Renders with their truth: vertices (R, V, 3) camera space (m), rotations (R, 3, 3) model->camera,
    focal (R,), centre (R, 2), detected points (R, 478, 2) px, frag_tri/frag_bary (R, 478) / (R, 478, 3)
    the surface each detected pixel shows (-1 where it shows background), yaw (R,) degrees."""

    vertices: np.ndarray
    rotations: np.ndarray
    focal: np.ndarray
    centre: np.ndarray
    points: np.ndarray
    frag_tri: np.ndarray
    frag_bary: np.ndarray
    yaw: np.ndarray

    def __len__(self) -> int:
        return len(self.points)

    def project(self, cam_points: np.ndarray) -> np.ndarray:
        """(R, L, 3) camera-space points -> (R, L, 2) pixels."""
        z = -cam_points[..., 2]
        x = self.centre[:, None, 0] + self.focal[:, None] * cam_points[..., 0] / z
        y = self.centre[:, None, 1] - self.focal[:, None] * cam_points[..., 1] / z
        return np.stack([x, y], -1)


def render_set(model: FaceModel, count: int, seed: int, size: tuple[int, int] = (480, 480), subjects: int = 4,
               job: Job | None = None) -> RenderSet:
    """`count` stills of `subjects` random people (random expressions, pose, camera, light) and MediaPipe's
    points on each (renders where it finds no face are dropped)."""
    from ..landmarks.mediapipe import MediaPipeBackend

    job = job or quiet_job()
    rng = np.random.default_rng(seed)
    width, height = size
    names = list(model.expression_names)
    expressive = [names.index(n) for n in EXPRESSIVE if n in names]
    albedos = []
    for s in range(subjects):
        job.step("correspondence: subjects", s, subjects)
        albedos.append(procedural_albedo(model, rng, 512))
    identities = rng.normal(0, 1, (subjects, model.n_identities)).astype(np.float32)
    keep: dict[str, list] = {k: [] for k in ("vertices", "rotations", "focal", "centre", "points", "tri", "bary",
                                             "yaw")}
    with MediaPipeBackend() as detector:
        for i in range(count):
            job.step("correspondence: renders", i, count)
            subject = i % subjects
            weights = np.zeros(len(names), np.float32)
            if i % 4:  # every fourth render keeps a neutral face
                picks = rng.choice(len(names), rng.integers(1, 5), replace=False)
                weights[picks] = rng.uniform(0.1, 0.7, len(picks))
                main = rng.choice(expressive)
                weights[main] = rng.uniform(0.3, 1.0)
            yaw = rng.uniform(-35, 35) if i % 3 else rng.uniform(-8, 8)
            rotation = np.array([rng.uniform(-18, 18), yaw, rng.uniform(-12, 12)])
            camera = Camera.from_fov(width, height, rng.uniform(25, 60))
            distance = camera.focal * FACE_HEIGHT / (rng.uniform(0.35, 0.65) * height)
            half = 0.5 * width / camera.focal * distance
            translation = np.array([rng.uniform(-0.2, 0.2) * half, rng.uniform(-0.15, 0.15) * half, -distance])
            v_cam = transform(model.vertices(identities[subject], weights).astype(np.float64), rotation, translation)
            light = random_lighting(rng, 1, 30.0)[0]
            image, frags = render_face(model, camera, v_cam, albedos[subject], light,
                                       random_background(rng, width, height))
            image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 0.7)) + rng.normal(0, 2 / 255, image.shape)
            bgr = np.round(np.clip(image[..., ::-1], 0, 1) * 255).astype(np.uint8)
            found = detector.detect(bgr)
            if found is None:
                continue
            xy = np.clip(np.round(found.points).astype(int), 0, [width - 1, height - 1])
            keep["vertices"].append(v_cam.astype(np.float32))
            keep["rotations"].append(euler_to_matrix(rotation))
            keep["focal"].append(camera.focal)
            keep["centre"].append(camera.center)
            keep["points"].append(found.points.astype(np.float64))
            keep["tri"].append(frags.triangle[xy[:, 1], xy[:, 0]])
            keep["bary"].append(frags.bary[xy[:, 1], xy[:, 0]])
            keep["yaw"].append(yaw)
    job.step("correspondence: renders", count, count)
    if not keep["points"]:
        raise RuntimeError("MediaPipe found no face on any synthetic render")
    return RenderSet(np.stack(keep["vertices"]), np.stack(keep["rotations"]), np.array(keep["focal"]),
                     np.array(keep["centre"]), np.stack(keep["points"]), np.stack(keep["tri"]),
                     np.stack(keep["bary"]).astype(np.float64), np.array(keep["yaw"]))


def _surface_groups() -> tuple[tuple[np.ndarray, str], ...]:
    return ((np.arange(468), "face"), (MEDIAPIPE_IRIS_RIGHT, "iris_right"), (MEDIAPIPE_IRIS_LEFT, "iris_left"))


def backprojected_correspondence(model: FaceModel, renders: RenderSet, max_yaw: float = 10.0) -> Correspondence:
    """Start from the detector: the surface under each landmark's pixel on near-frontal renders, carried back
    to the neutral head by its triangle and barycentrics, median over renders, snapped to the surface."""
    use = np.abs(renders.yaw) <= max_yaw
    if use.sum() < 3:
        use = np.argsort(np.abs(renders.yaw))[:3]
    tri, bary = renders.frag_tri[use], renders.frag_bary[use]  # (R', 478)
    neutral = model.neutral.astype(np.float64)
    points = np.einsum("rlcj,rlc->rlj", neutral[model.triangles[np.maximum(tri, 0)]], bary)
    points[tri < 0] = np.nan  # background under the pixel (a point just off the silhouette)
    centre = np.nanmedian(points, axis=0)
    missing = np.isnan(centre).any(axis=1)
    if missing.any():
        raise RuntimeError(f"landmarks {np.flatnonzero(missing)[:10]} never fell on the rendered head")
    out = snap_to_surface(model, centre)
    return Correspondence(out.triangle, out.bary, out.model_sha256, "backprojected")


def reprojection_errors(model: FaceModel, corr: Correspondence, renders: RenderSet) -> np.ndarray:
    """(R, 478) pixel distance between the corresponded points projected and the detector's points."""
    proj = renders.project(corr.points(renders.vertices.astype(np.float64), model))
    return np.linalg.norm(proj - renders.points, axis=-1)


def interocular(renders: RenderSet) -> np.ndarray:
    """(R,) detected outer-eye-corner distance in pixels (MediaPipe 33 and 263)."""
    return np.linalg.norm(renders.points[:, 33] - renders.points[:, 263], axis=-1)


def refine_correspondence(model: FaceModel, start: Correspondence, renders: RenderSet, iterations: int = 6,
                          huber: float = 0.02, max_step: float = 0.004) -> Correspondence:
    """Move each landmark over the surface to best explain the detector's points over all renders.

    Per landmark: Gauss-Newton on a 2-D offset in the neutral surface's tangent plane (the head moves it by
    each render's rotation; identity and expression are taken as locally rigid), robust (Huber, scale
    `huber` x inter-ocular distance), steps capped at max_step metres, then snapped back to the surface.
    """
    corr = start
    neutral = model.neutral.astype(np.float64)
    verts = renders.vertices.astype(np.float64)
    scale = huber * interocular(renders)[:, None]  # (R, 1) px
    for _ in range(iterations):
        corners = model.triangles[corr.triangle]  # (L, 3)
        bary = corr.bary.astype(np.float64)
        cam = np.einsum("rlcj,lc->rlj", verts[:, corners], bary)  # (R, L, 3)
        err = renders.points - renders.project(cam)  # (R, L, 2)
        z = -cam[..., 2]
        f = renders.focal[:, None]
        # d(pixel)/d(camera point): x = cx + f X / z, y = cy - f Y / z with z = -Z.
        jac = np.zeros(cam.shape[:2] + (2, 3))
        jac[..., 0, 0] = f / z
        jac[..., 0, 2] = f * cam[..., 0] / z**2
        jac[..., 1, 1] = -f / z
        jac[..., 1, 2] = -f * cam[..., 1] / z**2
        tri_v = neutral[corners]  # (L, 3, 3)
        normal = np.cross(tri_v[:, 1] - tri_v[:, 0], tri_v[:, 2] - tri_v[:, 0])
        normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
        helper = np.where(np.abs(normal[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
        t1 = np.cross(normal, helper)
        t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
        tangent = np.stack([t1, np.cross(normal, t1)], axis=2)  # (L, 3, 2)
        a = np.einsum("rlij,rjk,lkm->rlim", jac, renders.rotations, tangent)  # (R, L, 2, 2)
        norm = np.linalg.norm(err, axis=-1)
        w = np.where(norm <= scale, 1.0, scale / np.maximum(norm, 1e-12))  # Huber weights
        lhs = np.einsum("rl,rlia,rlib->lab", w, a, a) + 1e-9 * np.eye(2)
        rhs = np.einsum("rl,rlia,rli->la", w, a, err)
        step = np.einsum("lmk,lk->lm", tangent, np.linalg.solve(lhs, rhs[..., None])[..., 0])
        length = np.linalg.norm(step, axis=1, keepdims=True)
        step *= np.minimum(1.0, max_step / np.maximum(length, 1e-12))
        target = np.einsum("lcj,lc->lj", tri_v, bary) + step
        corr = snap_to_surface(model, target)
    return Correspondence(corr.triangle, corr.bary, model.source_sha256, f"refined on {len(renders)} renders")


def build_recipe(renders: int = BUILD_RENDERS, seed: int = BUILD_SEED) -> str:
    """Fingerprint of what a built correspondence depends on: the build's settings, MediaPipe's version and the
    source of the code that renders the faces, detects their points and fits the correspondence.

    `setup` fits it again when this changes. Until session 14 only the face model's checksum was compared, and
    a machine kept a correspondence fitted before the fit's last change (83 of 478 points on other triangles)
    under every benchmark of sessions 2-12.
    """
    import hashlib
    from importlib import metadata

    core = Path(__file__).resolve().parents[1]
    files = [core / "synth" / name for name in ("correspondence_fit.py", "albedo.py", "generate.py")]
    files += [core / "facemodel" / "correspondence.py", core / "landmarks" / "mediapipe.py",
              core / "landmarks" / "base.py", *sorted((core / "render").glob("*.py"))]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0" + f.read_bytes())
    try:
        mediapipe = metadata.version("mediapipe")
    except metadata.PackageNotFoundError:
        mediapipe = "none"
    digest.update(f"renders={renders} seed={seed} mediapipe={mediapipe}".encode())
    return digest.hexdigest()[:16]


def stale_because(corr: Correspondence, model: FaceModel) -> str | None:
    """Why `setup` should fit corr again for model (another face model, or code that fits it differently now),
    or None where it is current."""
    if corr.model_sha256 != model.source_sha256:
        return "fitted for another face model"
    if corr.recipe != build_recipe():
        return "the code that fits it changed since it was fitted"
    return None


def build_correspondence(cache_dir: str | os.PathLike | None = None, renders: int = BUILD_RENDERS,
                         seed: int = BUILD_SEED, canonical_obj: str | os.PathLike | None = None,
                         job: Job | None = None, model: FaceModel | None = None,
                         save: bool = True) -> Correspondence:
    """Fit and save <cache folder>/mediapipe478.npz for the current face model; returns it.

    canonical_obj: MediaPipe's face_model_with_iris.obj to start from geometrically; without it the start
    is back-projected from the renders themselves (nothing but the model and MediaPipe needed).
    """
    t0 = time.perf_counter()
    cache_dir = Path(cache_dir) if cache_dir else None
    model = model or load_face_model(cache_dir)
    data = render_set(model, renders, seed, job=job)
    if canonical_obj is not None:
        start = geometric_correspondence(model, canonical_obj)
    else:
        start = backprojected_correspondence(model, data)
    corr = refine_correspondence(model, start, data)
    corr = Correspondence(corr.triangle, corr.bary, corr.model_sha256,
                          f"{start.method}, {corr.method} ({time.perf_counter() - t0:.0f} s)",
                          build_recipe(renders, seed) + ("" if canonical_obj is None else " from the canonical mesh"))
    if save:
        save_correspondence(corr, cache_dir)
    return corr


def ensure_correspondence(cache_dir: str | os.PathLike | None = None, model: FaceModel | None = None,
                          job: Job | None = None, announce: Callable[[str], None] | None = None
                          ) -> tuple[Correspondence, str | None]:
    """The current face model's correspondence, fitted first where it is missing or stale (10 s to a minute);
    returns it and why it was fitted (None: it was current). announce(why) is called before a fit.
    What `setup` and the add-on's set-up run."""
    cache_dir = Path(cache_dir) if cache_dir else None
    model = model or load_face_model(cache_dir)
    try:
        why = stale_because(load_correspondence(cache_dir), model)
    except FaceModelSourceError:
        why = "none fitted yet"
    if why is None:
        return load_correspondence(cache_dir), None
    if announce is not None:
        announce(why)
    return build_correspondence(cache_dir, model=model, job=job), why


__all__ = ["BUILD_RENDERS", "BUILD_SEED", "N_POINTS", "RenderSet", "backprojected_correspondence",
           "build_correspondence", "build_recipe", "ensure_correspondence", "interocular", "refine_correspondence",
           "render_set", "reprojection_errors", "stale_because"]
