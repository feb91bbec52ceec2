"""Build the installable Likeness extension: dependency wheels per platform, then one zip per platform.

    .venv/bin/python tools/build_extension.py [--platform linux-x64 ...] [--offline]

1. `pip download --only-binary=:all: --no-deps` each runtime dependency Blender does not ship (Blender 4.2-4.5
   bundle Python 3.11 with numpy 1.26 and requests) for each platform into wheels/<platform>/; pure-Python
   wheels and others that several platforms share (macOS universal2) are kept once, in wheels/shared/.
   Versions are the pins of requirements.txt.
2. Write the manifest's `platforms` and `wheels` lists (all platforms; sorted, so unchanged pins leave the
   file unchanged).
3. Blender's own tool builds one zip per platform (`blender_ext.py build --split-platforms`: each zip keeps
   its platform's wheels and says so in its manifest) into dist/, and validates each zip.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "blender_manifest.toml"
WHEELS = ROOT / "wheels"
DIST = ROOT / "dist"
BLENDER_EXT = (ROOT / ".venv" / "lib" / "python3.11" / "site-packages" / "bpy" / "4.5" / "scripts" /
               "addons_core" / "bl_pkg" / "cli" / "blender_ext.py")
PYTHON = "3.11"  # Blender 4.2 to 4.5

# Blender platform -> pip --platform tags, newest first. pip does not widen an explicit tag to the older
# manylinux / macOS versions it would accept at install, so every accepted tag is listed.
_MANYLINUX = [f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1)] + [
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
# macOS 13 is the floor for the arm64 build: opencv-contrib-python 4.11's arm64 wheel needs it.
_MACOS = [f"macosx_{major}_0" for major in (13, 12, 11)] + [f"macosx_10_{minor}" for minor in range(15, 8, -1)]
PLATFORMS: dict[str, list[str]] = {
    "linux-x64": _MANYLINUX,  # Blender 4.5 itself needs glibc 2.28
    "windows-x64": ["win_amd64"],
    # universal2 first on both Macs: a package then has the same wheel on both, never a universal2 wheel on
    # one and a thin one on the other, which would put two copies of it into one zip (Blender's split keeps
    # universal2 wheels for both).
    "macos-arm64": [f"{v}_universal2" for v in _MACOS] + [f"{v}_arm64" for v in _MACOS],
    "macos-x64": [f"{v}_universal2" for v in _MACOS] + [f"{v}_{a}" for v in _MACOS for a in ("x86_64", "intel")],
}

# What core imports inside Blender, and what those import when loaded (checked by importing mediapipe's
# FaceMesh with everything else blocked): mediapipe's solutions import matplotlib.pyplot; jax, jaxlib and
# sounddevice, also in mediapipe's metadata, are never imported on the capture path and are left out.
# torch and face-alignment (the optional FAN backend) are left out: 200+ MB per platform.
PACKAGES = (
    "mediapipe", "opencv-contrib-python", "protobuf", "absl-py", "attrs", "flatbuffers",
    "matplotlib", "contourpy", "cycler", "fonttools", "kiwisolver", "packaging", "pillow", "pyparsing",
    "python-dateutil", "tzdata",
    "scipy", "numba", "llvmlite", "threadpoolctl",
)


def pins() -> dict[str, str]:
    """name -> version from requirements.txt (names normalised: lower case, '_' -> '-')."""
    out = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", line)
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def download(platform: str, requirements: list[str]) -> None:
    """The platform's wheels into wheels/<platform>/."""
    folder = WHEELS / platform
    folder.mkdir(parents=True, exist_ok=True)
    tags = [arg for tag in PLATFORMS[platform] for arg in ("--platform", tag)]
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--only-binary=:all:",
           "--no-deps", *tags, "--python-version", PYTHON, "--implementation", "cp", "-d", str(folder),
           *requirements]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{platform}: pip download failed:\n{r.stderr.strip()[-3000:]}")


def share() -> None:
    """Move wheels that more than one platform uses (pure, universal2) into wheels/shared/, once."""
    shared = WHEELS / "shared"
    shared.mkdir(parents=True, exist_ok=True)
    folders = [WHEELS / p for p in PLATFORMS if (WHEELS / p).is_dir()]
    for folder in folders:
        for wheel in list(folder.glob("*.whl")):
            others = [f / wheel.name for f in folders if f != folder and (f / wheel.name).exists()]
            if wheel.name.endswith("-none-any.whl") or others:
                shutil.move(str(wheel), shared / wheel.name)
                for other in others:
                    other.unlink()


