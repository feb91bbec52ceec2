"""The one table between ICT blendshape names and Apple's 52 ARKit names, both ways."""

from __future__ import annotations

import numpy as np

# Apple's ARKit blendshape locations, in Apple's documented (alphabetical-by-group) order.
ARKIT_NAMES: tuple[str, ...] = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft",
    "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
    "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight", "tongueOut",
)

# ICT splits these two ARKit shapes into halves; ARKit's value is the mean of the halves.
SPLIT = {"browInnerUp": ("browInnerUp_L", "browInnerUp_R"), "cheekPuff": ("cheekPuff_L", "cheekPuff_R")}
# ARKit shapes the ICT model has no shape for.
MISSING_IN_ICT = ("tongueOut",)


def ict_name_to_arkit(name: str) -> str:
    """browDown_L -> browDownLeft; browInnerUp_L -> browInnerUp (one half of a split shape)."""
    for arkit, halves in SPLIT.items():
        if name in halves:
            return arkit
    if name.endswith("_L"):
        return name[:-2] + "Left"
    if name.endswith("_R"):
        return name[:-2] + "Right"
    return name


def arkit_name_to_ict(name: str) -> tuple[str, ...]:
    """eyeBlinkLeft -> (eyeBlink_L,); browInnerUp -> both halves; tongueOut -> (); jawLeft stays jawLeft."""
    return _ARKIT_TO_ICT.get(name, ())


# The 53 ICT expression names (vertex_indices.json order); the inverse table is built from them so that
# names such as jawLeft or mouthRight, which end in Left/Right without being a side, stay whole.
ICT_NAMES: tuple[str, ...] = (
    "browDown_L", "browDown_R", "browInnerUp_L", "browInnerUp_R", "browOuterUp_L", "browOuterUp_R",
    "cheekPuff_L", "cheekPuff_R", "cheekSquint_L", "cheekSquint_R", "eyeBlink_L", "eyeBlink_R",
    "eyeLookDown_L", "eyeLookDown_R", "eyeLookIn_L", "eyeLookIn_R", "eyeLookOut_L", "eyeLookOut_R",
    "eyeLookUp_L", "eyeLookUp_R", "eyeSquint_L", "eyeSquint_R", "eyeWide_L", "eyeWide_R",
    "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose", "mouthDimple_L", "mouthDimple_R",
    "mouthFrown_L", "mouthFrown_R", "mouthFunnel", "mouthLeft", "mouthLowerDown_L", "mouthLowerDown_R",
    "mouthPress_L", "mouthPress_R", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthSmile_L", "mouthSmile_R", "mouthStretch_L", "mouthStretch_R",
    "mouthUpperUp_L", "mouthUpperUp_R", "noseSneer_L", "noseSneer_R",
)
_ARKIT_TO_ICT: dict[str, tuple[str, ...]] = {}
for _ict in ICT_NAMES:
    _ARKIT_TO_ICT.setdefault(ict_name_to_arkit(_ict), ())
    _ARKIT_TO_ICT[ict_name_to_arkit(_ict)] += (_ict,)


def ict_to_arkit_matrix(ict_names: tuple[str, ...] | list[str]) -> np.ndarray:
    """(52, len(ict_names)) matrix M with arkit_weights = ict_weights @ M.T (means for split shapes)."""
    index = {n: i for i, n in enumerate(ict_names)}
    m = np.zeros((len(ARKIT_NAMES), len(ict_names)), dtype=np.float32)
    for a, arkit in enumerate(ARKIT_NAMES):
        sources = [index[s] for s in arkit_name_to_ict(arkit) if s in index]
        for s in sources:
            m[a, s] = 1.0 / len(sources)
    return m


def ict_to_arkit(weights: np.ndarray, ict_names: tuple[str, ...] | list[str]) -> np.ndarray:
    """weights (..., ict shapes) -> (..., 52) in ARKIT_NAMES order; tongueOut is 0."""
    return np.asarray(weights, dtype=np.float32) @ ict_to_arkit_matrix(ict_names).T


def arkit_to_ict(weights: np.ndarray, ict_names: tuple[str, ...] | list[str]) -> np.ndarray:
    """weights (..., 52) in ARKIT_NAMES order -> (..., ict shapes); a split ARKit shape drives both halves."""
    weights = np.asarray(weights, dtype=np.float32)
    out = np.zeros(weights.shape[:-1] + (len(ict_names),), dtype=np.float32)
    index = {n: i for i, n in enumerate(ict_names)}
    for a, arkit in enumerate(ARKIT_NAMES):
        for s in arkit_name_to_ict(arkit):
            if s in index:
                out[..., index[s]] = weights[..., a]
    return out
