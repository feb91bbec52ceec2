"""Headless Likeness: `blender -b --python tools/blender_batch.py -- --video V --out OUT.blend [options]`.

Also runs with the bpy module: `.venv/bin/python tools/blender_batch.py -- --video V --out OUT.blend`.
The checkout is imported as the package `likeness`, the way Blender imports the installed extension, so
addon/ and core/ keep their relative imports. Exit code 0 on success, 1 with a message on failure.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_package(name: str = "likeness"):
    """The repository root as a package (its __init__.py is the extension's)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> int:
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    load_package()
    from likeness.addon import headless

    return headless.main(argv)


if __name__ == "__main__":
    sys.exit(main())
