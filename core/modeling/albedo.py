"""Static and dynamic albedo by unwrapping frames into the texture atlas, streamed over the whole clip.

Per frame: every texel of the atlas (core.render.atlas layout) is placed on the fitted head, projected
into the frame, depth-tested against the rasterized head and sampled; dividing by the frame's SH shading
gives that frame's albedo at the texel, weighted by how squarely the surface faces the camera.
  static:  the weighted mean over a spread of frames at full resolution, after removing the dynamic part;
  dynamic: per texel a ridge-regularised linear least squares of albedo against the weights of the
           wrinkle-prone shapes over (a stride of) every frame:  albedo_f = A + sum_k w_fk D_k,
           accumulated as normal equations so memory does not grow with the clip.
Shapes whose map stays within noise are dropped, so only shapes that change the texture keep one.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..render.atlas import CELLS, cell_rect, visible_triangles
from ..render.camera import Camera
from ..render.rasterize import project_mesh, rasterize, uv_rasterize
from ..render.sh import vertex_normals
from . import _kernels, uvmaps
from .eyes import iris_colour

# Shapes that fold, stretch or press skin: the only ones offered a dynamic albedo map.
WRINKLE_SHAPES = (
    "browInnerUp_L", "browInnerUp_R", "browOuterUp_L", "browOuterUp_R", "browDown_L", "browDown_R",
    "noseSneer_L", "noseSneer_R", "eyeSquint_L", "eyeSquint_R", "cheekSquint_L", "cheekSquint_R",
    "mouthSmile_L", "mouthSmile_R", "mouthPucker", "jawOpen",
)

# Colours for atlas cells no frame ever showed (display RGB 0..1).
_UNSEEN = {("skin", 2): (0.55, 0.28, 0.28), ("skin", 3): (0.85, 0.82, 0.74), ("eye", 0): (0.85, 0.83, 0.8)}


@dataclass
class AlbedoOptions:
    size: int = 1024  # the static map written (atlas), at least 1024
    work_size: int | None = None  # static unwrapping resolution; None = from the face's size in the video
    dynamic_size: int | None = None  # dynamic regression resolution; None = half the static work size (>= 256)
    static_frames: int = 90  # frames spread over the clip for the static map
    dynamic_frames: int = 600  # at most this many frames (a stride) for the regression
    min_weight: float = 0.3  # a shape is offered a dynamic map when the clip reaches this weight
    min_frames: int = 8  # ... in at least this many regression frames
    ridge: float = 4.0  # prior on each dynamic texel, in frames' worth of evidence at weight 1
    # A dynamic map is kept when, over its region, its squared coefficients are typically this many times
    # their noise variance (1 is pure noise; residual misfit correlated with a shape raises it too).
    keep_snr: float = 1.2
    min_cos: float = 0.4  # texels seen more obliquely than this are not used (silhouettes catch background)
    candidates: tuple[str, ...] = WRINKLE_SHAPES


@dataclass
class AlbedoMaps:
    """What the albedo pass makes. static: (S, S, 3) at AlbedoOptions.size; names: the shapes kept with a dynamic
    map (k,); dynamic: their maps (k, s, s, 3); eye_colour: (3,) the irises' albedo, None where no frame saw
    them (core.modeling.eyes); info: diagnostics for the model's metadata."""

    static: np.ndarray
    names: tuple[str, ...]
    dynamic: np.ndarray
    eye_colour: np.ndarray | None
    info: dict


