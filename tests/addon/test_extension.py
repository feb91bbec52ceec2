"""The extension zip: built by tools/build_extension.py, installed by Blender's own installer (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLENDER_EXT = (ROOT / ".venv" / "lib" / "python3.11" / "site-packages" / "bpy" / "4.5" / "scripts" /
               "addons_core" / "bl_pkg" / "cli" / "blender_ext.py")

# Runs in a fresh interpreter with its own Blender user folder: installs the zip, then checks the add-on
# and that the bundled wheels import from the extension's site-packages (put first on sys.path).
CHILD = textwrap.dedent("""
    import json, sys, bpy
    zip_path, existing_cache = sys.argv[1], sys.argv[2]
    out = {"install": sorted(bpy.ops.extensions.package_install_files(
        filepath=zip_path, repo="user_default", enable_on_install=True))}
    jobs = sys.modules["bl_ext.user_default.likeness.addon.jobs"]
    out["panel"] = hasattr(bpy.types, "VIEW3D_PT_likeness")
    out["cache_dir"] = str(jobs.cache_dir())
    out["ready_before"] = jobs.face_model_ready()
    out["setup"] = sorted(bpy.ops.likeness.setup_face_model(directory=existing_cache))
    out["ready_after"] = jobs.face_model_ready()
    site = bpy.utils.user_resource("EXTENSIONS", path=".local/lib/python3.11/site-packages")
    sys.path.insert(0, site)
    for name in [m for m in sys.modules if m.split(".")[0] in ("cv2", "mediapipe", "scipy", "numba")]:
        del sys.modules[name]
    import cv2, mediapipe, numba, numpy, scipy.sparse
    out["from_extension"] = {m.__name__: m.__file__.startswith(site) for m in (cv2, mediapipe, numba, scipy)}
    mesh = mediapipe.solutions.face_mesh.FaceMesh(static_image_mode=True)
    out["facemesh"] = mesh.process(numpy.zeros((64, 64, 3), numpy.uint8)).multi_face_landmarks is None
    out["numba"] = numba.njit(lambda x: x + 1)(1) == 2
    import importlib, threadpoolctl  # the capture's modules import with the bundled wheels alone
    out["pipeline"] = hasattr(importlib.import_module("bl_ext.user_default.likeness.core.pipeline"), "capture_video")
    out["threadpoolctl"] = threadpoolctl.__file__.startswith(site)
    print("RESULT " + json.dumps(out))
""")


def linux_zip() -> Path:
    # Built from this checkout every time (a few seconds), never an older build left in dist/. The wheels come
    # from pip's index (PyPI, or the machine's own wheel folders where pip is set up so); only a machine where
    # pip reaches none skips.
    offline = ["--offline"] if (ROOT / "wheels" / "linux-x64").is_dir() else []
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "build_extension.py"), *offline, "--platform",
                        "linux-x64"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    if not offline and "pip download failed" in r.stderr:
        pytest.skip("pip could not download the extension's wheels (offline?): " + r.stderr.strip()[-300:])
    assert r.returncode == 0, r.stderr[-3000:]
    return sorted((ROOT / "dist").glob("likeness-*-linux_x64.zip"))[-1]


@pytest.mark.slow
def test_zip_validates_and_installs(likeness, tmp_path):
    from likeness.core.facemodel.cache import current_cache_folder

    try:
        existing_cache = current_cache_folder().parent
    except Exception:
        pytest.skip("the face-model cache is not set up")
    zip_path = linux_zip()
    r = subprocess.run([sys.executable, str(BLENDER_EXT), "validate", str(zip_path)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "Success" in r.stdout, r.stdout + r.stderr

    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"))
    env.pop("LIKENESS_CACHE_DIR", None)
    r = subprocess.run([sys.executable, "-c", CHILD, str(zip_path), str(existing_cache)], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    lines = [line for line in r.stdout.splitlines() if line.startswith("RESULT ")]
    assert r.returncode == 0 and lines, r.stdout[-3000:] + r.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["install"] == ["FINISHED"] and out["panel"]
    # Caches live in Blender's per-extension user folder, never inside the installed extension.
    assert out["cache_dir"].startswith(str(tmp_path / "user" / "extensions" / ".user" / "user_default"))
    assert not out["ready_before"]
    assert out["setup"] == ["FINISHED"] and out["ready_after"]
    assert out["from_extension"] == {"cv2": True, "mediapipe": True, "numba": True, "scipy": True}
    assert out["facemesh"] and out["numba"] and out["pipeline"] and out["threadpoolctl"]
