"""Reading the upstream ICT-FaceKit files from a folder, a .zip or a .tar.xz, streamed (never unpacked)."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

UPSTREAM_COMMIT = "da5f95a607f5e6b37755b38d3385d7f2853732e5"
UPSTREAM_URL = f"https://github.com/ICT-VGL/ICT-FaceKit/archive/{UPSTREAM_COMMIT}.zip"
ENV_VAR = "LIKENESS_ICT_SOURCE"
N_VERTICES = 26719
N_IDENTITIES = 100


class FaceModelSourceError(RuntimeError):
    """The ICT-FaceKit source is missing or not what it should be; the message says what to do."""


HOW_TO = (
    f"Set {ENV_VAR} to a local copy of the ICT-FaceKit repository (commit {UPSTREAM_COMMIT[:12]}): "
    "its folder (with FaceXModel/*.obj and FaceXModel/vertex_indices.json), or the archive GitHub "
    "serves (.zip) or a .tar.xz of it, e.g. "
    f"export {ENV_VAR}=/path/to/ICT-FaceKit-master.tar.xz"
)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def source_checksum(path: Path) -> str:
    """sha256 of an archive, or of the model files of a folder (names and bytes, in sorted order)."""
    if path.is_file():
        return file_sha256(path)
    h = hashlib.sha256()
    for f in sorted((path / "FaceXModel").glob("*")):
        if f.suffix in (".obj", ".json"):
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def _members(path: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(name inside FaceXModel/, reader) for each model file of the source, streamed in archive order."""
    if path.is_dir():
        folder = path / "FaceXModel"
        if not folder.is_dir():
            raise FaceModelSourceError(f"{path} has no FaceXModel folder, so it is not ICT-FaceKit. {HOW_TO}")
        for f in sorted(folder.iterdir()):
            yield f.name, f.read_bytes
        return
    name = path.name.lower()
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(path) as z:
                for info in z.infolist():
                    parts = info.filename.split("/")
                    if len(parts) >= 2 and parts[-2] == "FaceXModel" and parts[-1]:
                        yield parts[-1], lambda info=info: z.read(info)
        elif name.endswith((".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar")):
            # Stream mode: one pass over the compressed data, nothing written to disk.
            with tarfile.open(path, mode="r|*") as t:
                for info in t:
                    parts = info.name.split("/")
                    if info.isfile() and len(parts) >= 2 and parts[-2] == "FaceXModel":
                        data = t.extractfile(info).read()
                        yield parts[-1], lambda data=data: data
        else:
            raise FaceModelSourceError(f"{path}: not a folder, .zip or .tar.xz. {HOW_TO}")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
        if isinstance(e, FaceModelSourceError):
            raise
        raise FaceModelSourceError(f"{path}: corrupt or unreadable archive ({e}). {HOW_TO}") from e
    except Exception as e:  # lzma.LZMAError and zlib.error have no common base worth naming
        if isinstance(e, FaceModelSourceError):
            raise
        raise FaceModelSourceError(f"{path}: corrupt or unreadable archive ({e}). {HOW_TO}") from e


def parse_obj_vertices(data: bytes) -> np.ndarray:
    """(V, 3) float32 from the `v x y z` lines of an OBJ, fast (one split, no per-line Python floats)."""
    lines = [line[2:] for line in data.split(b"\n") if line.startswith(b"v ")]
    return np.array(b" ".join(lines).split(), dtype=np.float32).reshape(-1, 3)


