"""Photometric refinement of the per-frame fit: the pixels correct what the landmark detector gets wrong.

MediaPipe's points carry a subject-specific error (brows that move half as far as the skin, a mouth
contour that slides) which no landmark weighting removes. Analysis by synthesis, as in the paper behind
Likeness, adds the image: the face's appearance is estimated once from the clip's most neutral frames (a
colour per vertex with the per-frame SH shading divided out, median over frames), then every frame's pose
and weights are refined by Gauss-Newton on the landmark term plus a photometric term (grey levels of a
blurred frame against albedo x shading at the fitted vertices). Each photometric sample (every other vertex)
weighs PHOTO_WEIGHT against the landmark term: stronger, its own bias (appearance stored per vertex, mouth
interior and eyeballs showing at the lid and lip edges) starts to trade the weights for the pose.

Only every fifth frame is refined (the caller's stride: the frames whose face crops it keeps, see
CropKeeper); the frames between take their landmark fit plus the correction interpolated from the refined
frames around them: the detector's error follows the expression, which changes slowly (dev seeds, session 17:
weights 0.0973 with every third frame, 0.0970 every fifth, 0.0997 every seventh, 0.0994 every tenth, 0.1106
with none). The crops are kept by the landmark pass as the frames go by (JPEG, in a temporary file), so the
clip is decoded once. A refined frame costs ~7 ms of CPU in a capture (session 17, s32: decoding its crop and
the blur 1.2, visibility 1.4, lighting 0.4, two Gauss-Newton iterations 3.1, the iris between them 1; two
lanes of frames, one per core), so the mode is opt-in (CaptureOptions.photometric / `--photometric`). On
synthetic clips (seeds 2001-2006 to choose the settings, 1001-1003 held out) it cuts the weight error by 20%
with the iris locator (core.tracking.iris, on with it unless CaptureOptions.iris_gaze is off); see
bench/accuracy_synth.py.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from functools import lru_cache

import cv2
import numpy as np

from ..facemodel.model import FaceModel
from ..io.cropfile import CropFile, FaceCrop
from ..render.atlas import visible_triangles
from ..render.rasterize import rasterize
from ..render.sh import SH_C0, sh_basis, vertex_normals
from ..threads import one_blas_thread
from . import _kernels
from .gaze import gaze_to_eye_look
from .solver import FitState, FrameSolver, rodrigues, rotation_log

LUMA = np.array([0.299, 0.587, 0.114])
REFERENCE_FRAMES = 30  # the most neutral frames the appearance is taken from
# The photometric term sees the face's shading and features, not pores: the frame is blurred by BLUR pixels
# (Gaussian sigma) and each sample weighs PHOTO_WEIGHT against the landmark term (both in noise units).
# Session 16, dev seeds (weights / rotation / landmarks / gaze): 2.0 and 0.2 (set in session 3, never revisited)
# 0.1004 / 1.456 deg / 2.36% / 2.94 deg; 2.0 and 0.4: 0.1003 / 1.439 / 2.33% / 2.85; 1.25 and 0.4: 0.0990 / 1.436
# / 2.32% / 2.80 (1.0: 0.0992, 1.5: 0.0994, 3.0: 0.1023; 0.3: 0.0990 / 1.441, 0.5: 0.0993 / 1.432). A weight
# above 0.4 trades the weights for the pose (0.8: 0.1008 / 1.429 deg). HUBER 3 was better still on the
# renders (0.0991 / 1.411 / 2.31%) but is kept at 2: real frames have the outliers (hair, highlights) they lack.
BLUR = 1.25
PHOTO_WEIGHT = 0.4
# Every other usable face vertex is a sample (with twice the weight each: the same term as every vertex at half
# the weight; session 3: dev weights 0.0994 -> 0.0993, landmarks 2.35% either way, half the work). Every third
# at 0.3 (session 13): dev 0.1003 -> 0.1000, but the refinement's gain on tests' 45-frame clip was gone
# (0.1679 -> 0.1691 against the landmark fit's 0.1686), for a gain inside the machine's drift: not taken.
SAMPLE_STEP = 2
INTENSITY_NOISE = 0.02  # grey-level noise (0..1 scale) that one residual unit stands for
HUBER = 2.0  # residuals beyond this many noise units count linearly (occluders, specular spots)
# Gauss-Newton steps per frame from its landmark fit, the iris located before the last. Dev seeds, weights /
# gaze: 3 steps 0.0996 / 2.81 degrees, 2 steps 0.0999 / 2.86 for a sixth less time a refined frame (session 12;
# session 3's 45-frame clip, before the iris and the interpolated frames, had lost most of the gain with 2).
ITERATIONS = 2
LIGHT_SAMPLES = 1000  # samples the frame's lighting is fitted to (2000: dev 0.0992 vs 0.0993, 1 ms more)
MIN_LIGHT_SAMPLES = 50  # fewer seen samples than this: uniform light instead of a fit
MIN_COS = 0.3  # vertices seen at a grazing angle slide over the silhouette: left out
# Vertices near the face mesh's borders (its outline and the openings of the lids, lips and nostrils) are left
# out by topology, BORDER_RINGS rings of triangles deep: there the stored appearance meets the eyeball, the
# mouth's inside, hair or background, whatever the expression. Self-occlusion (the nose hiding a cheek in a turned
# head) comes from a coarse z-buffer: OCCLUSION_SCALE of the crop's resolution, a sample hidden where it lies
# more than OCCLUSION_SLACK metres behind the nearest surface at its pixel. Session 17, dev seeds (weights /
# rotation / landmarks / gaze): these replace a 3-pixel margin around the rendered face and a full-resolution
# depth test (a 3x3 minimum filter, 2 mm of slack) that also threw out the steep sides of the nose (a
# neighbouring pixel nearer by more than the slack): 30% of the facing samples at yaw under 12 degrees. 0.0990 /
# 1.436 deg / 2.32% / 2.80 -> 0.0970 / 1.416 / 2.32% / 2.80, the z-buffer 2 ms -> ~0.2 a refined frame. Rings
# 1 / 2 / 3 / 4 / 5 / 6 / 8 (no depth test): 0.1006 / 0.0997 / 0.0974 / 0.0966 / 0.0971 / 0.0983 / 0.0999; the
# depth test at full / half / quarter resolution, 1 cm slack: 0.0964 / 0.0969 / 0.0970 (5 mm: 0.0969); a
# silhouette margin on top (the coarse face mask eroded, 2 or 4 pixels): 0.0977 / 0.0984.
BORDER_RINGS = 4
OCCLUSION_SCALE = 0.25
OCCLUSION_SLACK = 0.01
# The refined frames are solved as this many chains, one per thread, each over a contiguous part of the clip
# (a fixed number, not the machine's cores: a capture comes out the same everywhere).
LANES = 2
CROP_SIDE = 320  # pixels: a bigger face crop is scaled down to this (its longer side) before it is kept


def face_crop(image_bgr: np.ndarray, points: np.ndarray, max_side: int = CROP_SIDE) -> FaceCrop:
    """The part of a frame around the face's landmark points (L, 2), with a margin for the fitted mesh beyond
    the points (the whole frame where the points are not all finite), scaled down to at most max_side pixels.

    Why scaled: every cost of a refined frame but the per-sample ones (decoding, blur, gradients, z-buffer)
    grows with the crop's area, and the term compares a blurred face: a 720p close-up's 430-pixel crop
    holds little more of what it sees than 320 pixels do (dev seeds, weights: 0.0993 full size, 0.0996 at 320,
    0.1004 at 256; a refined 720p frame ~20% cheaper at 320).
    """
    crop, origin = image_bgr, (0, 0)
    if np.isfinite(points).all():
        h, w = image_bgr.shape[:2]
        lo, hi = points.min(0), points.max(0)
        pad = 0.3 * (hi - lo).max() + 8
        x0, y0 = (max(int(v - pad), 0) for v in lo)
        x1, y1 = min(int(hi[0] + pad) + 1, w), min(int(hi[1] + pad) + 1, h)
        if x1 - x0 > 16 and y1 - y0 > 16:
            crop, origin = image_bgr[y0:y1, x0:x1], (x0, y0)
    scale = min(1.0, max_side / max(crop.shape[:2]))
    if scale < 1.0:
        # fx, fy given (no dsize): OpenCV maps pixel centres by exactly this scale (see FrameImage.intrinsics).
        # Linear, not area-averaged: the landmark pass pays for it (area: 1.8 ms a 720p close-up's crop, linear
        # 0.3), and the refinement blurs the crop anyway (dev seeds the same to four decimals; d13's weights
        # 0.002 apart on average).
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    return FaceCrop(crop, origin, scale)


class FrameImage:
    """One frame as the refinement reads it, cropped to the face: blurred RGB (0..1), its grey level and the
    grey gradients; origin (2,): the crop's top-left corner in the video frame (pixels); scale: crop pixels
    per frame pixel. blur: Gaussian sigma in frame pixels."""

    def __init__(self, rgb: np.ndarray, blur: float = BLUR, origin: tuple[int, int] = (0, 0), scale: float = 1.0):
        self.origin = np.asarray(origin, np.float64)
        self.scale = float(scale)
        self.height, self.width = rgb.shape[:2]
        blur *= scale
        self.rgb_sharp = rgb  # the iris locator wants the edges
        self.rgb = cv2.GaussianBlur(rgb, (0, 0), blur) if blur > 0 else rgb
        self.gray = np.ascontiguousarray(self.rgb @ LUMA.astype(np.float32))
        self.gx = cv2.Sobel(self.gray, cv2.CV_32F, 1, 0, ksize=3, scale=1 / 8)
        self.gy = cv2.Sobel(self.gray, cv2.CV_32F, 0, 1, ksize=3, scale=1 / 8)

    @classmethod
    def from_bgr(cls, image_bgr: np.ndarray, points: np.ndarray | None = None) -> FrameImage:
        """From a video frame, cropped around the face's landmark points (L, 2) where given: the blur, the
        gradients and the z-buffer then cost the face's size, not the frame's (a 720p frame is 4x a face)."""
        return cls.from_crop(face_crop(image_bgr, points) if points is not None else FaceCrop(image_bgr, (0, 0)))

    @classmethod
    def from_crop(cls, crop: FaceCrop) -> FrameImage:
        """From a face_crop of a video frame (BGR uint8)."""
        rgb = cv2.cvtColor(crop.image, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        return cls(rgb, origin=crop.origin, scale=crop.scale)

    def intrinsics(self, focal: float, cx: float, cy: float) -> tuple[float, float, float]:
        """(focal, cx, cy) of the video's camera in this crop's pixels: a point at frame pixel p is at
        (p - origin + 0.5) * scale - 0.5 here (pixel centres, as cv2.resize maps them)."""
        s = self.scale
        return focal * s, (cx - self.origin[0] + 0.5) * s - 0.5, (cy - self.origin[1] + 0.5) * s - 0.5

    def to_crop(self, p: np.ndarray) -> np.ndarray:
        """Frame pixels (..., 2) in this crop's pixels."""
        return (p - self.origin + 0.5) * self.scale - 0.5

    @staticmethod
    def sample(image: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Bilinear samples of image (H, W[, C]) at pixels p (S, 2)."""
        mx = p[:, 0].astype(np.float32)[None]
        my = p[:, 1].astype(np.float32)[None]
        return cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]


@lru_cache(maxsize=2)
def _face_tables(model: FaceModel) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What the refiner reads of the model whoever the face: its vertex ids (S,) (the face submesh is the first
    vertices), the triangles drawn for visibility (T, 3), the expression deltas as (E, S * 3) and shape-last
    (S, 3, E) float32 (the compiled pass reads each sample's deltas as one contiguous row) and which vertices
    are away from the face's borders (S,) bool (BORDER_RINGS). Once per model and process (12 MB): a
    capture's warm-up makes them during its landmark pass."""
    ids = np.arange(model.submeshes["face"][1])
    # Only the face's own triangles are drawn for the visibility test (nothing else of the head hides the face
    # short of a profile view; a third of the head's triangles); their borders are the outline and the eyes',
    # mouth's and nostrils' openings, which BORDER_RINGS keeps samples away from.
    tris = model.triangles[visible_triangles(model)]
    tris = np.ascontiguousarray(tris[(tris < len(ids)).all(1)], np.int64)
    deltas = np.array(model.expressions[:, :len(ids)], np.float32)  # (E, S, 3): read from the model's file once
    exp_t = np.ascontiguousarray(deltas.transpose(1, 2, 0))
    inner = ~_near_borders(tris, len(ids), BORDER_RINGS)
    for a in (ids, tris, deltas, exp_t, inner):
        a.flags.writeable = False  # shared by every refiner of the process
    return ids, tris, deltas.reshape(model.n_expressions, -1), exp_t, inner


def _near_borders(tris: np.ndarray, n: int, rings: int) -> np.ndarray:
    """(n,) bool: the vertices of a triangle mesh (T, 3) on its borders (edges of one triangle) or within
    `rings` rings of triangles of them."""
    edges = np.sort(np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]]), axis=1)
    unique, count = np.unique(edges, axis=0, return_counts=True)
    near = np.zeros(n, bool)
    near[unique[count == 1].ravel()] = True
    for _ in range(rings):
        near[tris[near[tris].any(1)].ravel()] = True
    return near


