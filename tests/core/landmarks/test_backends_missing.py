"""A backend whose libraries are absent (torch inside Blender's extension) is a clear error, not a traceback."""

import builtins

import pytest

from core.landmarks import LandmarkBackendError, get_backend


def test_fan_without_torch_is_a_clear_error(monkeypatch):
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch.") or name == "face_alignment":
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real_import(name, *args, **kwargs)

    import sys

    for mod in [m for m in sys.modules if m == "core.landmarks.fan"]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(LandmarkBackendError, match="MediaPipe backend"):
        get_backend("fan")


def test_unknown_backend():
    with pytest.raises(LandmarkBackendError, match="unknown landmark backend"):
        get_backend("dlib")
