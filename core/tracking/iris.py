"""Gaze from the image: the dark iris disc on the fitted eyeball, seen through the fitted lids.

MediaPipe's iris points follow vertical gaze poorly (on synthetic clips their height correlates 0.3-0.6
with the truth, a pitch slope of ~0.5). Given a refined head pose, the eye's rotation is found instead by
matching a disc of the iris's angular size on the eyeball sphere against the red channel (where iris and
sclera differ most for every iris colour) inside the lid outline: a grid search around the landmark gaze,
then a finer one. Both eyes turn together (one gaze), as in the landmark path.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..facemodel.model import FaceModel
from ..render.atlas import CELLS, texture_coords
from ..render.camera import euler_to_matrix
from . import _kernels
from .gaze import _sphere_fit
from .solver import FrameSolver

# MediaPipe's lid outlines, [left eye of the subject, right eye]: upper lid corner to corner, lower lid back.
MEDIAPIPE_LID_RINGS = (
    np.array([263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249]),
    np.array([33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7]),
)
IRIS_HALF_ANGLE = 16.0  # degrees: the iris's angular radius on the eyeball sphere
SEARCH = 12.0  # degrees around the landmark gaze
# Coarse to fine (span, step) in degrees: the disc (16 degrees) is found on the coarse grid, the finer ones
# settle it, all on one 0.25-degree lattice around the landmark gaze. 99 candidates; session 11's (12, 3),
# (3, 1), (1, 0.25) took 211 and found the same gaze on every frame (dev seeds; d3, d6 and d13).
GRIDS = ((SEARCH, 4.0), (2.0, 1.0), (0.5, 0.25))
# The finer grids raise the share explained by little; an eye whose best coarse disc explains less than
# MIN_EXPLAINED - COARSE_SLACK is given up at once (most frames of a light iris under dark lashes).
COARSE_SLACK = 0.1
# The share of the eye pixels' variance the best disc must explain to be believed. Renders and a clear real
# eye (d13) give 0.45-0.7 on most frames; where a light iris under dark lashes leaves the lash line the
# darkest thing in the eye (s32, KatieHill: 0.2-0.43) the disc lands on the lid, so the landmark gaze stays.
MIN_EXPLAINED = 0.45


def eyeball_geometry(model: FaceModel, identity: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """centres (2, 3), radius (m), iris axes (2, 3) unit, [left, right] eye, in model space.

    The axis points at the centre of the eye's texture cell, where the ICT eyeball texture puts the pupil.
    """
    uv_corners = texture_coords(model)
    x0, y0, size = CELLS[("eye", 0)]
    centres, radii, axes = [], [], []
    for side in ("left", "right"):
        a, b = model.submeshes["eyeball_" + side]
        v = model.vertices(identity, index=slice(a, b)).astype(np.float64)  # the eyeball's alone: (b - a, 3)
        c, r = _sphere_fit(v)
        on_eye = ((model.triangles >= a) & (model.triangles < b)).all(1)
        vid = model.triangles[on_eye].ravel() - a
        uv = uv_corners[on_eye].reshape(-1, 2)
        off_centre = np.hypot((uv[:, 0] - x0) / size - 0.5, (uv[:, 1] - y0) / size - 0.5)
        d = v[vid][off_centre < 0.01] - c
        axis = (d / np.linalg.norm(d, axis=1, keepdims=True)).mean(0)
        centres.append(c)
        radii.append(r)
        axes.append(axis / np.linalg.norm(axis))
    return np.array(centres), float(np.mean(radii)), np.array(axes)


class IrisLocator:
    """Finds one clip's gaze frame by frame (identity, focal and centre from the landmark solver)."""

    def __init__(self, model: FaceModel, identity: np.ndarray, solver: FrameSolver):
        self.centres, self.radius, self.axes = eyeball_geometry(model, identity)
        self.focal, self.cx, self.cy = solver.focal, solver.cx, solver.cy
        self.cos_a = np.cos(np.radians(IRIS_HALF_ANGLE))
        self.sin_a = np.sin(np.radians(IRIS_HALF_ANGLE))

    def _eye_pixels(self, red: np.ndarray, ring: np.ndarray, centre_cam: np.ndarray, camera: tuple):
        """Intensities (P,) inside the lid ring, their points' directions on the eyeball (P, 3), its radius
        in pixels; None when the eye is too small or shut."""
        h, w = red.shape
        lo = np.maximum(np.floor(ring.min(0)).astype(int) - 2, 0)
        hi = np.minimum(np.ceil(ring.max(0)).astype(int) + 3, [w, h])
        if (hi - lo).min() < 4:
            return None
        mask = np.zeros((hi[1] - lo[1], hi[0] - lo[0]), np.uint8)
        cv2.fillPoly(mask, [np.round((ring - lo) * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
        ys, xs = np.nonzero(cv2.erode(mask, np.ones((3, 3), np.uint8)))
        if len(xs) < 12:
            return None
        px, py = xs + lo[0], ys + lo[1]
        focal, cx, cy = camera
        ray = np.stack([(px - cx) / focal, -(py - cy) / focal, -np.ones(len(px))], 1)
        ray /= np.linalg.norm(ray, axis=1, keepdims=True)
        b = ray @ centre_cam
        s = b - np.sqrt(np.clip(self.radius**2 - (centre_cam @ centre_cam - b * b), 0, None))
        u = ray * s[:, None] - centre_cam
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        return red[py, px].astype(np.float64), u, self.radius * focal / -centre_cam[2]

    def locate(self, rgb: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
               lids_px: tuple[np.ndarray, np.ndarray], start: np.ndarray,
               camera: tuple[float, float, float] | None = None) -> np.ndarray | None:
        """Gaze [yaw, pitch] degrees (as core.tracking.gaze) near start (2,); None where no eye is seen or no
        dark disc explains the eye (see MIN_EXPLAINED).

        rgb (H, W, 3) float 0..1; rotation (3, 3), translation (3,): the head; lids_px: the fitted lid
        outlines in pixels of rgb, [left, right]; camera: (focal, cx, cy) in rgb's pixels (FrameImage.intrinsics
        of a crop), None: the video frame's.
        """
        red = cv2.GaussianBlur(np.ascontiguousarray(rgb[..., 0]), (0, 0), 0.6)
        eyes = []
        for e in range(2):
            centre_cam = rotation @ self.centres[e] + translation
            seen = self._eye_pixels(red, lids_px[e], centre_cam, camera or (self.focal, self.cx, self.cy))
            if seen is not None:
                eyes.append((e,) + seen)
        if not eyes:
            return None

        def misfit(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
            """(K,) unexplained variance of the eye pixels by a dark disc at each candidate gaze."""
            turn = euler_to_matrix(np.stack([pitch, yaw, np.zeros_like(yaw)], -1))  # Ry(yaw) Rx(pitch)
            total = np.zeros(len(yaw))
            for e, intensity, u, radius_px in eyes:
                axis = np.ascontiguousarray(np.einsum("ij,kjl,l->ki", rotation, turn, self.axes[e]))
                soft = self.sin_a * 0.6 / radius_px  # the disc's edge blurred over about a pixel
                # only a disc darker than the sclera counts (see _kernels.disc_misfit)
                _kernels.get("disc_misfit")(u, intensity - intensity.mean(), axis, self.cos_a, soft, total)
            return total

        best = np.asarray(start, np.float64)
        for g, (span, step) in enumerate(GRIDS):
            k = np.arange(-span, span + 1e-9, step)
            yaw, pitch = (a.ravel() for a in np.meshgrid(best[0] + k, best[1] + k))
            cost = misfit(yaw, pitch)
            j = int(np.argmin(cost))
            best = np.array([yaw[j], pitch[j]])
            explained = 1.0 - float(cost[j]) / len(eyes)
            if g == 0 and explained < MIN_EXPLAINED - COARSE_SLACK:  # no disc here: the finer grids would not find one
                return None
        return best if explained >= MIN_EXPLAINED else None
