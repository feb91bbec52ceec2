"""Which point of the ICT surface each of MediaPipe's 478 landmarks is: a triangle and barycentric weights.

Saved beside the face-model cache as <cache folder>/mediapipe478.npz. Built at set-up by
core.synth.correspondence_fit.build_correspondence (it needs the renderer and the detector, a floor above this
one); this module holds the data type, the file, and the geometric pieces the build starts from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cache import current_cache_folder
from .model import FaceModel
from .source import FaceModelSourceError

FILE_NAME = "mediapipe478.npz"
FILE_VERSION = 1
N_POINTS = 478

# iBUG 68 points as MediaPipe face-mesh indices (the subset commonly used to compare the two schemes):
# jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, outer lips 48-59, inner lips 60-67.
MEDIAPIPE_TO_68 = np.array([
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
])
MEDIAPIPE_IRIS_RIGHT = np.arange(468, 473)  # the subject's right iris (centre first), at -x in ICT space
MEDIAPIPE_IRIS_LEFT = np.arange(473, 478)


@dataclass(frozen=True, eq=False)
class Correspondence:
    """triangle (478,) indices into FaceModel.triangles; bary (478, 3) float32 weights of its corners."""

    triangle: np.ndarray
    bary: np.ndarray
    model_sha256: str = ""
    method: str = ""  # how it was made, e.g. "geometric" or "refined on 48 renders"
    recipe: str = ""  # fingerprint of the code and settings that fitted it (core.synth.correspondence_fit)

    def corners(self, model: FaceModel) -> np.ndarray:
        """(478, 3) vertex ids of each point's triangle."""
        return model.triangles[self.triangle]

    def points(self, vertices: np.ndarray, model: FaceModel) -> np.ndarray:
        """vertices (..., V, 3) -> (..., 478, 3) surface points."""
        v = np.asarray(vertices)
        return np.einsum("...lcj,lc->...lj", v[..., self.corners(model), :], self.bary.astype(v.dtype))

    def weights_matrix(self, model: FaceModel, sparse: bool = True):
        """(478, V) matrix W with W @ vertices = points (scipy.sparse CSR, or dense)."""
        from scipy.sparse import csr_matrix

        rows = np.repeat(np.arange(len(self.triangle)), 3)
        w = csr_matrix((self.bary.ravel().astype(np.float64), (rows, self.corners(model).ravel())),
                       shape=(len(self.triangle), model.n_vertices))
        return w if sparse else w.toarray()

    def save(self, path: str | os.PathLike) -> None:
        path = Path(path)
        tmp = path.with_name(f".{path.stem}-{os.getpid()}.npz")
        np.savez(tmp, version=np.int64(FILE_VERSION), triangle=self.triangle.astype(np.int32),
                 bary=self.bary.astype(np.float32), model_sha256=np.str_(self.model_sha256),
                 method=np.str_(self.method), recipe=np.str_(self.recipe))
        os.replace(tmp, path)

    @staticmethod
    def load(path: str | os.PathLike) -> Correspondence:
        with np.load(path, allow_pickle=False) as f:
            if int(f["version"]) != FILE_VERSION:
                raise FaceModelSourceError(f"{path} is an old landmark correspondence: run `python -m core setup`")
            return Correspondence(f["triangle"].astype(np.int64), f["bary"].astype(np.float32),
                                  str(f["model_sha256"]), str(f["method"]),
                                  str(f["recipe"]) if "recipe" in f.files else "")


def correspondence_path(cache_dir: Path | None = None) -> Path:
    return current_cache_folder(cache_dir) / FILE_NAME


_LOADED: dict[Path, Correspondence] = {}


def load_correspondence(cache_dir: Path | None = None) -> Correspondence:
    """The MediaPipe-478 correspondence of the current face model (memoized)."""
    path = correspondence_path(cache_dir)
    if path in _LOADED:
        return _LOADED[path]
    if not path.exists():
        raise FaceModelSourceError(f"the MediaPipe landmark correspondence {path} is missing: run "
                                   "`python -m core setup` once")
    _LOADED[path] = Correspondence.load(path)
    return _LOADED[path]


def save_correspondence(corr: Correspondence, cache_dir: Path | None = None) -> Path:
    """Write it as the current face model's correspondence (what load_correspondence returns from now on)."""
    path = correspondence_path(cache_dir)
    corr.save(path)
    _LOADED.pop(path, None)
    return path


# ---------------------------------------------------------------------------------------------- geometry


def read_obj_vertices(path: str | os.PathLike) -> np.ndarray:
    """(N, 3) float64 `v` lines of an OBJ file."""
    rows = [line.split()[1:4] for line in Path(path).read_text().splitlines() if line.startswith("v ")]
    return np.array(rows, np.float64)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares scale s, rotation R, translation t with dst ~ s R src + t (Umeyama 1991)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u @ vt))
    r = u @ np.diag(d) @ vt
    s = float((sig * d).sum() / (a**2).sum(1).mean())
    return s, r, mu_d - s * r @ mu_s


