"""Landmark layouts the fitter understands: which model surface point each detector point is, and its trust."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..facemodel.correspondence import MEDIAPIPE_TO_68  # the iBUG-68 subset of MediaPipe's points
from ..facemodel.model import FaceModel
from .linear import LandmarkModel

# MediaPipe's face oval (its FACEMESH_FACE_OVAL contour): silhouette points slide along the surface as the
# head turns, so they say less about where a fixed surface point is than interior points do.
MEDIAPIPE_OVAL = np.array([
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176,
    149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
])
# MediaPipe's eye and lip contours (its FACEMESH_LEFT_EYE, _RIGHT_EYE, _LIPS point sets): the features
# expressions move most, and the ones it tracks best.
MEDIAPIPE_EYES = np.array([
    249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466,
    7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246,
])
MEDIAPIPE_LIPS = np.array([
    0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269, 270,
    291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415,
])
MEDIAPIPE_IRIS = np.arange(468, 478)  # 468-472 the subject's right iris (centre first), 473-477 the left
MEDIAPIPE_IRIS_CENTERS = (473, 468)  # [left eye, right eye] of the subject, as Capture.gaze orders eyes

CONTOUR_WEIGHT = 0.3
FEATURE_WEIGHT = 3.0  # eye and lip contours


@dataclass(frozen=True, eq=False)
class PointLayout:
    """A detector's point scheme tied to the model.

    model: the LandmarkModel over all L detector points; weights (L,): trust per point (0 = not used in
    the pose/expression fit); outer_eyes: the two outer eye corners (for inter-ocular distance);
    iris: [left, right] iris centre indices or None; to68: (68,) indices giving the iBUG 68 subset;
    corners (L, 3) vertex ids and bary (L, 3) weights: where each point sits on the mesh (for normals).
    """

    name: str
    model: LandmarkModel
    weights: np.ndarray
    outer_eyes: tuple[int, int]
    iris: tuple[int, int] | None
    to68: np.ndarray
    corners: np.ndarray | None = None
    bary: np.ndarray | None = None
    lids: tuple[tuple[int, int], tuple[int, int]] | None = None  # [left, right] eye: (upper, lower) lid point


def ibug68_layout(face_model: FaceModel) -> PointLayout:
    """The 68-point scheme (FAN backend, annotations): the ICT model's own 68 landmark vertices."""
    weights = np.ones(68)
    weights[:17] = CONTOUR_WEIGHT
    ids = np.asarray(face_model.landmarks68)
    return PointLayout("ibug68", LandmarkModel.from_vertices(face_model, ids), weights, (36, 45), None,
                       np.arange(68), np.repeat(ids[:, None], 3, axis=1), np.tile([1.0, 0.0, 0.0], (68, 1)),
                       ((44, 46), (37, 41)))


def mediapipe_layout(face_model: FaceModel, correspondence=None) -> PointLayout:
    """The 478-point MediaPipe scheme, tied to the model by core.facemodel.correspondence.

    correspondence: an object with triangle (478,) and bary (478, 3) (default: load_correspondence()).
    The iris points get weight 0 here: gaze is read from them separately (core.tracking.gaze).
    """
    if correspondence is None:
        from ..facemodel.correspondence import load_correspondence

        correspondence = load_correspondence()
    lm = LandmarkModel.from_barycentric(face_model, correspondence.triangle, correspondence.bary)
    weights = np.ones(lm.n_points)
    weights[MEDIAPIPE_OVAL] = CONTOUR_WEIGHT
    weights[MEDIAPIPE_EYES] = FEATURE_WEIGHT
    weights[MEDIAPIPE_LIPS] = FEATURE_WEIGHT
    weights[MEDIAPIPE_IRIS] = 0.0
    return PointLayout("mediapipe478", lm, weights, (33, 263), MEDIAPIPE_IRIS_CENTERS, MEDIAPIPE_TO_68,
                       face_model.triangles[np.asarray(correspondence.triangle)],
                       np.asarray(correspondence.bary, np.float64), ((386, 374), (159, 145)))


def layout_for(n_points: int, face_model: FaceModel) -> PointLayout:
    """The layout for a backend's point count (478: MediaPipe, 68: iBUG)."""
    if n_points == 68:
        return ibug68_layout(face_model)
    if n_points in (468, 478):
        return mediapipe_layout(face_model)
    raise ValueError(f"no landmark layout for {n_points} points (expected 68 or 478)")


def interocular(points: np.ndarray, layout: PointLayout) -> np.ndarray:
    """Outer-eye-corner distance in pixels: points (..., L, 2) -> (...)."""
    a, b = layout.outer_eyes
    return np.linalg.norm(points[..., a, :] - points[..., b, :], axis=-1)