def collect(platform: str, requirements: list[str]) -> list[Path]:
    """The wheels of `requirements` for `platform` on disk, exactly one per requirement (else an error)."""
    folders = (WHEELS / platform, WHEELS / "shared")
    found = []
    for req in requirements:
        name, version = req.split("==")
        stem = re.sub(r"[-_.]+", "_", name).lower()
        matches = [w for d in folders for w in d.glob(f"*-{version}-*.whl")
                   if w.name.lower().startswith(f"{stem}-{version}-") and _fits(platform, w.name)]
        if len(matches) != 1:
            raise RuntimeError(f"{platform}: {len(matches)} wheels for {req} in wheels/ (want 1): "
                               f"{[m.name for m in matches] or 'run without --offline'}")
        found.append(matches[0])
    return found


def _fits(platform: str, name: str) -> bool:
    tag = name[:-4].split("-")[-1]
    if tag == "any":
        return True
    return any(t in tag.split(".") for t in PLATFORMS[platform])


def write_manifest(platforms: list[str], wheels: list[Path]) -> None:
    text = MANIFEST.read_text(encoding="utf-8")
    rel = sorted({"./" + w.relative_to(ROOT).as_posix() for w in wheels})
    wheel_list = "wheels = [\n" + "".join(f'  "{w}",\n' for w in rel) + "]"
    platform_list = "platforms = [" + ", ".join(f'"{p}"' for p in platforms) + "]"
    text = re.sub(r"(?ms)^wheels = \[.*?\]", lambda _: wheel_list, text, count=1)
    text = re.sub(r"(?m)^platforms = \[.*?\]", lambda _: platform_list, text, count=1)
    MANIFEST.write_text(text, encoding="utf-8")


def blender_ext(*args: str) -> str:
    r = subprocess.run([sys.executable, str(BLENDER_EXT), *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"blender_ext {' '.join(args)} failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
    return r.stdout


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--platform", action="append", choices=sorted(PLATFORMS),
                   help="build for this platform (repeatable; default: all)")
    p.add_argument("--offline", action="store_true", help="use the wheels already in wheels/, download nothing")
    args = p.parse_args(argv)
    if not BLENDER_EXT.exists():
        print(f"build_extension: Blender's extension tool is missing ({BLENDER_EXT}); run tools/setup.sh",
              file=sys.stderr)
        return 1
    versions = pins()
    missing = [name for name in PACKAGES if name not in versions]
    if missing:
        print(f"build_extension: requirements.txt does not pin {', '.join(missing)}", file=sys.stderr)
        return 1
    requirements = [f"{name}=={versions[name]}" for name in PACKAGES]

    platforms = args.platform or list(PLATFORMS)
    for platform in [] if args.offline else platforms:
        try:
            download(platform, requirements)
        except RuntimeError as e:
            print(f"build_extension: {e}", file=sys.stderr)
    share()
    built_for, wheels = [], []
    for platform in platforms:
        try:
            found = collect(platform, requirements)
        except RuntimeError as e:
            print(f"build_extension: skipping {e}", file=sys.stderr)
            continue
        built_for.append(platform)
        wheels += found
        print(f"{platform}: {len(found)} wheels, {sum(w.stat().st_size for w in found) / 1e6:.0f} MB")
    if not built_for:
        print("build_extension: no platform has all its wheels", file=sys.stderr)
        return 1
    # A partial build (some platforms) writes the manifest only for as long as Blender's tool reads it.
    original = MANIFEST.read_text(encoding="utf-8")
    write_manifest(built_for, wheels)
    try:
        DIST.mkdir(exist_ok=True)
        for platform in built_for:
            for old in DIST.glob(f"likeness-*-{platform.replace('-', '_')}.zip"):
                old.unlink()
        blender_ext("build", "--source-dir", str(ROOT), "--output-dir", str(DIST), "--split-platforms")
    finally:
        if set(built_for) != set(PLATFORMS):
            MANIFEST.write_text(original, encoding="utf-8")
    for platform in built_for:
        zips = list(DIST.glob(f"likeness-*-{platform.replace('-', '_')}.zip"))
        if len(zips) != 1:
            print(f"build_extension: no zip for {platform} in {DIST}", file=sys.stderr)
            return 1
        blender_ext("validate", str(zips[0]))
        with zipfile.ZipFile(zips[0]) as z:
            names = [Path(n).name.split("-")[0].lower() for n in z.namelist() if n.endswith(".whl")]
        if sorted(names) != sorted(re.sub(r"[-_.]+", "_", p).lower() for p in PACKAGES):
            print(f"build_extension: {zips[0].name} holds the wrong wheels: {sorted(names)}", file=sys.stderr)
            return 1
        print(f"{platform}: {zips[0].relative_to(ROOT)} {zips[0].stat().st_size / 1e6:.1f} MB (validated)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
