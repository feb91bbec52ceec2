"""Fitting the face model to landmarks: camera, identity, per-frame pose and weights, gaze, smoothing."""

from .layout import PointLayout, ibug68_layout, layout_for, mediapipe_layout
from .linear import LandmarkModel
from .solver import FitState, FrameSolver, SolverSettings
from .tracker import QUALITY, FrameFits, TrackingError, TrackingOptions, TrackResult, track_clip

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
]
