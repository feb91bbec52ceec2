"""Head and eye rotations of a capture as matrices and quaternions, ready to put on another character's bones.

Conventions are core's (right-handed, Y up, the face looking along +Z towards the camera, so +X is the
subject's left): Capture.rotation is the head's XYZ Euler pose in camera space (R = Rz @ Ry @ Rx);
Capture.gaze holds per-eye [yaw, pitch] degrees read as right-handed rotations about the head's +Y and +X
axes (positive yaw looks to the subject's left, positive pitch looks down), eye = Ry(yaw) @ Rx(pitch).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from ..render.camera import euler_to_matrix, matrix_to_euler


def head_rotations(rotation_deg: np.ndarray, reference: str = "median") -> np.ndarray:
    """(frames, 3) Euler degrees -> (frames, 3, 3) head rotations relative to a rest pose.

    reference "median": relative to the median pose (a performer rarely faces the lens squarely, and a
    character should keep its own rest pose on average); "first": relative to the first frame; "camera":
    as captured (facing the camera is the rest pose).
    """
    r = euler_to_matrix(np.asarray(rotation_deg, np.float64))
    if reference == "camera" or len(r) == 0:
        return r
    if reference == "first":
        ref = r[0]
    elif reference == "median":
        ref = euler_to_matrix(np.median(matrix_to_euler(r), axis=0))
    else:
        raise ValueError(f"reference must be 'median', 'first' or 'camera', not {reference!r}")
    return r @ ref.T


def gaze_rotations(gaze_deg: np.ndarray) -> np.ndarray:
    """(frames, 2, 2) [eye, (yaw, pitch)] degrees -> (frames, 2, 3, 3) eye rotations Ry(yaw) @ Rx(pitch)."""
    g = np.asarray(gaze_deg, np.float64)
    # Upper-case axes are intrinsic in scipy: "YX" composes as Ry(yaw) @ Rx(pitch).
    return Rotation.from_euler("YX", g.reshape(-1, 2), degrees=True).as_matrix().reshape(g.shape[:-1] + (3, 3))


def matrices_to_quaternions(r: np.ndarray) -> np.ndarray:
    """(n, 3, 3) rotations -> (n, 4) unit quaternions (w, x, y, z), signs chosen so neighbours agree
    (no 360-degree flips when keys are interpolated)."""
    r = np.asarray(r, np.float64)
    if not len(r):
        return np.zeros((0, 4))
    q = Rotation.from_matrix(r).as_quat()[:, [3, 0, 1, 2]]
    q[0] *= np.sign(q[0, 0]) or 1.0
    flips = np.cumprod(np.where(np.sum(q[1:] * q[:-1], axis=1) < 0, -1.0, 1.0))
    q[1:] *= flips[:, None]
    return q
