"""The ICT-FaceKit morphable face model: source files, compact cache, names and landmark correspondences."""

from .arkit import ARKIT_NAMES, arkit_to_ict, ict_to_arkit
from .cache import default_cache_dir, load_face_model
from .model import FaceModel
from .source import FaceModelSourceError

__all__ = [
    "ARKIT_NAMES",
    "FaceModel",
    "FaceModelSourceError",
    "arkit_to_ict",
    "default_cache_dir",
    "ict_to_arkit",
    "load_face_model",
]
