"""A stand-in landmark model for the solver tests: random face vertices in place of the detector's points."""

from __future__ import annotations

import numpy as np
import pytest

from core.tracking.linear import LandmarkModel


@pytest.fixture(scope="session")
def stand_in(face_model) -> LandmarkModel:
    """478 face vertices standing in for MediaPipe's points (no correspondence file needed): the model's
    68 landmarks first (so points 36 and 45 are the outer eye corners), then random face vertices."""
    rng = np.random.default_rng(7)
    others = np.setdiff1d(np.arange(face_model.submeshes["narrow_face"][1]), face_model.landmarks68)
    index = np.r_[face_model.landmarks68, rng.choice(others, 478 - 68, replace=False)]
    return LandmarkModel.from_vertices(face_model, index)
