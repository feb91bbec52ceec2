"""Personal face models: personalized blendshapes and dynamic albedo from a video and its Capture."""

from .albedo import AlbedoOptions
from .build import (
    ModelingError,
    ModelingOptions,
    build_personal_model,
    fit_personal_albedo,
    fit_personal_shapes,
    personal_face_model,
    personalize,
    retrack,
    tracking_rms,
)
from .shape import ShapeOptions

__all__ = [
    "AlbedoOptions",
    "ModelingError",
    "ModelingOptions",
    "ShapeOptions",
    "build_personal_model",
    "fit_personal_albedo",
    "fit_personal_shapes",
    "personal_face_model",
    "personalize",
    "retrack",
    "tracking_rms",
]
