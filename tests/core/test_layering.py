"""core stays Blender-free and importable on its own."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_core_imports_no_bpy():
    """Import every core module in a fresh interpreter; bpy and mathutils must not be loaded."""
    code = (
        "import importlib, pkgutil, sys, core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'core.'):\n"
        "    if m.name != 'core.__main__':\n"
        "        importlib.import_module(m.name)\n"
        "bad = [n for n in ('bpy', 'mathutils', 'bmesh') if n in sys.modules]\n"
        "print(len(list(pkgutil.walk_packages(core.__path__, 'core.'))))\n"
        "sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout.split()[-1]) > 5


def test_no_bpy_in_core_sources():
    for path in (ROOT / "core").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "import bpy" not in text and "import mathutils" not in text, path


def test_cli_setup_reports_load_time():
    r = subprocess.run([sys.executable, "-m", "core", "setup"], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    assert "26719 vertices" in r.stdout and "load" in r.stdout
