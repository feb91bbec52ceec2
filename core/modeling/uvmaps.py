"""Correction maps over the face's UV tile: vertex UVs, bilinear sampling, per-shape masks, map <-> vertices.

The maps cover UV tile 0 of the ICT layout (the face, 9409 vertices), x = u and row 0 at v = 1 (image
convention, as the albedo atlas), texel centres at (i + 0.5) / R. Only face vertices carry corrections.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.sparse as sp


def face_vertex_count(model) -> int:
    return model.submeshes["face"][1]


@lru_cache(maxsize=4)
def face_uvs(model) -> np.ndarray:
    """(F, 2) tile-0 UV of each face vertex (F = 9409); seam vertices take their tile-0 corner."""
    n = face_vertex_count(model)
    pv, pu = np.asarray(model.polygon_vertices), np.asarray(model.polygon_uvs)
    uv = np.asarray(model.uvs)[pu]
    keep = (pv < n) & (uv[:, 0] < 1.0) & (pu >= 0)
    out = np.full((n, 2), np.nan, np.float64)
    out[pv[keep]] = uv[keep]
    if np.isnan(out).any():
        raise ValueError("some face vertices have no UV in tile 0; not the ICT layout")
    out.flags.writeable = False
    return out


def bilinear_matrix(uv: np.ndarray, size: int) -> sp.csr_matrix:
    """(N, size*size) sparse matrix: row i samples a (size, size) map bilinearly at uv[i] (clamped)."""
    uv = np.asarray(uv, np.float64)
    x = np.clip(uv[:, 0] * size - 0.5, 0, size - 1)
    y = np.clip((1.0 - uv[:, 1]) * size - 0.5, 0, size - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), size - 2)
    y0 = np.minimum(np.floor(y).astype(np.int64), size - 2)
    fx, fy = x - x0, y - y0
    rows = np.repeat(np.arange(len(uv)), 4)
    cols = np.stack([y0 * size + x0, y0 * size + x0 + 1, (y0 + 1) * size + x0, (y0 + 1) * size + x0 + 1], 1)
    vals = np.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], 1)
    return sp.csr_matrix((vals.ravel(), (rows, cols.ravel())), shape=(len(uv), size * size))


def sample_maps(maps: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """maps (..., R, R, C) -> (..., N, C) bilinear samples at uv (N, 2)."""
    maps = np.asarray(maps)
    r, c = maps.shape[-3], maps.shape[-1]
    lead = maps.shape[:-3]
    b = bilinear_matrix(uv, r)
    flat = np.moveaxis(maps.reshape(-1, r * r, c), 1, 0).reshape(r * r, -1)
    out = np.asarray(b @ flat).reshape(len(uv), -1, c)
    return np.moveaxis(out, 0, 1).reshape(*lead, len(uv), c).astype(maps.dtype, copy=False)


def vertices_to_maps(model, values: np.ndarray, size: int, iterations: int = 0) -> np.ndarray:
    """Least-squares maps whose samples at the face vertices best match values (..., F, C) -> (..., R, R, C).

    The inverse of sampling (used to put per-vertex truths or fits into map form): a small ridge on a
    map Laplacian makes texels between vertices smooth and unseen texels zero-ish.
    """
    from scipy.sparse.linalg import factorized

    values = np.asarray(values, np.float64)
    lead, (f, c) = values.shape[:-2], values.shape[-2:]
    b = bilinear_matrix(face_uvs(model), size)
    lap = grid_laplacian(size)
    a = (b.T @ b + 1e-3 * (lap.T @ lap) + 1e-6 * sp.identity(size * size)).tocsc()
    solve = factorized(a)
    rhs = b.T @ np.moveaxis(values.reshape(-1, f, c), 1, 0).reshape(f, -1)
    out = np.stack([solve(rhs[:, j]) for j in range(rhs.shape[1])], 1)
    return np.moveaxis(out.reshape(size * size, -1, c), 1, 0).reshape(*lead, size, size, c).astype(np.float32)


@lru_cache(maxsize=4)
def grid_laplacian(size: int) -> sp.csr_matrix:
    """(R*R, R*R) 4-neighbour graph Laplacian of a size x size grid (Neumann border)."""
    idx = np.arange(size * size).reshape(size, size)
    pairs = [np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()]), np.stack([idx[:-1].ravel(), idx[1:].ravel()])]
    i, j = np.concatenate(pairs, axis=1)
    adj = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(size * size, size * size))
    adj = (adj + adj.T).tocsr()
    return (sp.diags(np.asarray(adj.sum(1)).ravel()) - adj).tocsr()


@lru_cache(maxsize=4)
def face_adjacency(model) -> sp.csr_matrix:
    """(F, F) 0/1 vertex adjacency of the face sub-mesh."""
    n = face_vertex_count(model)
    t = np.asarray(model.triangles)
    t = t[(t < n).all(1)]
    i = np.concatenate([t[:, 0], t[:, 1], t[:, 2]])
    j = np.concatenate([t[:, 1], t[:, 2], t[:, 0]])
    adj = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    adj = ((adj + adj.T) > 0).astype(np.float64).tocsr()
    return adj


@lru_cache(maxsize=4)
def face_border_falloff(model, rings: int = 6) -> np.ndarray:
    """(F,) 0 on face vertices that touch the back of the head and neck, rising to 1 over `rings` edge rings.

    Corrections live on the face sub-mesh only; this keeps its outer border where the head joins it still
    (the rims of the eyes and the mouth, joined to the sockets, stay free: lids and lips move there).
    """
    n = face_vertex_count(model)
    a, b = model.submeshes["head_and_neck"]
    t = np.asarray(model.triangles)
    mixed = t[(t < n).any(1) & ((t >= a) & (t < b)).any(1)]
    border = np.zeros(n, bool)
    border[mixed[mixed < n]] = True
    adj = face_adjacency(model)
    dist = np.where(border, 0, rings).astype(np.float64)
    reached = border.copy()
    for r in range(1, rings):
        reached_next = reached | (adj @ reached.astype(np.float64) > 0)
        dist[reached_next & ~reached] = r
        reached = reached_next
    out = dist / rings
    out.flags.writeable = False
    return out


@lru_cache(maxsize=4)
def rim_vertices(model, rings: int = 2) -> np.ndarray:
    """(F,) bool: face vertices within `rings` edges of the eye and mouth openings (where the face meets the
    sockets): there the colour a camera sees changes with the slightest misfit (teeth, eyeball, lashes)."""
    n = face_vertex_count(model)
    inner = np.zeros(model.n_vertices, bool)
    for name in ("mouth_socket", "eye_socket_left", "eye_socket_right"):
        a, b = model.submeshes[name]
        inner[a:b] = True
    t = np.asarray(model.triangles)
    touching = t[inner[t].any(1) & (t < n).any(1)]
    near = np.zeros(n, bool)
    near[touching[touching < n]] = True
    adj = face_adjacency(model)
    for _ in range(rings):
        near |= adj @ near.astype(np.float64) > 0
    # The lips roll far inwards before the socket: also everything within 3 mm of the inner lip line.
    v = np.asarray(model.neutral[:n], np.float64)
    line = np.asarray(model.neutral)[model.landmarks68[60:68]].astype(np.float64)
    seg_a, seg_b = line, np.roll(line, -1, axis=0)
    dist = np.full(n, np.inf)
    for a_, b_ in zip(seg_a, seg_b):
        ab = b_ - a_
        t = np.clip((v - a_) @ ab / max(ab @ ab, 1e-12), 0, 1)
        dist = np.minimum(dist, np.linalg.norm(v - (a_ + t[:, None] * ab), axis=1))
    near |= dist < 0.003
    near.flags.writeable = False
    return near


@lru_cache(maxsize=4)
def expression_masks(model, low: float = 0.02, high: float = 0.15, dilate: int = 3, smooth: int = 3) -> np.ndarray:
    """(53, F) in [0, 1]: where each generic shape moves the face skin (delta magnitude, dilated, smoothed).

    Below `low` times the shape's largest face displacement (and below 0.1 mm: the upstream files'
    rounding noise) the skin counts as still, above `high` as moving. Zero there keeps each correction
    inside its shape's own region, so weights keep their meaning.
    """
    n = face_vertex_count(model)
    mag = np.linalg.norm(np.asarray(model.expressions)[:, :n], axis=2)  # (53, F)
    peak = np.maximum(mag.max(1, keepdims=True), 1e-9)
    lo = np.maximum(low * peak, 1e-4)
    m = np.clip((mag - lo) / np.maximum(high * peak - lo, 1e-9), 0.0, 1.0)
    adj = face_adjacency(model)
    for _ in range(dilate):
        # graph dilation: max over neighbours
        m = np.maximum(m, _neighbour_max(adj, m))
    deg = np.asarray(adj.sum(1)).ravel()
    for _ in range(smooth):
        m = 0.5 * m + 0.5 * (adj @ m.T).T / np.maximum(deg, 1)
    m = m * face_border_falloff(model)[None]
    out = np.clip(m, 0, 1).astype(np.float32)
    out.flags.writeable = False
    return out


def _neighbour_max(adj: sp.csr_matrix, values: np.ndarray) -> np.ndarray:
    """(S, F) the largest value among each vertex's neighbours (the vertex itself where it has none)."""
    indptr, indices = adj.indptr, adj.indices
    has = np.diff(indptr) > 0
    out = values.copy()
    gathered = values[:, indices]  # (S, nnz), grouped by row
    out[:, has] = np.maximum.reduceat(gathered, indptr[:-1][has], axis=1)
    return out


def corrections_from_maps(model, maps: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
    """maps (S, R, R, 3) -> (S, V, 3) per-vertex corrections: sampled at face UVs, masked, zero off the face."""
    n = face_vertex_count(model)
    values = sample_maps(maps, face_uvs(model))  # (S, F, 3)
    if masks is not None:
        values = values * masks[..., None]
    out = np.zeros((maps.shape[0], model.n_vertices, 3), np.float32)
    out[:, :n] = values
    return out
