"""The compact face-model cache: converted once from the upstream source, loaded in milliseconds.

Layout: <cache>/ict-<sha16>/ holds one .npy per array (memory-mapped on load) and meta.json;
<cache>/current.json names the folder in use, so loading never has to hash the source again.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .model import FaceModel
from .source import ENV_VAR as ENV_SOURCE
from .source import FaceModelSourceError, read_source, resolve_source, source_checksum

CACHE_VERSION = 2
ENV_CACHE = "LIKENESS_CACHE_DIR"


def default_cache_dir() -> Path:
    """$LIKENESS_CACHE_DIR, else $XDG_CACHE_HOME/likeness, else ~/.cache/likeness (never the repository)."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "likeness"


def triangulate(polygon_vertices, polygon_uvs, polygon_sizes):
    """Fan-split quads (0,1,2)+(0,2,3).

    Returns (triangles (T,3) vertex ids, triangle uvs (T,3) uv ids, source polygon (T,), corners (T,3) loop ids).
    """
    starts = np.concatenate([[0], np.cumsum(polygon_sizes)[:-1]])
    tris, polys = [], []
    for k in (1, 2):  # second fan triangle only for quads
        sel = np.nonzero(polygon_sizes > k + 1)[0]
        s = starts[sel]
        tris.append(np.stack([s, s + k, s + k + 1], axis=1))
        polys.append(sel)
    corners = np.concatenate(tris)
    polygon = np.concatenate(polys)
    order = np.argsort(polygon, kind="stable")
    corners, polygon = corners[order], polygon[order]
    return (polygon_vertices[corners].astype(np.int32), polygon_uvs[corners].astype(np.int32),
            polygon.astype(np.int32), corners.astype(np.int32))


def build_cache(
    source: str | os.PathLike | None = None,
    cache_dir: Path | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Path:
    """Convert the source (explicit, $LIKENESS_ICT_SOURCE or downloaded) once; returns the cache folder."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    if source is None and not os.environ.get(ENV_SOURCE):
        try:  # nothing named: keep the cache already set up rather than download again
            folder = current_cache_folder(cache_dir)
            if _is_current(folder):
                return folder
        except FaceModelSourceError:
            pass
    path = resolve_source(source, cache_dir / "downloads")
    sha = source_checksum(path)
    folder = cache_dir / f"ict-{sha[:16]}"
    if not _is_current(folder):
        arrays = read_source(path, progress)
        tmp = cache_dir / f".tmp-{sha[:16]}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        tris, tri_uvs, tri_poly, tri_corners = triangulate(arrays["polygon_vertices"], arrays["polygon_uvs"],
                                                           arrays["polygon_sizes"])
        arrays.update(triangles=tris, triangle_uvs=tri_uvs, triangle_polygon=tri_poly, triangle_corners=tri_corners)
        regions = arrays.pop("regions")
        for name, value in arrays.items():
            np.save(tmp / f"{name}.npy", value)
        for name, value in regions.items():
            np.save(tmp / f"region.{name}.npy", value)
        meta = {"version": CACHE_VERSION, "source": str(path), "source_sha256": sha,
                "regions": sorted(regions), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    (cache_dir / "current.json").write_text(json.dumps({"folder": folder.name, "source_sha256": sha}))
    return folder


def _is_current(folder: Path) -> bool:
    try:
        return json.loads((folder / "meta.json").read_text())["version"] == CACHE_VERSION
    except (OSError, ValueError, KeyError):
        return False


def current_cache_folder(cache_dir: Path | None = None) -> Path:
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    pointer = cache_dir / "current.json"
    if not pointer.exists():
        raise FaceModelSourceError(
            f"the face-model cache is not set up in {cache_dir}: run `python -m core setup` "
            "(or tools/setup.sh) once, with LIKENESS_ICT_SOURCE set where there is no internet")
    return cache_dir / json.loads(pointer.read_text())["folder"]


_LOADED: dict[Path, FaceModel] = {}


def load_face_model(cache_dir: Path | None = None) -> FaceModel:
    """The model from the cache (memory-mapped, read-only); memoized per cache folder."""
    folder = current_cache_folder(cache_dir)
    if folder in _LOADED:
        return _LOADED[folder]
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("version") != CACHE_VERSION:
        raise FaceModelSourceError(f"{folder} is an old cache version: run `python -m core setup` again")

    def arr(name):
        return np.load(folder / f"{name}.npy", mmap_mode="r")

    model = FaceModel(
        neutral=np.array(arr("neutral")),
        expression_names=tuple(str(n) for n in arr("expression_names")),
        expressions=arr("expressions"),
        identity=arr("identity"),
        extra_names=tuple(str(n) for n in arr("extra_names")),
        extras=arr("extras"),
        polygon_vertices=np.array(arr("polygon_vertices")),
        polygon_uvs=np.array(arr("polygon_uvs")),
        polygon_sizes=np.array(arr("polygon_sizes")),
        uvs=np.array(arr("uvs")),
        triangles=np.array(arr("triangles")),
        triangle_uvs=np.array(arr("triangle_uvs")),
        triangle_polygon=np.array(arr("triangle_polygon")),
        triangle_corners=np.array(arr("triangle_corners")),
        regions={name: np.array(arr(f"region.{name}")) for name in meta["regions"]},
        source_sha256=meta["source_sha256"],
    )
    _LOADED[folder] = model
    return model