def parse_obj_topology(data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(uvs (U,2), corner vertex indices (loops,), corner uv indices (loops,), polygon sizes (P,))."""
    uvs, corner_v, corner_t, sizes = [], [], [], []
    for line in data.split(b"\n"):
        if line.startswith(b"vt "):
            uvs.append(line[3:])
        elif line.startswith(b"f "):
            corners = line.split()[1:]
            sizes.append(len(corners))
            for c in corners:
                v, _, rest = c.partition(b"/")
                t = rest.partition(b"/")[0]
                corner_v.append(int(v) - 1)
                corner_t.append(int(t) - 1 if t else -1)
    uv = np.array(b" ".join(uvs).split(), dtype=np.float32).reshape(-1, 2)[:, :2]
    return uv, np.array(corner_v, np.int32), np.array(corner_t, np.int32), np.array(sizes, np.int32)


def read_source(path: Path, progress: Callable[[float, str], None] | None = None) -> dict:
    """Everything the cache needs from an upstream source, as arrays in metres."""
    neutral_data, shapes, regions = None, {}, None
    count = 0
    for name, read in _members(path):
        if name.endswith(".obj"):
            data = read()
            if name == "generic_neutral_mesh.obj":
                neutral_data = data
            shapes[name[:-4]] = parse_obj_vertices(data) if name != "generic_neutral_mesh.obj" else None
            count += 1
            if progress:
                progress(count / 160.0, f"reading {name}")
        elif name == "vertex_indices.json":
            regions = json.loads(read())
    if neutral_data is None or regions is None:
        missing = "generic_neutral_mesh.obj" if neutral_data is None else "vertex_indices.json"
        raise FaceModelSourceError(f"{path}: FaceXModel/{missing} is missing. {HOW_TO}")
    neutral = parse_obj_vertices(neutral_data)
    if neutral.shape[0] != N_VERTICES:
        raise FaceModelSourceError(f"{path}: the neutral mesh has {neutral.shape[0]} vertices, not {N_VERTICES}")
    uvs, corner_v, corner_t, sizes = parse_obj_topology(neutral_data)

    expression_names = tuple(regions["expressions"])
    identity_names = [f"identity{i:03d}" for i in range(N_IDENTITIES)]
    missing = [n for n in (*expression_names, *identity_names) if n not in shapes]
    if missing:
        raise FaceModelSourceError(f"{path}: {len(missing)} shape files missing (first: {missing[0]}.obj)")
    for n, v in shapes.items():
        if v is not None and v.shape != neutral.shape:
            raise FaceModelSourceError(f"{path}: {n}.obj has {v.shape[0]} vertices, not {N_VERTICES}")
    extra_names = tuple(sorted(n for n in shapes if n not in expression_names and n not in identity_names
                               and n != "generic_neutral_mesh"))
    scale = np.float32(0.01)  # upstream is in centimetres; core works in metres

    def deltas(names):
        return np.stack([(shapes[n] - neutral) * scale for n in names]) if names else np.zeros((0, N_VERTICES, 3))

    return {
        "neutral": neutral * scale,
        "expression_names": np.array(expression_names),
        "expressions": deltas(expression_names).astype(np.float32),
        "identity": deltas(identity_names).astype(np.float32),
        "extra_names": np.array(extra_names),
        "extras": deltas(extra_names).astype(np.float32),
        "uvs": uvs,
        "polygon_vertices": corner_v,
        "polygon_uvs": corner_t,
        "polygon_sizes": sizes,
        "regions": {k: np.asarray(v, dtype=np.int64) for k, v in regions.items()
                    if isinstance(v, list) and all(isinstance(x, int) for x in v)},
    }


def download_upstream(dest_dir: Path, url: str = UPSTREAM_URL, timeout: float = 60.0) -> Path:
    """Fetch the upstream archive at the pinned commit into dest_dir and check it reads as ICT-FaceKit."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"ICT-FaceKit-{UPSTREAM_COMMIT[:12]}.zip"
    if not dest.exists():
        part = dest.with_suffix(".part")
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r, open(part, "wb") as f:
                while block := r.read(1 << 20):
                    f.write(block)
        except OSError as e:
            part.unlink(missing_ok=True)
            raise FaceModelSourceError(f"could not download ICT-FaceKit from {url} ({e}). {HOW_TO}") from e
        os.replace(part, dest)
    # The check: the archive must hold the neutral mesh and the region file where upstream has them.
    try:
        with zipfile.ZipFile(dest) as z:
            names = {n.split("/", 1)[-1] for n in z.namelist()}
    except zipfile.BadZipFile as e:
        dest.unlink(missing_ok=True)
        raise FaceModelSourceError(f"the download from {url} is not a zip archive. {HOW_TO}") from e
    if not {"FaceXModel/generic_neutral_mesh.obj", "FaceXModel/vertex_indices.json"} <= names:
        dest.unlink(missing_ok=True)
        raise FaceModelSourceError(f"the download from {url} is not ICT-FaceKit. {HOW_TO}")
    return dest


def resolve_source(explicit: str | os.PathLike | None, download_dir: Path, allow_download: bool = True) -> Path:
    """The source to convert: an explicit path, else $LIKENESS_ICT_SOURCE, else a download."""
    value = explicit if explicit is not None else os.environ.get(ENV_VAR)
    if value:
        path = Path(value).expanduser()
        if not path.exists():
            raise FaceModelSourceError(f"ICT-FaceKit source {path} does not exist. {HOW_TO}")
        return path
    if not allow_download:
        raise FaceModelSourceError(f"no ICT-FaceKit source given. {HOW_TO}")
    return download_upstream(download_dir)
