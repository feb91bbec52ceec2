"""Fixtures for the Blender layer: bpy with a throw-away user folder, the checkout as package `likeness`."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
# Blender reads this once, when bpy is first imported: extensions, preferences and caches go here.
USER_RESOURCES = Path(tempfile.mkdtemp(prefix="likeness-blender-user-"))
os.environ["BLENDER_USER_RESOURCES"] = str(USER_RESOURCES)

bpy = pytest.importorskip("bpy")


def load_likeness():
    """The repository root imported the way Blender imports the extension (addon/ and core/ inside it)."""
    if "likeness" in sys.modules:
        return sys.modules["likeness"]
    spec = importlib.util.spec_from_file_location("likeness", ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["likeness"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def likeness():
    return load_likeness()


@pytest.fixture(scope="session")
def model(likeness):
    from likeness.core.facemodel import load_face_model
    from likeness.core.facemodel.source import FaceModelSourceError

    try:
        return load_face_model()
    except FaceModelSourceError:
        pytest.skip("the face-model cache is not set up (python -m core setup)")


@pytest.fixture
def empty_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context


def random_capture(likeness, names, frames: int = 12, untracked=(5,), size=(160, 160), focal=420.0,
                   seed: int = 0, start_frame: int = 0):
    """A valid Capture with random weights and a head ~0.6 m in front of the camera, facing it."""
    from likeness.core.io.capture import Capture

    rng = np.random.default_rng(seed)
    tracked = np.ones(frames, bool)
    tracked[list(untracked)] = False
    rotation = rng.normal(0, 4, (frames, 3))
    translation = np.column_stack([rng.normal(0, 0.005, frames), rng.normal(0, 0.005, frames),
                                   np.full(frames, -0.6)])
    return Capture(names=tuple(names), weights=rng.uniform(0, 0.6, (frames, len(names))), tracked=tracked,
                   rotation=rotation, translation=translation,
                   timestamps=(start_frame + np.arange(frames)) / 30.0, fps=30.0, image_size=size, focal=focal,
                   identity=rng.normal(0, 0.5, 100), frame_indices=start_frame + np.arange(frames))


@pytest.fixture
def make_capture(likeness):
    """make_capture(names, frames=12, untracked=(5,), ...) -> a random but valid Capture."""
    return lambda *args, **kwargs: random_capture(likeness, *args, **kwargs)
