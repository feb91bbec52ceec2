"""Shared fixtures: the face model from the user cache, and paths into ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    """../shared, or skip where a checkout has none (tests that need real media use this)."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present")
    return SHARED


@pytest.fixture(scope="session")
def face_model():
    from core.facemodel import load_face_model

    return load_face_model()


@pytest.fixture(scope="session")
def ict_archive(shared) -> Path:
    path = shared / "ict-facekit" / "ICT-FaceKit-master.tar.xz"
    if not path.exists():
        pytest.skip("the ICT-FaceKit archive is not in ../shared")
    return path
