"""Fixtures for the modeling tests: one small synthetic personal clip and a Capture built from its truth."""

from __future__ import annotations

import numpy as np
import pytest


def truth_capture(truth: dict, landmarks: str = "landmarks_mp"):
    """A Capture holding the synthetic clip's true weights, pose, identity, lighting and landmarks."""
    from core.io.capture import Capture

    n = len(truth["weights"])
    lm = truth.get(landmarks, truth["landmarks68"])
    return Capture(names=tuple(str(x) for x in truth["names"]), weights=truth["weights"], tracked=np.ones(n, bool),
                   rotation=truth["rotation"], translation=truth["translation"], timestamps=truth["timestamps"],
                   fps=float(truth["fps"]), image_size=tuple(int(x) for x in truth["image_size"]),
                   focal=float(truth["focal"]), identity=truth["identity"], gaze=truth["gaze"],
                   lighting=truth["lighting"], landmarks=lm)


@pytest.fixture(scope="session")
def small_clip(tmp_path_factory):
    """(video path, truth dict): 24 frames, 192x192, a personal subject (seed 7)."""
    from core.synth import generate

    out = tmp_path_factory.mktemp("clip")
    truth = generate(7, 24, (192, 192), personal=True, out_dir=out, albedo_size=512)
    return out / "video.mp4", truth


@pytest.fixture(scope="session")
def make_capture():
    """truth_capture, for tests (importlib mode cannot import this conftest as a module)."""
    return truth_capture
