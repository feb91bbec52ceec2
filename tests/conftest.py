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


@pytest.fixture
def cache_without_correspondence(tmp_path) -> Path:
    """A face-model cache folder like the user's, its files linked, but with no MediaPipe correspondence (what
    a cache converted before the set-up fitted one, or whose fit was cancelled, looks like)."""
    from core.facemodel.cache import current_cache_folder

    source = current_cache_folder()
    cache = tmp_path / "cache"
    folder = cache / source.name
    folder.mkdir(parents=True)
    for f in source.iterdir():
        if f.name != "mediapipe478.npz":
            (folder / f.name).symlink_to(f)
    (cache / "current.json").write_text((source.parent / "current.json").read_text())
    return cache
