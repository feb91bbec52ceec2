"""Gaze: eye rotations from the iris landmarks, and the eyeLook blendshape weights that go with them.

Angles are the eye's rotation in the head's frame, the same sense as head rotations: yaw about the head's
Y (up) axis, positive when the eye turns towards the subject's left (+X); pitch about X, positive when it
turns down (a right-handed rotation about X tips +Z downwards). Zero is the model's rest gaze.
The ICT eyeLook shapes move only the lids (its eyeballs are rotated by a rig), so their weights come from
these angles through fixed full-scale angles (EYE_LOOK_DEGREES), one mapping used both ways.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..facemodel.model import FaceModel
from . import _kernels

# The rotation at which an eyeLook weight reaches 1 (degrees), horizontal and vertical.
EYE_LOOK_DEGREES = {"horizontal": 30.0, "up": 25.0, "down": 25.0}
EYE_NAMES = ("L", "R")  # Capture.gaze eye order: [left, right] of the subject


@dataclass(frozen=True)
class EyeModel:
    """centers (2, 3): eyeball centres [left, right] in model space; radius: centre to iris centre (m);
    rest (2, 3): unit directions of the resting gaze."""

    centers: np.ndarray
    radius: float
    rest: np.ndarray


def _sphere_fit(p: np.ndarray) -> tuple[np.ndarray, float]:
    a = np.c_[2 * p, np.ones(len(p))]
    s = np.linalg.lstsq(a, (p**2).sum(1), rcond=None)[0]
    return s[:3], float(np.sqrt(s[3] + s[:3] @ s[:3]))


def eye_model(face_model: FaceModel, identity: np.ndarray | None = None,
              iris_points: np.ndarray | None = None) -> EyeModel:
    """The eyes of a person: sphere fits to the eyeball meshes (their rotation centres).

    iris_points (2, 3): where the detector's iris centres sit on the neutral model, [left, right] (the
    landmark correspondence); default: the front-most 3 percent of each eyeball.
    """
    centers, rest, radii = [], [], []
    for e, side in enumerate(("left", "right")):
        v = face_model.vertices(identity, index=slice(*face_model.submeshes[f"eyeball_{side}"])).astype(np.float64)
        c, _ = _sphere_fit(v)
        front = v[v[:, 2] >= np.percentile(v[:, 2], 97)].mean(0) if iris_points is None else iris_points[e]
        centers.append(c)
        rest.append((front - c) / np.linalg.norm(front - c))
        radii.append(np.linalg.norm(front - c))
    return EyeModel(np.array(centers), float(np.mean(radii)), np.array(rest))


def direction_to_angles(d: np.ndarray) -> np.ndarray:
    """(..., 3) unit directions in the head frame -> (..., 2) [yaw, pitch] degrees (see module doc)."""
    yaw = np.arctan2(d[..., 0], d[..., 2])
    pitch = -np.arcsin(np.clip(d[..., 1], -1.0, 1.0))
    return np.degrees(np.stack([yaw, pitch], axis=-1))


def gaze_from_iris(iris_px: np.ndarray, rotation: np.ndarray, translation: np.ndarray, eyes: EyeModel,
                   focal: float, center: tuple[float, float]) -> np.ndarray:
    """Eye rotations (N, 2, 2) degrees [eye][yaw, pitch] from iris centres (N, 2, 2) pixels [left, right].

    rotation (N, 3, 3), translation (N, 3): the fitted head poses. Each iris centre's viewing ray meets
    the eyeball sphere; the direction from the eyeball centre to that point, in the head frame, is the gaze.
    A ray that misses (noise at a grazing view) uses its closest point to the sphere.
    """
    iris_px = np.asarray(iris_px, np.float64)
    out = np.empty(iris_px.shape[:1] + (2, 2))
    _kernels.get("iris_gaze")(iris_px, np.asarray(rotation, np.float64), np.asarray(translation, np.float64),
                              eyes.centers, eyes.radius, direction_to_angles(eyes.rest), float(focal),
                              float(center[0]), float(center[1]), out)
    return out


def eye_look_matrix(names: tuple[str, ...] | list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The eyeLook weights as a clipped linear map of the gaze: (indices (K,) into names, ascending; A (K, 2, 2)),
    weights[indices[k]] = clip(sum(A[k] * gaze), 0, 1) for a gaze (2, 2) [eye][yaw, pitch]."""
    h, up, down = EYE_LOOK_DEGREES["horizontal"], EYE_LOOK_DEGREES["up"], EYE_LOOK_DEGREES["down"]
    index = {n: i for i, n in enumerate(names)}
    rows = []
    for e, side in enumerate(EYE_NAMES):
        outward = 1.0 if side == "L" else -1.0  # the left eye looks out towards +X, the right towards -X
        for what, yaw, pitch in (("Out", outward / h, 0.0), ("In", -outward / h, 0.0), ("Up", 0.0, -1.0 / up),
                                 ("Down", 0.0, 1.0 / down)):
            name = f"eyeLook{what}_{side}"
            if name in index:
                a = np.zeros((2, 2))
                a[e] = yaw, pitch
                rows.append((index[name], a))
    rows.sort(key=lambda r: r[0])
    return np.array([i for i, _ in rows], int), np.array([a for _, a in rows]).reshape(-1, 2, 2)


def gaze_to_eye_look(gaze: np.ndarray, names: tuple[str, ...] | list[str]) -> dict[int, np.ndarray]:
    """eyeLook{In,Out,Up,Down}_{L,R} weights (N,) in [0, 1] from gaze (N, 2, 2), keyed by index in names."""
    indices, a = eye_look_matrix(names)
    values = np.clip(np.asarray(gaze).reshape(len(gaze), 4) @ a.reshape(len(a), 4).T, 0.0, 1.0)
    return {int(i): values[:, k] for k, i in enumerate(indices)}


def eye_look_to_gaze(weights: np.ndarray, names: tuple[str, ...] | list[str]) -> np.ndarray:
    """The inverse of gaze_to_eye_look: weights (N, shapes) -> gaze (N, 2, 2) degrees."""
    idx = {n: i for i, n in enumerate(names)}
    w = lambda n: weights[:, idx[n]] if n in idx else np.zeros(len(weights))  # noqa: E731
    h, up, down = EYE_LOOK_DEGREES["horizontal"], EYE_LOOK_DEGREES["up"], EYE_LOOK_DEGREES["down"]
    gaze = np.zeros((len(weights), 2, 2))
    for e, side in enumerate(EYE_NAMES):
        outward = h * (w(f"eyeLookOut_{side}") - w(f"eyeLookIn_{side}"))
        gaze[:, e, 0] = outward if side == "L" else -outward
        gaze[:, e, 1] = down * w(f"eyeLookDown_{side}") - up * w(f"eyeLookUp_{side}")
    return gaze