@dataclass
class _Texels:
    """The covered texels of an atlas at one size: flat index, triangle corner vertex ids, barycentrics."""

    size: int
    flat: np.ndarray  # (T,) index into size*size
    corners: np.ndarray  # (T, 3) vertex ids
    bary: np.ndarray  # (T, 3)
    n_vertices: int = 0
    _matrix: object = None

    @classmethod
    def build(cls, model, size: int, vertex_filter: np.ndarray | None = None) -> _Texels:
        frags = uv_rasterize(model, size)
        tri = frags.triangle.ravel()
        flat = np.flatnonzero(tri >= 0)
        corners = np.asarray(model.triangles, np.int64)[tri[flat]]
        bary = frags.bary.reshape(-1, 3)[flat].astype(np.float64)
        if vertex_filter is not None:
            keep = vertex_filter[corners].all(1)
            flat, corners, bary = flat[keep], corners[keep], bary[keep]
        return cls(size, flat, corners, bary, model.n_vertices)

    def subset(self, keep: np.ndarray) -> _Texels:
        return _Texels(self.size, self.flat[keep], np.ascontiguousarray(self.corners[keep]),
                       np.ascontiguousarray(self.bary[keep]), self.n_vertices)

    def interpolate(self, values: np.ndarray) -> np.ndarray:
        """(V, C) per-vertex values -> (T, C), as one sparse product (3 corners a texel)."""
        if self._matrix is None:
            import scipy.sparse as sp

            t = len(self.flat)
            self._matrix = sp.csr_matrix((self.bary.ravel().astype(np.float32),
                                          (np.repeat(np.arange(t), 3), self.corners.ravel())),
                                         shape=(t, self.n_vertices))
        return self._matrix @ np.asarray(values, np.float32)


# The visibility test's z-buffer: half the frame's resolution, at most this many pixels on its longer side.
# A 4K frame's half (1920 px) took 65 ms a frame to rasterize and tells no more: a texel's visibility
# changes at the head's scale, and the atlas samples the face at ~1024 texels.
ZBUFFER_SIDE = 1280


class FrameUnwrapper:
    """Samples one frame's albedo at a set of texels: colour / shading, and a per-texel confidence.

    depth_scale: the z-buffer's resolution as a share of the frame's (None: half, capped to ZBUFFER_SIDE)."""

    def __init__(self, model, camera: Camera, depth_scale: float | None = None):
        self.model = model
        self.camera = camera
        self.tris = np.asarray(model.triangles)[visible_triangles(model)]
        self.depth_scale = depth_scale or min(0.5, ZBUFFER_SIDE / max(camera.width, camera.height))
        self._frame = None

    def set_frame(self, image_rgb: np.ndarray, vertices_cam: np.ndarray, lighting: np.ndarray) -> None:
        """image (H, W, 3) float32 RGB 0..1; vertices_cam (V, 3); lighting (9, 3)."""
        cam = self.camera
        pts = project_mesh(cam, vertices_cam)
        s = self.depth_scale
        small = pts.copy()
        small[:, :2] = (pts[:, :2] + 0.5) * s - 0.5
        frags = rasterize(small, self.tris, max(1, int(cam.width * s)), max(1, int(cam.height * s)),
                          perspective=True)
        # A texel is visible when it is no farther than the nearest surface around its pixel.
        self._zbuf = cv2.erode(frags.depth, np.ones((3, 3), np.uint8))
        # What a texel needs from its corners (the unwrap kernel interpolates them): pixel + depth, normal, point.
        self._attrs = np.concatenate([pts, vertex_normals(vertices_cam, self.model.triangles), vertices_cam],
                                     axis=1).astype(np.float32)
        self._image = np.ascontiguousarray(image_rgb, np.float32)
        self._lighting = np.ascontiguousarray(lighting, np.float64)

    def sample(self, texels: _Texels, min_cos: float) -> tuple[np.ndarray, np.ndarray]:
        """(T, 3) albedo estimate and (T,) confidence (0 where hidden, off-frame or too oblique)."""
        albedo = np.empty((len(texels.flat), 3), np.float32)
        conf = np.empty(len(texels.flat), np.float32)
        _kernels.get("unwrap")(texels.corners, texels.bary, self._attrs, self._zbuf, float(self.depth_scale),
                               self._image, self._lighting, float(min_cos), albedo, conf)
        return albedo, conf


