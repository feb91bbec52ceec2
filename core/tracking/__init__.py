"""Fitting the face model to landmarks: camera, identity, per-frame pose and weights, gaze, smoothing."""

import numpy as np

from .gaze import EyeModel, gaze_from_iris
from .layout import PointLayout, ibug68_layout, layout_for, mediapipe_layout
from .lighting import fit_lighting
from .linear import LandmarkModel
from .smoothing import smooth
from .solver import FitState, FrameSolver, SolverSettings
from .solver import warm_up as _warm_up_solver
from .tracker import QUALITY, FrameFits, TrackingError, TrackingOptions, TrackResult, track_clip


def warm_up() -> None:
    """Load the compiled kernels of the landmark fit, the gaze, the smoothing and the lighting now (numba's
    imports and cache reads, ~0.8 s once per process), so that a capture can do it during its landmark pass
    instead of on the fit's path. Stand-in inputs: each kernel loads for the argument types it will meet."""
    _warm_up_solver()
    eyes = EyeModel(np.zeros((2, 3)), 0.012, np.tile([0.0, 0.0, 1.0], (2, 1)))
    gaze_from_iris(np.zeros((1, 2, 2)), np.eye(3)[None], np.array([[0.0, 0.0, -0.5]]), eyes, 500.0, (0.0, 0.0))
    smooth(np.zeros((4, 1)), np.arange(4.0), 1.0)
    fit_lighting(np.zeros((1, 1, 3), np.uint8), np.zeros((1, 3)), np.eye(3)[None], -np.ones((1, 1, 3)))


__all__ = [
    "QUALITY",
    "FitState",
    "FrameFits",
    "FrameSolver",
    "LandmarkModel",
    "PointLayout",
    "SolverSettings",
    "TrackResult",
    "TrackingError",
    "TrackingOptions",
    "ibug68_layout",
    "layout_for",
    "mediapipe_layout",
    "track_clip",
    "warm_up",
]
