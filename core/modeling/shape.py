"""Personal shape corrections (neutral + per blendshape) fitted by landmark and photometric error.

Each correction is a (R, R, 3) map over the face's UV tile (see uvmaps), sampled bilinearly at the face
vertices and multiplied by its shape's mask (zero where the generic shape does not move the skin). A map
is fitted as a sum of pyramid levels (16, 32, 64 texels a side, upsampled), each level's texels with an L2
prior that grows with the level: smooth corrections are cheap, fine detail must be asked for by the data.

With the tracked weights, pose and lighting held fixed, the vertices are linear in the maps, so the fit is
Gauss-Newton. Each step linearises
  landmarks:   projected model landmark points against the detected ones, on many frames (cheap: a few
               hundred points a frame), which is what separates shapes that often act together;
  photometric: on keyframes, the frame sampled at each visible face vertex's projection against albedo x
               SH shading, the per-vertex albedo being the one that best explains all keyframes;
adds the prior and solves the normal equations with Jacobi-preconditioned conjugate gradients, coarse to
fine over blurred keyframes. Between steps the prior of each shape is reweighted by the size of its
correction (iteratively reweighted group lasso): most shapes of a person need no correction, and a
correction that the data do not keep asking for fades instead of spreading over every active shape.

Hand-written in numpy rather than by autograd: the Jacobian is a 3x3 block per (frame, point), which keeps
one CG product at tens of milliseconds where a torch autograd step with Adam took ~300 ms and converged
far slower.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, cg

from ..render.atlas import visible_triangles
from ..render.camera import Camera
from ..render.rasterize import project_mesh, rasterize
from ..render.sh import SH_C0, sh_basis, vertex_normals
from . import uvmaps


@dataclass
class Keyframe:
    """One frame used for the photometric term: the pixels around the face, camera space as the Capture.

    Only the face's part of the frame is kept, as bytes: thirty full 4K frames in float would be 3 GB.
    """

    index: int
    image: np.ndarray  # (h, w, 3) uint8 RGB: frame pixels from `origin` on
    weights: np.ndarray  # (53,)
    rotation: np.ndarray  # (3, 3) model -> camera
    translation: np.ndarray  # (3,) metres
    lighting: np.ndarray | None = None  # (9, 3) SH irradiance, camera space
    origin: tuple[int, int] = (0, 0)  # the image's top-left corner in frame pixels (x, y)

    def covers(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(N,) bool: integer frame pixels x, y (N,) inside the image kept."""
        h, w = self.image.shape[:2]
        x, y = x - self.origin[0], y - self.origin[1]
        return (x >= 0) & (x < w) & (y >= 0) & (y < h)

    def colours(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(N, 3) float64 RGB 0..1 at integer frame pixels x, y (N,) (clamped to the image kept)."""
        h, w = self.image.shape[:2]
        xi = np.clip(x - self.origin[0], 0, w - 1)
        yi = np.clip(y - self.origin[1], 0, h - 1)
        return self.image[yi, xi] / 255.0

    def region(self, x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, tuple[int, int]]:
        """Frame pixels [x0, x1) x [y0, y1) as far as kept: float32 RGB 0..1 and its corner (x, y)."""
        ox, oy = self.origin
        h, w = self.image.shape[:2]
        x0, y0 = max(x0, ox), max(y0, oy)
        x1, y1 = max(min(x1, ox + w), x0), max(min(y1, oy + h), y0)
        patch = self.image[y0 - oy:y1 - oy, x0 - ox:x1 - ox].astype(np.float32) / np.float32(255.0)
        return np.ascontiguousarray(patch), (x0, y0)


@dataclass
class LandmarkFrames:
    """Frames used for the landmark term: detected points and the tracked weights and pose."""

    weights: np.ndarray  # (K, 53)
    rotation: np.ndarray  # (K, 3, 3)
    translation: np.ndarray  # (K, 3)
    points: np.ndarray  # (K, L, 2) pixels, NaN where missing (any float type)


@dataclass
class LandmarkPoints:
    """Model surface points matching a detector's points: vertex ids (L, 3), barycentrics (L, 3), trust (L,)."""

    vertices: np.ndarray
    bary: np.ndarray
    trust: np.ndarray | None = None

    @classmethod
    def from_vertex_ids(cls, ids: np.ndarray, trust: np.ndarray | None = None) -> LandmarkPoints:
        ids = np.asarray(ids, np.int64)
        return cls(np.repeat(ids[:, None], 3, 1), np.tile([1.0, 0.0, 0.0], (len(ids), 1)), trust)


@dataclass
class ShapeOptions:
    resolution: int = 128  # correction map size (texels per side), as stored
    levels: tuple[int, ...] = (16, 32, 64)  # pyramid levels the maps are fitted as
    level_growth: float = 4.0  # prior multiplier from one level to the next finer one
    magnitude: float = 0.05  # prior on the squared texels (mm^2) of the coarsest level
    smoothness: float = 0.1  # prior on squared differences of neighbouring texels (mm^2), every level
    # Depth (model z, towards the camera in a frontal view) is what the landmarks see least: its prior is
    # this many times stronger, so that a correction goes into depth only where head turns show it.
    depth_prior: float = 4.0
    sparsity: float = 3.0  # group-lasso strength: a shape's prior grows as its correction stays small
    active_weight: float = 0.15  # a shape is fitted when some frame has at least this weight
    landmarks: float = 1.0
    landmark_sigma_px: float = 1.5  # landmark noise at a 200-pixel-wide face (scaled with the face size)
    landmark_frames: int = 240  # at most this many frames for the landmark term
    # A detector's errors repeat from frame to frame (its own idea of a face), so more frames do not make
    # them average out: the landmark term counts as this many frames' worth of evidence in all (0: each
    # frame counts fully). 1 rather than 10: on a dev clip tracked as a user's would be (seed 2001) the shapes
    # came out 5x further from the truth than the generic ones at 10 and 1.8x at 1 (with the true tracking:
    # -6% and -3%), and on a real clip (d13) the re-rendered face was as close either way (0.0349 / 0.0347):
    # the extra evidence bought a closer fit to MediaPipe's own errors, not to the face.
    landmark_evidence: float = 1.0
    # Off by default: on synthetic clips (known truth) any weight above ~0.01 made the shapes worse, as a
    # free per-vertex albedo lets vertices slide over smooth skin to fit noise; kept for experiments.
    photometric: float = 0.0
    robust: float = 0.03  # photometric noise: Charbonnier scale of the residual (colour units)
    neutral: bool = True  # fit the neutral correction too
    crop_size: int = 320  # keyframes are cropped around the face and scaled to at most this many pixels
    blur: tuple[float, ...] = (3.0, 2.0, 1.2, 1.2)  # Gaussian sigma (crop pixels) of each Gauss-Newton step
    cg_iterations: int = 40


@dataclass
class ShapeFit:
    maps: np.ndarray  # (54, R, R, 3) metres: neutral map, then one per expression (zero where not fitted)
    corrections: np.ndarray  # (54, F, 3) metres at the face vertices (masked samples of maps)
    fitted: np.ndarray  # (53,) bool: expressions with a correction
    vertex_albedo: np.ndarray  # (F, 3) per-vertex albedo from the keyframes (NaN where never seen)
    losses: dict = field(default_factory=dict)


def fit_shape_corrections(model, keyframes: list[Keyframe], camera: Camera, identity: np.ndarray,
                          options: ShapeOptions | None = None, landmark_points: LandmarkPoints | None = None,
                          landmark_frames: LandmarkFrames | None = None, job=None) -> ShapeFit:
    """Fit the neutral and the exercised shapes' correction maps (see the module doc)."""
    opt = options or ShapeOptions()
    n_face = uvmaps.face_vertex_count(model)
    n_exp = model.n_expressions
    res = opt.resolution
    seen_w = [k.weights for k in keyframes]
    if landmark_frames is not None and landmark_points is not None:
        seen_w += list(landmark_frames.weights)
    weights = np.asarray(seen_w, np.float64).reshape(-1, n_exp)
    fitted = weights.max(0) >= opt.active_weight if len(weights) else np.zeros(n_exp, bool)
    masks = uvmaps.expression_masks(model)  # (53, F)
    all_masks = np.concatenate([uvmaps.face_border_falloff(model)[None], masks]).astype(np.float64)
    slots = ([-1] if opt.neutral else []) + list(np.flatnonzero(fitted))
    empty = ShapeFit(np.zeros((1 + n_exp, res, res, 3), np.float32), np.zeros((1 + n_exp, n_face, 3), np.float32),
                     np.zeros(n_exp, bool), np.full((n_face, 3), np.nan, np.float32), {})
    use_lm = landmark_points is not None and landmark_frames is not None and opt.landmarks > 0
    use_photo = bool(keyframes) and opt.photometric > 0
    if not slots or not (use_lm or use_photo):
        return empty

    prob = _Problem(model, camera, identity, opt, slots, all_masks)
    if use_photo:
        prob.add_photometric(keyframes)
    if use_lm:
        prob.add_landmarks(landmark_points, landmark_frames)
    x = np.zeros((prob.n_params, len(slots) * 3), np.float64)
    losses: dict = {}
    blur = opt.blur if use_photo else opt.blur[:1] * len(opt.blur)
    for step, sigma in enumerate(blur):
        prob.linearize(x, sigma)
        if step == 0:
            losses["photometric_start"], losses["landmarks_px_start"] = prob.photo_loss, prob.landmark_rms
        prob.reweight(x)
        x = x + prob.solve(x)
        if job is not None:
            job.step("shape", step + 1, len(blur))
    prob.linearize(x, blur[-1])
    losses["photometric_end"], losses["landmarks_px_end"] = prob.photo_loss, prob.landmark_rms

    maps = np.zeros((1 + n_exp, res, res, 3), np.float32)
    xm = (prob.upsample @ x).reshape(res, res, len(slots), 3) * 1e-3
    for j, s in enumerate(slots):
        maps[0 if s < 0 else 1 + s] = xm[:, :, j]
    # The stored corrections are exactly what tracking and Blender get: masked samples of the stored maps.
    corrections = uvmaps.sample_maps(maps, uvmaps.face_uvs(model)) * all_masks[..., None]
    vertex_albedo = np.full((n_face, 3), np.nan, np.float32)
    if use_photo:
        vertex_albedo[prob.verts] = np.where(prob.seen[:, None], prob.albedo, np.nan)
    fitted_out = np.zeros(n_exp, bool)
    fitted_out[[s for s in slots if s >= 0]] = True
    return ShapeFit(maps, corrections.astype(np.float32), fitted_out, vertex_albedo, losses)


class _Problem:
    """The linearised least-squares problem over the pyramid texels of the fitted slots.

    x: (P, 3S) millimetres, P pyramid texels, S slots (neutral first), 3 coordinates each.
    """

    def __init__(self, model, camera, identity, opt, slots, all_masks):
        self.opt, self.camera, self.model = opt, camera, model
        res = opt.resolution
        slot_masks = np.stack([all_masks[0] if s < 0 else all_masks[1 + s] for s in slots], 1)  # (F, S)
        self.slots = slots
        self.n_slots = len(slots)
        self.verts = np.flatnonzero(slot_masks.max(1) > 0)
        self.m = slot_masks[self.verts]  # (N, S)
        uv = uvmaps.face_uvs(model)[self.verts]
        # Vertex samples of each level, side by side: corrections = (b @ x) * mask.
        self.b = sp.hstack([uvmaps.bilinear_matrix(uv, r) for r in opt.levels]).tocsr()
        self.bt = self.b.T.tocsr()
        centres = (np.arange(res) + 0.5) / res
        texel_uv = np.stack(np.meshgrid(centres, 1.0 - centres), -1).reshape(-1, 2)  # row-major, row 0 at v=1
        self.upsample = sp.hstack([uvmaps.bilinear_matrix(texel_uv, r) for r in opt.levels]).tocsr()
        self.n_params = self.b.shape[1]
        self.level_prior = np.concatenate([np.full(r * r, opt.magnitude * opt.level_growth**i)
                                           for i, r in enumerate(opt.levels)])[:, None]
        self.slot_prior = np.ones(3 * self.n_slots)
        self.axis_prior = np.tile([1.0, 1.0, opt.depth_prior], self.n_slots)
        self.lap = sp.block_diag([uvmaps.grid_laplacian(r) for r in opt.levels]).tocsr() * opt.smoothness
        self.base_shape = model.identity_shape(identity).astype(np.float64)
        self.expr = np.asarray(model.expressions)
        self.photo = None
        self.lm = None
        self.photo_loss = 0.0
        self.landmark_rms = 0.0

    def slot_weights(self, weights: np.ndarray) -> np.ndarray:
        """(K, 53) shape weights -> (K, S) slot weights (1 for the neutral)."""
        weights = np.asarray(weights, np.float64)
        return np.stack([np.ones(len(weights)) if s < 0 else weights[:, s] for s in self.slots], 1)

    def corrections(self, x: np.ndarray) -> np.ndarray:
        """(N, S, 3) millimetres at the evaluated vertices."""
        return (self.b @ x).reshape(len(self.verts), self.n_slots, 3) * self.m[..., None]

    @staticmethod
    def combine(w: np.ndarray, c: np.ndarray) -> np.ndarray:
        """(K, S) weights, (N, S, 3) per-slot values -> (K, N, 3) per-frame sums."""
        n, s, _ = c.shape
        return (w @ c.transpose(1, 0, 2).reshape(s, n * 3)).reshape(-1, n, 3)

    def uncombine(self, w: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The adjoint of combine: (K, N, 3) -> (N, S, 3), masked."""
        k, n, _ = t.shape
        return (w.T @ t.reshape(k, n * 3)).reshape(-1, n, 3).transpose(1, 0, 2)

    def project(self, v_model, rot, trans, scale=None, offset=None):
        """Model points (K, P, 3) -> pixels (K, P, 2) and d(pixel)/d(model point) (K, P, 2, 3) per metre."""
        cam = np.einsum("kij,kpj->kpi", rot, v_model) + trans[:, None]
        z = np.maximum(-cam[..., 2], 1e-3)
        f = self.camera.focal
        cx, cy = self.camera.center
        s = np.ones(len(cam)) if scale is None else scale
        off = np.zeros((len(cam), 2)) if offset is None else offset
        px = (cx + f * cam[..., 0] / z - off[:, None, 0]) * s[:, None]
        py = (cy - f * cam[..., 1] / z - off[:, None, 1]) * s[:, None]
        jc = np.zeros(cam.shape[:-1] + (2, 3))
        fz = f / z * s[:, None]
        jc[..., 0, 0] = fz
        jc[..., 0, 2] = fz * cam[..., 0] / z
        jc[..., 1, 1] = -fz
        jc[..., 1, 2] = -fz * cam[..., 1] / z
        return np.stack([px, py], -1), np.einsum("kpij,kjl->kpil", jc, rot), cam

    # -- photometric ------------------------------------------------------------------------------------
    def add_photometric(self, keyframes: list[Keyframe]) -> None:
        p = _Photo()
        weights = np.stack([kf.weights for kf in keyframes]).astype(np.float64)
        p.w = self.slot_weights(weights)
        p.full = self.base_shape[None] + np.tensordot(weights, self.expr, axes=1)  # (K, V, 3)
        p.base = p.full[:, self.verts]
        p.rot = np.stack([kf.rotation for kf in keyframes]).astype(np.float64)
        p.trans = np.stack([kf.translation for kf in keyframes]).astype(np.float64)
        p.lighting = [kf.lighting if kf.lighting is not None else _flat_light() for kf in keyframes]
        p.tris = np.asarray(self.model.triangles)[visible_triangles(self.model)]
        p.interior = self.verts < self.model.submeshes["narrow_face"][1]
        cam, crop = self.camera, self.opt.crop_size
        n_face = uvmaps.face_vertex_count(self.model)
        p.crops, scale, offset = [], [], []
        for i, kf in enumerate(keyframes):
            pts = project_mesh(cam, p.full[i, :n_face] @ p.rot[i].T + p.trans[i])
            x0, y0 = np.floor(pts[:, :2].min(0)) - 10
            x1, y1 = np.ceil(pts[:, :2].max(0)) + 10
            patch, (x0, y0) = kf.region(max(0, int(x0)), max(0, int(y0)), min(cam.width, int(x1)),
                                        min(cam.height, int(y1)))
            y1, x1 = y0 + patch.shape[0], x0 + patch.shape[1]
            s = min(1.0, crop / max(x1 - x0, y1 - y0, 1))
            if s < 1:
                patch = cv2.resize(patch, (max(1, round((x1 - x0) * s)), max(1, round((y1 - y0) * s))),
                                   interpolation=cv2.INTER_AREA)
            p.crops.append(patch)
            scale.append(s)
            offset.append((x0, y0))
        p.scale = np.array(scale)
        p.offset = np.array(offset, np.float64)
        self.photo = p

    def _visibility(self, p, v_face):
        """(K, N) view confidence (nearest at its pixel, facing the camera) and camera-space normals."""
        k = len(v_face)
        vis = np.zeros(v_face.shape[:2])
        normals_out = []
        for i in range(k):
            full = p.full[i].copy()
            full[self.verts] = v_face[i]
            cam = full @ p.rot[i].T + p.trans[i]
            normals = vertex_normals(cam, self.model.triangles)[self.verts]
            normals_out.append(normals)
            pts = project_mesh(self.camera, cam)
            frags = rasterize(pts, p.tris, self.camera.width, self.camera.height, perspective=True)
            zbuf = cv2.erode(frags.depth, np.ones((3, 3), np.uint8))
            fp = pts[self.verts]
            xi = np.clip(np.rint(fp[:, 0]).astype(int), 0, self.camera.width - 1)
            yi = np.clip(np.rint(fp[:, 1]).astype(int), 0, self.camera.height - 1)
            view = -cam[self.verts] / np.linalg.norm(cam[self.verts], axis=1, keepdims=True)
            cos = np.einsum("nc,nc->n", normals, view)
            # Silhouettes (face against background or hair) and the sides of the head are left to the
            # landmarks: there the colour changes with the view, not with the surface point.
            visible = (fp[:, 2] <= zbuf[yi, xi] + 0.004) & (cos > 0.35) & p.interior
            vis[i] = np.where(visible, np.clip(cos, 0, 1) ** 2, 0.0)
        return vis, normals_out

    def _linearize_photo(self, c, sigma):
        opt, p = self.opt, self.photo
        v = p.base + self.combine(p.w, c) * 1e-3
        pix, jac, _ = self.project(v, p.rot, p.trans, p.scale, p.offset)
        jac = jac * 1e-3  # per millimetre
        k, n = pix.shape[:2]
        vis, normals = self._visibility(p, v)
        samples = np.zeros((k, n, 3))
        grads = np.zeros((k, n, 3, 2))
        shading = np.zeros((k, n, 3))
        for i, crop in enumerate(p.crops):
            img = cv2.GaussianBlur(crop, (0, 0), sigma)
            gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3) / 8.0
            gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3) / 8.0
            mx = pix[i, :, 0].astype(np.float32)[None]
            my = pix[i, :, 1].astype(np.float32)[None]
            h, w = img.shape[:2]
            vis[i] *= (mx[0] >= 0) & (mx[0] <= w - 1) & (my[0] >= 0) & (my[0] <= h - 1)
            for arr, src in ((samples, img), (grads[..., 0], gx), (grads[..., 1], gy)):
                arr[i] = cv2.remap(src, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]
            shading[i] = np.maximum(sh_basis(normals[i]) @ p.lighting[i], 1e-3)
        # Per-vertex albedo that best explains all keyframes at this geometry.
        num = (vis[..., None] * samples * shading).sum(0)
        den = (vis[..., None] * shading * shading).sum(0)
        self.seen = den.min(1) > 1e-6
        self.albedo = num / np.maximum(den, 1e-6)
        r = samples - self.albedo[None] * shading  # (K, N, 3)
        # IRLS weights of a Charbonnier loss in units of the noise; each sample weighs by its view confidence.
        irls = 1.0 / np.sqrt(1.0 + (r / opt.robust) ** 2)
        cw = vis[..., None] * irls * opt.photometric / opt.robust**2  # (K, N, 3)
        a = np.einsum("kncd,kndl->kncl", grads, jac)  # (K, N, 3 channels, 3 coords): d colour / d mm
        p.mblk = np.einsum("knc,kncl,kncm->knlm", cw, a, a)  # (K, N, 3, 3)
        p.rhs = -np.einsum("knc,kncl,knc->knl", cw, a, r)  # (K, N, 3)
        self.photo_loss = float((vis[..., None] * (np.sqrt(r * r + opt.robust**2) - opt.robust)).sum()
                                / max(1e-9, 3 * vis.sum()))

    # -- landmarks --------------------------------------------------------------------------------------
    def add_landmarks(self, lp: LandmarkPoints, frames: LandmarkFrames) -> None:
        opt = self.opt
        lm = _Landmarks()
        k_all = len(frames.weights)
        pick = np.arange(k_all)
        if k_all > opt.landmark_frames:  # an even spread keeps every part of the clip
            pick = np.linspace(0, k_all - 1, opt.landmark_frames).round().astype(int)
        weights = np.asarray(frames.weights, np.float64)[pick]
        ids, bary = np.asarray(lp.vertices), np.asarray(lp.bary, np.float64)
        n_face = uvmaps.face_vertex_count(self.model)
        pos = np.full(n_face, -1)
        pos[self.verts] = np.arange(len(self.verts))
        flat = ids.ravel()
        col = np.where(flat < n_face, pos[np.minimum(flat, n_face - 1)], -1)
        rows = np.repeat(np.arange(len(ids)), 3)
        keep = col >= 0
        # (L, N): each landmark point as a combination of the evaluated vertices (others stay generic).
        lm.sel = sp.csr_matrix((bary.ravel()[keep], (rows[keep], col[keep])), shape=(len(ids), len(self.verts)))
        lm.sel_t = lm.sel.T.tocsr()
        # The landmark term reads the corrections at the points' corner vertices only, a seventh of the
        # face's: its products go through those rows of the sampling (b_used) instead of the whole face.
        lm.used = np.unique(lm.sel.indices)
        lm.sel_used = lm.sel[:, lm.used].tocsr()
        lm.sel_used_t = lm.sel_used.T.tocsr()
        lm.b_used = self.b[lm.used]
        lm.b_used_t = lm.b_used.T.tocsr()
        lm.m_used = self.m[lm.used]
        # Generic model-space landmark points per frame: sum over corners of (base + w @ expressions).
        corner_pts = self.base_shape[flat][None] + np.tensordot(weights, self.expr[:, flat], axes=1)
        lm.generic = (corner_pts.reshape(len(weights), len(ids), 3, 3) * bary[None, :, :, None]).sum(2)
        lm.w = self.slot_weights(weights)
        lm.rot = np.asarray(frames.rotation, np.float64)[pick]
        lm.trans = np.asarray(frames.translation, np.float64)[pick]
        lm.detected = np.asarray(frames.points)[pick].astype(np.float64)  # not the whole clip in float64
        trust = np.ones(len(ids)) if lp.trust is None else np.asarray(lp.trust, np.float64)
        lm.valid = np.isfinite(lm.detected).all(-1) & (trust > 0)[None]
        lm.trust = trust
        # Face width in pixels per frame (the spread of the projected landmarks) scales the noise.
        pix, _, _ = self.project(lm.generic, lm.rot, lm.trans)
        lm.face_px = np.maximum(np.ptp(pix[..., 0], axis=1), 20.0)
        self.lm = lm

    def _at_landmarks(self, d: np.ndarray) -> np.ndarray:
        """(N, C) per-vertex values -> (L, C)."""
        return self.lm.sel @ d

    def _linearize_landmarks(self, c):
        lm, opt = self.lm, self.opt
        at = (self.lm.sel @ c.reshape(len(self.verts), -1)).reshape(-1, self.n_slots, 3)  # (L, S, 3) mm
        pts = lm.generic + self.combine(lm.w, at) * 1e-3
        pix, jac, _ = self.project(pts, lm.rot, lm.trans)
        jac = jac * 1e-3
        r = np.where(lm.valid[..., None], pix - np.nan_to_num(lm.detected), 0.0)
        sigma = opt.landmark_sigma_px * lm.face_px[:, None] / 200.0
        wgt = lm.valid * lm.trust[None] / sigma**2 * opt.landmarks  # (K, L)
        if opt.landmark_evidence > 0:
            wgt = wgt * min(1.0, opt.landmark_evidence / len(wgt))
        lm.mblk = np.einsum("kl,klpi,klpj->klij", wgt, jac, jac)
        lm.rhs = -np.einsum("kl,klpi,klp->kli", wgt, jac, r)
        d2 = np.where(lm.valid, (r**2).sum(-1), 0.0)
        self.landmark_rms = float(np.sqrt(d2.sum() / max(1, lm.valid.sum())))

    # -- Gauss-Newton -----------------------------------------------------------------------------------
    def linearize(self, x: np.ndarray, sigma: float) -> None:
        c = self.corrections(x)
        if self.photo is not None:
            self._linearize_photo(c, sigma)
        if self.lm is not None:
            self._linearize_landmarks(c)

    def reweight(self, x: np.ndarray) -> None:
        """Group-lasso reweighting: each expression slot's prior ~ 1 / (RMS of its correction + eps)."""
        if self.opt.sparsity <= 0:
            return
        c = self.corrections(x)  # (N, S, 3) mm
        rms = np.sqrt((c**2).sum(2).mean(0))  # (S,)
        eps = 0.05  # mm: below this a correction counts as absent
        factor = 1.0 + self.opt.sparsity * (1.0 / (rms + eps) - 1.0 / (rms.max() + eps))
        factor[np.array(self.slots) < 0] = 1.0  # the neutral is not sparse
        self.slot_prior = np.repeat(np.maximum(factor, 1.0), 3)

    def _apply_data(self, y: np.ndarray) -> np.ndarray:
        """J^T W J y for pyramid texels y (P, 3S)."""
        if self.photo is None:  # landmarks alone: through their corner vertices only (the same product)
            lm = self.lm
            c = (lm.b_used @ y).reshape(len(lm.used), self.n_slots, 3) * lm.m_used[..., None]
            g = self._lm_apply(c, lm.sel_used, lm.sel_used_t) * lm.m_used[..., None]
            return lm.b_used_t @ g.reshape(len(lm.used), -1)
        c = self.corrections(y)  # (N, S, 3)
        g = np.zeros_like(c)
        if self.photo is not None:
            p = self.photo
            d = self.combine(p.w, c)
            mb = p.mblk
            t = mb[..., 0] * d[..., 0:1] + mb[..., 1] * d[..., 1:2] + mb[..., 2] * d[..., 2:3]
            g += self.uncombine(p.w, t)
        if self.lm is not None:
            g += self._lm_apply(c, self.lm.sel, self.lm.sel_t)
        g *= self.m[..., None]
        return self.bt @ g.reshape(len(self.verts), -1)

    def _lm_apply(self, c: np.ndarray, sel, sel_t) -> np.ndarray:
        """The landmark term's J^T W J on corrections c (M, S, 3) at the vertices sel (L, M) reads."""
        lm = self.lm
        at = (sel @ c.reshape(len(c), -1)).reshape(-1, self.n_slots, 3)  # (L, S, 3)
        d = self.combine(lm.w, at)  # (K, L, 3)
        mb = lm.mblk
        t = mb[..., 0] * d[..., 0:1] + mb[..., 1] * d[..., 1:2] + mb[..., 2] * d[..., 2:3]
        back = self.uncombine(lm.w, t)  # (L, S, 3)
        return (sel_t @ back.reshape(back.shape[0], -1)).reshape(len(c), self.n_slots, 3)

    def _apply_prior(self, y: np.ndarray) -> np.ndarray:
        return (self.level_prior * y + self.lap @ y) * (self.slot_prior * self.axis_prior)[None]

    def solve(self, x: np.ndarray) -> np.ndarray:
        """The Gauss-Newton step dx: (J^T W J + P) dx = J^T W r - P x, by Jacobi-preconditioned CG."""
        shape = x.shape
        n, s = len(self.verts), self.n_slots
        g = np.zeros((n, s, 3))
        dd = np.zeros((n, s, 3))
        if self.photo is not None:
            p = self.photo
            g += self.uncombine(p.w, p.rhs)
            dd += self.uncombine(p.w**2, np.einsum("knii->kni", p.mblk))
        if self.lm is not None:
            lm = self.lm
            back = self.uncombine(lm.w, lm.rhs)
            g += (lm.sel_t @ back.reshape(back.shape[0], -1)).reshape(n, s, 3)
            dl = self.uncombine(lm.w**2, np.einsum("klii->kli", lm.mblk))
            dd += ((lm.sel_t.multiply(lm.sel_t)) @ dl.reshape(dl.shape[0], -1)).reshape(n, s, 3)
        g *= self.m[..., None]
        rhs = self.bt @ g.reshape(n, -1) - self._apply_prior(x)
        # Jacobi preconditioner: the operator's diagonal (the data blocks' diagonals through the sampling).
        dd *= (self.m**2)[..., None]
        prior_diag = (self.level_prior + self.lap.diagonal()[:, None]) * (self.slot_prior * self.axis_prior)[None]
        diag = (self.b.multiply(self.b)).T @ dd.reshape(n, -1) + prior_diag
        inv = 1.0 / np.maximum(diag, 1e-12)
        size = x.size
        op = LinearOperator((size, size), matvec=lambda v: (self._apply_data(v.reshape(shape))
                                                            + self._apply_prior(v.reshape(shape))).ravel())
        pre = LinearOperator((size, size), matvec=lambda v: v * inv.ravel())
        dx, _ = cg(op, rhs.ravel(), M=pre, maxiter=self.opt.cg_iterations)
        return dx.reshape(shape)


class _Photo:
    """Photometric keyframe data and its current linearisation."""


class _Landmarks:
    """Landmark frame data and its current linearisation."""


def _flat_light() -> np.ndarray:
    light = np.zeros((9, 3))
    light[0] = 1.0 / SH_C0
    return light