class AlbedoAccumulator:
    """Streaming normal equations for the static and dynamic albedo; add frames, then solve().

    dynamic_names: the shapes offered a dynamic map (name order of `weights` given to add: model order).
    """

    def __init__(self, model, camera: Camera, options: AlbedoOptions, dynamic_names: tuple[str, ...],
                 work_size: int):
        self.model, self.camera, self.opt = model, camera, options
        self.names = tuple(dynamic_names)
        self.index = np.array([model.expression_names.index(n) for n in self.names], np.int64)
        self.unwrap = FrameUnwrapper(model, camera)
        k = len(self.names)
        # Static texels: everything rendered. Dynamic texels: the face inside some candidate's region.
        self.static = _Texels.build(model, work_size)
        n_face = uvmaps.face_vertex_count(model)
        face = np.zeros(model.n_vertices, bool)
        face[:n_face] = True
        self.dynamic_size = options.dynamic_size or max(256, work_size // 2)
        self.dyn = _Texels.build(model, self.dynamic_size, face)
        if k:
            masks = uvmaps.expression_masks(model)[self.index]  # (k, F)
            full = np.zeros((k, model.n_vertices))
            full[:, :n_face] = masks
            region = self.dyn.interpolate(full.T)  # (T, k)
            # Not at the rims of the mouth and eyes: there a misfit shows teeth or eyeball, not skin.
            rim = np.zeros(model.n_vertices, np.float32)
            rim[:n_face] = uvmaps.rim_vertices(model)
            region = region * (self.dyn.interpolate(rim[:, None])[:, 0] < 0.01)[:, None]
            keep = region.max(1) > 0.05
            self.dyn = self.dyn.subset(keep)
            self.region = region[keep] > 0.05  # (T, k)
        else:
            self.dyn = self.dyn.subset(np.zeros(len(self.dyn.flat), bool))
            self.region = np.zeros((0, 0), bool)
        t = len(self.dyn.flat)
        self.gram = np.zeros((t, k + 1, k + 1), np.float32)
        self.rhs = np.zeros((t, k + 1, 3), np.float32)
        ts = len(self.static.flat)
        self.s_cu = np.zeros((ts, 3))
        self.s_c = np.zeros(ts)
        self.s_cw = np.zeros((ts, k))
        batch = 32  # frames buffered per update of the normal equations
        self._buf_c = np.zeros((batch, t), np.float32)
        self._buf_ca = np.zeros((batch, 3, t), np.float32)
        self._buf_x = np.zeros((batch, k + 1), np.float32)
        self._fill = 0
        self.s_uu = np.zeros((t, 3))
        self.frames_dynamic = 0
        self.frames_static = 0
        self.excitation = np.zeros(k)

    def add(self, image_rgb: np.ndarray, vertices_cam: np.ndarray, weights: np.ndarray, lighting: np.ndarray,
            dynamic: bool, static: bool) -> None:
        if not (dynamic or static):
            return
        self.unwrap.set_frame(image_rgb, vertices_cam, lighting)
        w = np.asarray(weights, np.float64)[self.index]
        if dynamic and len(self.dyn.flat):
            a, c = self.unwrap.sample(self.dyn, self.opt.min_cos)
            j = self._fill
            _kernels.get("add_dynamic")(a, c, self._buf_c[j], self._buf_ca[j], self.s_uu)
            self._buf_x[j] = np.concatenate([[1.0], w])
            self._fill += 1
            if self._fill == len(self._buf_x):
                self._flush()
            self.frames_dynamic += 1
            self.excitation += w >= self.opt.min_weight
        if static:
            a, c = self.unwrap.sample(self.static, self.opt.min_cos)
            _kernels.get("add_static")(a, c, w, self.s_cu, self.s_c, self.s_cw)
            self.frames_static += 1

    def _flush(self) -> None:
        """Add the buffered frames to the normal equations: two matrix products (texels x frames x terms)."""
        j = self._fill
        if not j:
            return
        x = self._buf_x[:j]  # (B, k+1)
        xx = (x[:, :, None] * x[:, None, :]).reshape(j, -1)
        self.gram += (self._buf_c[:j].T @ xx).reshape(self.gram.shape)
        for ch in range(3):
            self.rhs[:, :, ch] += self._buf_ca[:j, ch].T @ x
        self._fill = 0

    def solve(self) -> AlbedoMaps:
        self._flush()
        opt = self.opt
        k = len(self.names)
        s = self.dynamic_size
        info: dict = {"frames_dynamic": self.frames_dynamic, "frames_static": self.frames_static}
        keep = np.zeros(k, bool)
        dyn_maps = np.zeros((k, s, s, 3), np.float32)
        if k and len(self.dyn.flat) and self.frames_dynamic:
            keep = self.excitation >= opt.min_frames
            coef = self._solve_dynamic(keep)
            snr, rms = self._significance(coef, keep)
            info["dynamic_rms"] = dict(zip(self.names, np.round(rms, 4).tolist()))
            info["dynamic_snr"] = dict(zip(self.names, np.round(snr, 2).tolist()))
            strong = keep & (snr >= opt.keep_snr)
            if (strong != keep).any():  # drop the weak ones and solve again without them
                keep = strong
                coef = self._solve_dynamic(keep)
            for j in np.flatnonzero(keep):
                flat = np.zeros((s * s, 3), np.float32)
                flat[self.dyn.flat] = np.clip(coef[:, 1 + j], -0.5, 0.5)
                dyn_maps[j] = _fill_from_edges(flat.reshape(s, s, 3), self.dyn.flat, s)
        names = tuple(n for n, kk in zip(self.names, keep) if kk)
        dyn_maps = dyn_maps[keep]
        static, eye_colour = self._solve_static(np.flatnonzero(keep), dyn_maps)
        return AlbedoMaps(static, names, dyn_maps, eye_colour, info)

    def _significance(self, coef: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per shape: mean over its region of coefficient^2 / its noise variance, and the coefficients' RMS."""
        k = len(self.names)
        g00 = self.gram[:, 0, 0].astype(np.float64)
        rss = np.maximum(self.s_uu - np.einsum("tjc,tjc->tc", coef, self.rhs.astype(np.float64)), 0.0)  # (T, 3)
        dof = np.maximum(g00 - (1 + keep.sum()), 1.0)
        sigma2 = rss / dof[:, None]
        inv_diag = np.empty((len(g00), k + 1))  # the posterior's diagonal, a block of texels at a time
        for a, b in _blocks(len(g00)):
            inv_diag[a:b] = np.einsum("tjj->tj", np.linalg.inv(self._system(keep, a, b)))
        snr, rms = np.zeros(k), np.zeros(k)
        for j in np.flatnonzero(keep):
            r = self.region[:, j] & (g00 > 10.0)
            if not r.any():
                continue
            var = sigma2[r] * inv_diag[r, 1 + j, None]
            # The 90th percentile over texels of coefficient^2 / variance, over its value for pure noise
            # (chi-square, 1 dof: 2.71): wrinkles are thin, so most of a shape's region stays unchanged.
            snr[j] = float(np.percentile(coef[r, 1 + j] ** 2 / np.maximum(var, 1e-12), 90) / 2.71)
            rms[j] = float(np.sqrt((coef[r, 1 + j] ** 2).mean()))
        return snr, rms

    def _system(self, keep: np.ndarray, a: int, b: int) -> np.ndarray:
        """(b - a, k+1, k+1) float64 normal equations of texels a..b with their prior: a ridge on the dynamic
        coefficients, out-of-region or dropped ones pinned."""
        k = len(self.names)
        prior = np.zeros((b - a, k + 1))
        prior[:, 1:] = self.opt.ridge
        prior[:, 1:][~(self.region[a:b] & keep[None])] = 1e9
        prior[:, 0] = 1e-6
        g = self.gram[a:b].astype(np.float64)
        idx = np.arange(k + 1)
        g[:, idx, idx] += prior
        return g

    def _solve_dynamic(self, keep: np.ndarray) -> np.ndarray:
        """(T, 1 + k, 3) per-texel [static, D_1..D_k] with the shapes not kept (or out of region) at zero."""
        coef = np.empty(self.rhs.shape)
        for a, b in _blocks(len(coef)):
            coef[a:b] = np.linalg.solve(self._system(keep, a, b), self.rhs[a:b].astype(np.float64))
        seen = self.gram[:, 0, 0] > 1e-3
        coef[~seen] = 0.0
        return coef

    def _solve_static(self, kept: np.ndarray, dyn_maps: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The static map (S, S, 3) at options.size, and the irises' colour (3,) or None (read before the unseen
        texels are filled: a filled ring would give the lids' colour)."""
        size = self.static.size
        c = self.s_c
        num = self.s_cu.copy()
        if len(kept):
            # albedo_f = A + sum_k w_fk D_k  =>  A = (sum c u - sum_k (sum c w_k) D_k) / sum c
            up = np.stack([cv2.resize(d, (size, size), interpolation=cv2.INTER_LINEAR) for d in dyn_maps])
            d_at = up.reshape(len(kept), -1, 3)[:, self.static.flat]  # (k', T, 3)
            num -= np.einsum("tk,ktc->tc", self.s_cw[:, kept], d_at)
        seen = c > 1e-3
        flat = np.zeros((size * size, 3))
        wgt = np.zeros(size * size)
        flat[self.static.flat[seen]] = num[seen] / c[seen, None]
        wgt[self.static.flat[seen]] = np.minimum(c[seen] / max(1e-6, np.percentile(c[seen], 50)), 1.0) \
            if seen.any() else 0.0
        image = flat.reshape(size, size, 3)
        eye_colour = iris_colour(self.model, image, wgt.reshape(size, size) > 0)
        image = fill_atlas(image, wgt.reshape(size, size), size)
        if self.opt.size != size:
            image = cv2.resize(image.astype(np.float32), (self.opt.size, self.opt.size),
                               interpolation=cv2.INTER_CUBIC if self.opt.size > size else cv2.INTER_AREA)
        return np.clip(image, 0.0, 1.0).astype(np.float32), eye_colour


def _blocks(n: int, size: int = 8192):
    """(start, stop) of blocks of texels: the per-texel (k+1, k+1) systems in float64 for a whole face at once
    were several arrays of 70-300 MB alive together (a 512 map's ~130,000 texels, 8-17 terms)."""
    for a in range(0, n, size):
        yield a, min(n, a + size)


def fill_atlas(image: np.ndarray, weight: np.ndarray, size: int) -> np.ndarray:
    """Fill unseen texels cell by cell (push-pull from the seen ones); cells never seen get a default."""
    out = image.astype(np.float32).copy()
    skin = None
    x0, y0, x1, y1 = cell_rect("skin", 0, size)
    face_w = weight[y0:y1, x0:x1]
    if (face_w > 0).any():
        skin = (out[y0:y1, x0:x1][face_w > 0] * face_w[face_w > 0, None]).sum(0) / face_w[face_w > 0].sum()
    for cell in CELLS:
        x0, y0, x1, y1 = cell_rect(*cell, size)
        w = weight[y0:y1, x0:x1]
        if (w > 0).sum() < 16:
            colour = _UNSEEN.get(cell, skin if skin is not None else (0.6, 0.45, 0.38))
            out[y0:y1, x0:x1] = np.where(w[..., None] > 0, out[y0:y1, x0:x1], np.asarray(colour, np.float32))
            continue
        out[y0:y1, x0:x1] = push_pull(out[y0:y1, x0:x1], w)
    return out


def push_pull(image: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill where weight == 0 (and blend where it is small) from a weighted image pyramid."""
    image = image.astype(np.float32)
    weight = np.clip(weight.astype(np.float32), 0, 1)
    levels = [(image * weight[..., None], weight)]
    while min(levels[-1][1].shape) > 2:
        c, w = levels[-1]
        h, wd = w.shape
        size = (max(1, (wd + 1) // 2), max(1, (h + 1) // 2))
        levels.append((cv2.resize(c, size, interpolation=cv2.INTER_AREA),
                       cv2.resize(w, size, interpolation=cv2.INTER_AREA)))
    c, w = levels[-1]
    filled = c / np.maximum(w, 1e-6)[..., None]
    for c, w in reversed(levels[:-1]):
        h, wd = w.shape
        up = cv2.resize(filled, (wd, h), interpolation=cv2.INTER_LINEAR)
        a = np.clip(w * 4, 0, 1)[..., None]  # trust a level where it has enough weight
        filled = a * (c / np.maximum(w, 1e-6)[..., None]) + (1 - a) * up
    return filled


def _fill_from_edges(image: np.ndarray, flat: np.ndarray, size: int) -> np.ndarray:
    """A dynamic map defined on some texels: blur a little into its neighbours so bilinear lookups at the
    region's border do not fall to zero abruptly."""
    w = np.zeros(size * size, np.float32)
    w[flat] = 1
    w = w.reshape(size, size)
    num = cv2.GaussianBlur(image * w[..., None], (0, 0), 0.7)
    den = cv2.GaussianBlur(w, (0, 0), 0.7)
    return np.where(w[..., None] > 0, image, num / np.maximum(den, 1e-6)[..., None] * (den[..., None] > 0.2))


def work_size_for(face_px: float, minimum: int = 256, maximum: int = 1024) -> int:
    """Static unwrapping resolution: the face cell (3/4 of the atlas) a little finer than the face in the video."""
    want = 1.3 * face_px / 0.75
    size = minimum
    while size < want and size < maximum:
        size *= 2
    return size