class PhotometricRefiner:
    """Refines FitStates of one clip against its frames (one identity, focal and landmark solver).

    Samples are the face's vertices; albedo (S, 3) is set by set_albedo before refine is called.
    """

    def __init__(self, model: FaceModel, identity: np.ndarray, solver: FrameSolver):
        self.model = model
        self.solver = solver
        self.ids, self.tris, self.exp_face, self.exp_t, self.inner = _face_tables(model)
        self.n_exp = model.n_expressions
        nf = len(self.ids)
        self.base = model.neutral[:nf].astype(np.float64)
        if identity is not None:
            identity = np.asarray(identity, np.float32)
            # float32 like the basis, read in place: a float64 product converted the 11 MB basis first
            basis = model.identity[:len(identity), :nf].reshape(len(identity), -1)  # a view: (K, S * 3)
            self.base += (identity @ basis).reshape(-1, 3)
        # Normals move with the expression (a raised brow turns the forehead skin): per-shape normal deltas
        # (S, 3, E) make the shading follow in the Jacobian.
        self.n0 = vertex_normals(self.base, self.tris)
        self.dn_t = np.empty(self.exp_t.shape, np.float32)  # one table: a stack of 53 took 12-100 ms of fresh pages
        _kernels.get("normal_deltas")(self.base, self.exp_t, self.tris, self.n0, self.dn_t)
        self.albedo = np.zeros((len(self.ids), 3))
        self.known = np.zeros(len(self.ids), bool)
        self._rot = np.empty((3, 3))

    def fork(self) -> PhotometricRefiner:
        """The same refiner with its own work buffers (and solver's), for another thread."""
        other = copy.copy(self)
        other.solver, other._rot = self.solver.fork(), np.empty((3, 3))
        return other

    # geometry -------------------------------------------------------------------------------------------
    def visibility(self, st: FitState, frame: FrameImage):
        """(S,) usable samples (away from the mesh's borders, seen, facing), (S, 3) camera normals, (S, 2) crop
        pixels."""
        v = self.base + (st.weights.astype(np.float32) @ self.exp_face).reshape(-1, 3)
        focal, cx, cy = frame.intrinsics(self.solver.focal, self.solver.cx, self.solver.cy)
        vc, points = np.empty_like(v), np.empty_like(v)
        _kernels.get("project_vertices")(v, st.rotation, st.translation, focal, cx, cy, vc, points)
        coarse = points.copy()
        coarse[:, :2] = (points[:, :2] + 0.5) * OCCLUSION_SCALE - 0.5  # pixel centres, as FrameImage.to_crop
        frags = rasterize(coarse, self.tris, max(1, int(np.ceil(frame.width * OCCLUSION_SCALE))),
                          max(1, int(np.ceil(frame.height * OCCLUSION_SCALE))), perspective=True, cull_back=True)
        n = vertex_normals(vc, self.tris)
        ok = np.empty(len(v), bool)
        _kernels.get("usable_samples")(vc, points, n, self.inner, frags.depth, OCCLUSION_SCALE, OCCLUSION_SLACK,
                                       frame.width, frame.height, MIN_COS, ok)
        return ok, n, points[:, :2]

    # appearance -----------------------------------------------------------------------------------------
    def fit_light(self, frame: FrameImage, ok: np.ndarray, normals: np.ndarray, ps: np.ndarray,
                  albedo: np.ndarray | None = None) -> np.ndarray:
        """(9, 3) SH coefficients explaining the frame's colours at the samples (robust: two reweightings).

        albedo (S, 3): the face's colour to explain them with; None: the clip's (set_albedo), where known.
        Uniform light where too few samples are seen to fit it.
        """
        use = np.flatnonzero(ok & self.known if albedo is None else ok)
        albedo = self.albedo if albedo is None else albedo
        out = np.zeros((9, 3))
        if len(use) < MIN_LIGHT_SAMPLES:
            out[0] = 1.0 / SH_C0
            return out
        # Nine coefficients per channel need not every sample: a spread subset of LIGHT_SAMPLES fits the same
        # light to well under the image noise, for a fraction of the time.
        use = use[:: max(1, len(use) // LIGHT_SAMPLES)]
        col = frame.sample(frame.rgb, ps[use])  # (U, 3)
        _kernels.get("robust_light")(np.ascontiguousarray(normals[use], np.float64),
                                     np.ascontiguousarray(albedo[use], np.float64), col.astype(np.float64), out)
        return out

    def albedo_samples(self, frame: FrameImage, st: FitState, seen=None) -> np.ndarray:
        """(S, 3) colour / shading at the samples of one reference frame (NaN where unseen), the shading
        fitted against a grey face; a few hundred KB, so the frame itself need not be kept.
        seen: self.visibility(st, frame) where the caller has it."""
        ok, n, ps = self.visibility(st, frame) if seen is None else seen
        light = self.fit_light(frame, ok, n, ps, albedo=np.full((len(self.ids), 3), 0.5))
        a = frame.sample(frame.rgb, ps) / np.maximum(sh_basis(n) @ light, 1e-3)
        a[~ok] = np.nan
        return a

    def set_albedo(self, samples: list[np.ndarray]) -> None:
        """Albedo per sample: the median over reference frames of albedo_samples."""
        albedo = _nanmedian(np.stack(samples)) if samples else np.full((len(self.ids), 3), np.nan)
        self.known = np.isfinite(albedo).all(1)
        self.albedo = np.where(self.known[:, None], albedo, 0.0)

    # solve ----------------------------------------------------------------------------------------------
    def _photometric(self, frame: FrameImage, st: FitState, usable: np.ndarray, light: np.ndarray):
        """Weighted residuals (U,) and Jacobian (U, 6 + E) of the photometric term at the usable samples
        (U,) indices, in noise units (one compiled pass: _kernels.photometric_rows). The Jacobian is float32:
        its J^T J, a refined frame's one big product, then takes two thirds of the time."""
        focal, cx, cy = frame.intrinsics(self.solver.focal, self.solver.cx, self.solver.cy)
        r = np.empty(len(usable))
        jac = np.empty((len(usable), 6 + self.n_exp), np.float32)
        _kernels.get("photometric_rows")(
            usable, self.base, self.exp_t, self.n0, self.dn_t, self.albedo, st.weights, st.rotation,
            st.translation, light, LUMA, frame.gray, frame.gx, frame.gy, focal, cx, cy, 0.0, 0.0,
            INTENSITY_NOISE, HUBER, PHOTO_WEIGHT, r, jac)
        return r, jac

    def view(self, frame: FrameImage, st: FitState, seen=None) -> tuple[np.ndarray, np.ndarray]:
        """What refine compares at st's pose: the usable samples (U,) indices and the frame's SH lighting (9, 3).
        seen: self.visibility(st, frame) where the caller has it."""
        ok, n, ps = self.visibility(st, frame) if seen is None else seen
        ok = ok & self.known
        return np.flatnonzero(ok)[::SAMPLE_STEP], self.fit_light(frame, ok, n, ps)

    def refine(self, frame: FrameImage, x: np.ndarray, init: FitState, prev: FitState | None,
               held: np.ndarray, iterations: int = ITERATIONS,
               view: tuple[np.ndarray, np.ndarray] | None = None) -> FitState:
        """The state of one frame refined: landmarks x (L, 2), anchored to prev like FrameSolver.solve.

        held (E,) bool: weights left where they are (the eyeLook shapes, which follow the gaze).
        view: self.view(frame, init) where the caller has it (visibility costs a rasterization).
        """
        s, settings = self.solver, self.solver.settings
        st = init.copy()
        usable, light = view if view is not None else self.view(frame, st)
        diag = np.empty(6 + self.n_exp)
        if prev is None:
            diag[:6] = 1e-6
            diag[6:] = 2 * s.l2
            anchor = st
        else:
            diag[:3] = 2 * settings.temporal_rotation
            diag[3:6] = 2 * settings.temporal_translation
            diag[6:] = 2 * (s.l2 + settings.temporal)
            anchor = prev
        step = _kernels.get("gn_step")
        for _ in range(iterations):
            scale = max(-st.translation[2], 1e-3) / (s.focal * settings.sigma)
            _, grad, hess = s._linearize(x, st, scale, True)
            r, jac = self._photometric(frame, st, usable, light)
            step(hess + jac.T @ jac, grad + jac.T @ r.astype(np.float32), diag, st.rotation, st.translation, st.weights,
                 anchor.rotation, anchor.translation, anchor.weights, prev is not None, s.l1, s.l2,
                 settings.temporal, settings.temporal_rotation, settings.temporal_translation, held, self._rot)
            st.rotation = self._rot.copy()
        return st


def _nanmedian(a: np.ndarray) -> np.ndarray:
    """np.nanmedian(a, axis=0), NaN where a column has no value: the same numbers in a tenth of the time
    (numpy's goes through masked arrays for a short axis: 60 ms for 30 reference frames of the face)."""
    a = np.sort(a, axis=0)  # NaN sort last
    count = (~np.isnan(a)).sum(0)
    lo = np.take_along_axis(a, np.maximum(count - 1, 0)[None] // 2, axis=0)[0]
    hi = np.take_along_axis(a, count[None] // 2, axis=0)[0]
    return np.where(count > 0, 0.5 * (lo + hi), np.nan)


def _chosen(tracked: np.ndarray, stride: int) -> np.ndarray:
    """(N,) bool: the frames refined against their pixels: every stride-th of each tracked run, and its last."""
    chosen = np.zeros(len(tracked), bool)
    starts = np.flatnonzero(tracked & ~np.r_[False, tracked[:-1]])
    ends = np.flatnonzero(tracked & ~np.r_[tracked[1:], False])
    for a, b in zip(starts, ends):
        chosen[a:b + 1:stride] = True
        chosen[b] = True
    return chosen


class CropKeeper:
    """Keeps, frame by frame as a pass streams, the face crops the refinement will read: those of _chosen's
    frames, with the frames where a face was found as the runs. The crops go to a CropFile (on disk)."""

    def __init__(self, stride: int):
        self.stride = stride
        self.crops = CropFile()
        self._run_start: int | None = None
        self._pending = None  # the last found frame not kept (i, image, points): kept if its run ends there

    def push(self, i: int, image_bgr: np.ndarray, points: np.ndarray | None) -> None:
        """Frame i (BGR) and its landmark points (L, 2), or None where no face was found."""
        if points is None or not np.isfinite(points).all():
            self._close_run()
            return
        if self._run_start is None:
            self._run_start = i
        if (i - self._run_start) % self.stride == 0:
            self._keep(i, image_bgr, points)
            self._pending = None
        else:
            self._pending = (i, image_bgr, points)  # a reference: the reader hands out a new array per frame

    def finish(self) -> CropFile:
        self._close_run()
        return self.crops

    def _close_run(self) -> None:
        if self._pending is not None:
            self._keep(*self._pending)
        self._pending = None
        self._run_start = None

    def _keep(self, i: int, image_bgr: np.ndarray, points: np.ndarray) -> None:
        self.crops.add(i, face_crop(image_bgr, np.asarray(points, np.float64)))

    def __enter__(self) -> CropKeeper:
        return self

    def __exit__(self, *exc) -> None:
        self.crops.close()


def store_crops(images: Iterable[np.ndarray], points, stride: int) -> CropFile:
    """The face crops the refinement reads, from one decoding pass over a clip (images: BGR, in the order
    of points (N, L, 2), NaN where no face was found)."""
    keeper = CropKeeper(stride)
    for i, image in enumerate(images):
        if i >= len(points):
            break
        keeper.push(i, image, np.asarray(points[i], np.float64))
    return keeper.finish()


def _spread(delta: np.ndarray, chosen: np.ndarray, tracked: np.ndarray, in_place: bool = False) -> np.ndarray:
    """delta (N, ...) known at the chosen frames, linearly interpolated to the other tracked frames of each run
    (held flat beyond its first and last chosen frame; zero in a run with none); into delta itself where
    in_place (a 10-minute clip's weights are 7.6 MB a copy)."""
    out = delta if in_place else delta.copy()
    flat = out.reshape(len(out), -1)
    run = np.cumsum(np.r_[0, tracked[1:] != tracked[:-1]])
    for r in np.unique(run[tracked]):
        frames = np.flatnonzero(run == r)
        known = frames[chosen[frames]]
        if not len(known):
            flat[frames] = 0.0
            continue
        for c in range(flat.shape[1]):
            flat[frames, c] = np.interp(frames, known, flat[known, c])
    return out


def refine_fits(fits, crops: CropFile, points, model: FaceModel,
                iris_rings: tuple[np.ndarray, np.ndarray] | None = None, job=None) -> int:
    """Refine a clip's per-frame fits in place (core.tracking.tracker.FrameFits) against its frames.

    crops: the face crops of the frames to refine (a CropKeeper's, kept while the landmarks streamed, or
    store_crops's): the tracked ones among them are refined, and every other tracked frame gets its landmark
    fit plus the correction (weights, pose, gaze) interpolated from the refined frames around it. The
    face's appearance comes from the most neutral of them. points: (N, L, 2) the landmarks the fits came
    from. iris_rings: the detector's [left, right] lid outlines (point indices) for the photometric iris;
    None keeps the landmark gaze. job: a core.job.Job with a "photometric" stage, or None.
    Returns how many frames were refined.

    The refined frames are solved in order, as chains: each is anchored to the one before (the temporal
    prior), a tracking gap starting a new chain. The clip's refined frames are split into LANES contiguous
    parts, each a chain of its own on its own thread (its frames prepared by that thread: decoding the
    crop, blur, gradients, visibility and lighting): one chain beside a worker that prepared its frames
    left a core mostly idle, the chain's thread being the bottleneck.
    """
    from .iris import IrisLocator

    n = len(fits.tracked)
    held = np.zeros(fits.weights.shape[1], bool)
    held[fits.held] = True
    stored = crops.frames()
    stored = stored[stored < n]
    chosen = np.zeros(n, bool)
    chosen[stored] = True
    chosen &= fits.tracked
    todo = np.flatnonzero(chosen)
    neutral = np.abs(np.where(held, 0.0, fits.weights[todo])).sum(1)
    refs = todo[np.argsort(neutral)[:min(REFERENCE_FRAMES, max(1, (len(todo) + 1) // 2))]]
    # One BLAS thread here too (core.threads): the set-up's products beside a second BLAS thread, which the
    # keyframe fit before it leaves spinning, took 0.14 s on s32 instead of 0.04-0.08.
    with one_blas_thread():
        refiner = PhotometricRefiner(model, fits.identity, fits.solver)

    def landmark_state(i: int) -> FitState:
        return FitState(fits.rotation[i], fits.translation[i], fits.weights[i].copy())

    # The reference frames are refined too, at the same landmark fit: what they saw (visibility, a z-buffer:
    # a third of a frame's preparation) is kept for their turn in the chain (~0.4 MB a frame, at most 30).
    seen_at: dict[int, tuple] = {}

    def appearance(i: int) -> np.ndarray:
        frame, st = FrameImage.from_crop(crops[i]), landmark_state(i)
        seen_at[i] = refiner.visibility(st, frame)
        return refiner.albedo_samples(frame, st, seen_at[i])

    def prepare(i: int):
        frame = FrameImage.from_crop(crops[i])
        init = landmark_state(i)
        return np.asarray(points[i], np.float64), frame, init, refiner.view(frame, init, seen_at.pop(i, None))

    # BLAS held to one thread per caller (core.threads): OpenBLAS's own threads on these small products, on top
    # of ours, made the pass 1.5x slower. What the lanes read is safe to read beside each other: crops and
    # points (a FrameFile) lock their seek-then-read (unlocked, a reader once got another frame's points now
    # and then, and the same clip came out with weights up to 0.39 apart between runs), and each lane reads
    # and writes only its own frames of fits.
    with one_blas_thread():
        # Nothing else runs until the appearance is known: both cores take reference frames.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="likeness-appearance") as both:
            refiner.set_albedo(list(both.map(appearance, refs)))
        locator = IrisLocator(model, fits.identity, fits.solver) \
            if iris_rings is not None and fits.gaze is not None else None
        # the landmark fit, kept to spread the refinement's corrections to the frames in between
        lmk_weights, lmk_rot, lmk_trans = fits.weights.copy(), fits.rotation.copy(), fits.translation.copy()
        lmk_gaze = fits.gaze.copy() if fits.gaze is not None else None
        done, lock, stop = [0], threading.Lock(), threading.Event()

        def lane(frames: np.ndarray) -> None:
            """Refine frames (in clip order) as one chain: each anchored to the one before."""
            own = refiner.fork()
            prev, last_gaze = None, None
            for k, i in enumerate(frames):
                if stop.is_set():
                    return
                x, frame, init, view = prepare(i)
                if k and not fits.tracked[frames[k - 1]:i].all():
                    prev = None  # a gap in tracking: a new chain
                st, last_gaze = _refine_frame(own, locator, fits, iris_rings, i, x, frame, init, view, prev,
                                              held, last_gaze)
                fits.weights[i], fits.rotation[i], fits.translation[i] = np.clip(st.weights, 0, 1), \
                    st.rotation, st.translation
                prev = st
                with lock:
                    done[0] += 1

        with ThreadPoolExecutor(max_workers=LANES, thread_name_prefix="likeness-photometric") as pool:
            pending = {pool.submit(lane, frames) for frames in np.array_split(todo, LANES) if len(frames)}
            try:
                while pending:
                    finished, pending = wait(pending, timeout=0.1, return_when=FIRST_EXCEPTION)
                    for f in finished:
                        f.result()  # a lane's error, raised here
                    if job is not None:
                        job.step("photometric", done[0], len(todo))
            finally:
                stop.set()  # the other lane stops at its next frame where one failed or the job was cancelled
    if fits.tracked.any():
        _spread_corrections(fits, chosen, lmk_weights, lmk_rot, lmk_trans, lmk_gaze)
    if job is not None:
        job.step("photometric", len(todo), len(todo))
    return len(todo)


def _refine_frame(refiner: PhotometricRefiner, locator, fits, iris_rings, i: int, x: np.ndarray,
                  frame: FrameImage, init: FitState, view, prev: FitState | None, held: np.ndarray,
                  last_gaze: np.ndarray | None) -> tuple[FitState, np.ndarray | None]:
    """Frame i refined (its landmarks x (L, 2), prepared frame, landmark fit init and view), its gaze written
    to fits.gaze where the iris is found; returns the state and the last open gaze of the chain."""
    if locator is None:
        return refiner.refine(frame, x, init, prev, held, view=view), last_gaze
    # The iris is located at the pose of the last but one iteration; its eyeLook weights move the lids, so the
    # last iteration refits blink, squint and wide around them.
    st = refiner.refine(frame, x, init, prev, held, iterations=ITERATIONS - 1, view=view)
    if fits.closed[i].any():  # a shut lid hides the iris: keep the last open gaze
        if last_gaze is not None:
            fits.gaze[i] = last_gaze
    else:
        solver = refiner.solver
        lids = frame.to_crop(solver.project(st))
        g = locator.locate(frame.rgb_sharp, st.rotation, st.translation,
                           (lids[iris_rings[0]], lids[iris_rings[1]]), fits.gaze[i].mean(0),
                           frame.intrinsics(solver.focal, solver.cx, solver.cy))
        if g is not None:
            fits.gaze[i] = g[None]
            last_gaze = fits.gaze[i].copy()
            for e, value in gaze_to_eye_look(fits.gaze[i][None], solver.lm.names).items():
                st.weights[e] = value[0]
    return refiner.refine(frame, x, st, prev, held, iterations=1, view=view), last_gaze


def _spread_corrections(fits, chosen: np.ndarray, weights: np.ndarray, rot: np.ndarray, trans: np.ndarray,
                        gaze: np.ndarray | None) -> None:
    """The frames between refined ones: their landmark fit plus the refinement's correction, interpolated from
    the refined frames around them (the detector's error changes with the expression, slowly)."""
    tracked = fits.tracked

    def correct(refined: np.ndarray, landmark: np.ndarray) -> None:
        """refined (N, ...) := landmark + the correction at the chosen frames spread, with one temporary."""
        delta = np.subtract(refined, landmark)
        delta[~chosen] = 0.0
        np.add(landmark, _spread(delta, chosen, tracked, in_place=True), out=refined)

    correct(fits.weights, weights)
    np.clip(fits.weights, 0, 1, out=fits.weights)
    correct(fits.translation, trans)
    d_rot = np.zeros((len(tracked), 3))
    for i in np.flatnonzero(chosen):
        d_rot[i] = rotation_log(fits.rotation[i] @ rot[i].T)
    d_rot = _spread(d_rot, chosen, tracked, in_place=True)
    for i in np.flatnonzero(tracked & ~chosen):
        fits.rotation[i] = rodrigues(d_rot[i]) @ rot[i]
    if gaze is not None:
        correct(fits.gaze, gaze)


def warm_up(model: FaceModel) -> None:
    """Load what the refinement's first frame would wait for (the model's expression arrays from disk, the
    compiled kernels, the eyes' atlas table), once per process: core.pipeline.warm_up_capture calls it."""
    from .iris import eyeball_geometry
    from .linear import LandmarkModel

    lm = LandmarkModel.from_vertices(model, np.arange(8))
    solver = FrameSolver(lm, None, 500.0, (32.0, 32.0))
    refiner = PhotometricRefiner(model, np.zeros(model.identity.shape[0]), solver)
    refiner.set_albedo([np.full((len(refiner.ids), 3), 0.5)])
    frame = FrameImage(np.full((64, 64, 3), 0.5, np.float32))
    st = FitState(np.eye(3), np.array([0.0, 0.0, -2.0]), np.zeros(model.n_expressions))
    refiner.refine(frame, solver.project(st), st, None, np.zeros(model.n_expressions, bool), iterations=1)
    _kernels.get("disc_misfit")(np.array([[0.0, 0.0, 1.0]]), np.zeros(1), np.array([[0.0, 0.0, 1.0]]), 0.9, 0.01,
                                np.zeros(1))  # the iris search's
    # The eyeballs' axes read the atlas's corner coordinates (cached per model): 27 ms the first time.
    eyeball_geometry(model, np.zeros(model.identity.shape[0], np.float32))