def closest_points_on_triangles(points: np.ndarray, vertices: np.ndarray, triangles: np.ndarray,
                                candidates: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For points (N, 3): nearest triangle (N,) (index into `triangles`), its barycentrics (N, 3), the point.

    Exact point-triangle distance (Ericson, Real-Time Collision Detection 5.1.5) over the `candidates`
    triangles with the nearest centroids. Hand-written: scipy has no point-to-mesh query, and the mesh
    libraries that do are not among our dependencies.
    """
    from scipy.spatial import cKDTree

    points = np.asarray(points, np.float64)
    tri_v = np.asarray(vertices, np.float64)[triangles]  # (T, 3, 3)
    k = min(candidates, len(triangles))
    _, cand = cKDTree(tri_v.mean(1)).query(points, k=k)
    cand = cand.reshape(len(points), k)
    a, b, c = (tri_v[cand, i] for i in range(3))  # (N, k, 3)
    p = points[:, None, :]
    bary = _closest_bary(p, a, b, c)
    closest = bary[..., :1] * a + bary[..., 1:2] * b + bary[..., 2:] * c
    dist = ((closest - p) ** 2).sum(-1)
    best = np.argmin(np.where(np.isfinite(dist), dist, np.inf), axis=1)  # degenerate triangles give NaN
    rows = np.arange(len(points))
    return cand[rows, best], bary[rows, best], closest[rows, best]


def _closest_bary(p, a, b, c) -> np.ndarray:
    """Barycentrics (..., 3) of the point of triangle abc nearest to p (all (..., 3)), all regions at once."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    bp = p - b
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    cp = p - c
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = 1.0 / (va + vb + vc)
        v, w = vb * denom, vc * denom  # inside the face
        out = np.stack([1 - v - w, v, w], -1)
        t_ab = d1 / (d1 - d3)
        t_ac = d2 / (d2 - d6)
        t_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
    # Voronoi regions, checked from the most specific: vertices, then edges; later writes win.
    regions = [
        ((vc <= 0) & (d1 >= 0) & (d3 <= 0), lambda: np.stack([1 - t_ab, t_ab, 0 * t_ab], -1)),
        ((vb <= 0) & (d2 >= 0) & (d6 <= 0), lambda: np.stack([1 - t_ac, 0 * t_ac, t_ac], -1)),
        ((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), lambda: np.stack([0 * t_bc, 1 - t_bc, t_bc], -1)),
        ((d1 <= 0) & (d2 <= 0), lambda: _corner(d1, 0)),
        ((d3 >= 0) & (d4 <= d3), lambda: _corner(d1, 1)),
        ((d6 >= 0) & (d5 <= d6), lambda: _corner(d1, 2)),
    ]
    for mask, value in regions:
        if mask.any():
            out[mask] = value()[mask]
    return out


def _corner(like: np.ndarray, i: int) -> np.ndarray:
    out = np.zeros(like.shape + (3,))
    out[..., i] = 1.0
    return out


def surface_triangles(model: FaceModel, submesh: str) -> np.ndarray:
    """Indices into model.triangles of the triangles whose three corners lie in one submesh."""
    start, stop = model.submeshes[submesh]
    t = model.triangles
    return np.flatnonzero(((t >= start) & (t < stop)).all(axis=1))


def snap_to_surface(model: FaceModel, points: np.ndarray, vertices: np.ndarray | None = None) -> Correspondence:
    """Correspondence of 478 model-space points (metres) to their nearest surface points.

    Face points go onto the face skin, the ten iris points onto the matching iris (MediaPipe's right iris
    is the subject's right, at -x in ICT space).
    """
    vertices = model.neutral if vertices is None else vertices
    triangle = np.zeros(N_POINTS, np.int64)
    bary = np.zeros((N_POINTS, 3))
    groups = ((np.arange(468), "face"), (MEDIAPIPE_IRIS_RIGHT, "iris_right"), (MEDIAPIPE_IRIS_LEFT, "iris_left"))
    for index, submesh in groups:
        tris = surface_triangles(model, submesh)
        t, b, _ = closest_points_on_triangles(points[index], vertices, model.triangles[tris])
        triangle[index], bary[index] = tris[t], b
    return Correspondence(triangle, bary.astype(np.float32), model.source_sha256)


def geometric_correspondence(model: FaceModel, canonical_obj: str | os.PathLike) -> Correspondence:
    """Step one: MediaPipe's canonical mesh (face_model_with_iris.obj, cm) aligned to the ICT neutral by a
    similarity on the 51 inner iBUG points (brows, nose, eyes, mouth; not the jaw line, which the two
    schemes draw differently), then every point snapped to the nearest surface point."""
    canonical = read_obj_vertices(canonical_obj)
    if canonical.shape != (N_POINTS, 3):
        raise FaceModelSourceError(f"{canonical_obj} has {len(canonical)} vertices, expected {N_POINTS}")
    src = canonical[MEDIAPIPE_TO_68[17:]]
    dst = model.neutral[model.landmarks68[17:]].astype(np.float64)
    s, r, t = similarity_transform(src, dst)
    aligned = s * canonical @ r.T + t
    out = snap_to_surface(model, aligned)
    return Correspondence(out.triangle, out.bary, out.model_sha256, "geometric")
