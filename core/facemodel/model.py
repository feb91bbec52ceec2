"""FaceModel: the ICT-FaceKit linear model as one small class (metres, right-handed, Y up)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

# Vertex ranges [start, stop) of the sub-meshes, from the upstream README's topology table.
SUBMESHES: dict[str, tuple[int, int]] = {
    "face": (0, 9409),
    "head_and_neck": (9409, 11248),
    "mouth_socket": (11248, 13294),
    "eye_socket_left": (13294, 13678),
    "eye_socket_right": (13678, 14062),
    "gums_and_tongue": (14062, 17039),
    "teeth": (17039, 21451),
    "eyeball_left": (21451, 23021),
    "eyeball_right": (23021, 24591),
    "lacrimal_fluid_left": (24591, 24795),
    "lacrimal_fluid_right": (24795, 24999),
    "eye_blend_left": (24999, 25023),
    "eye_blend_right": (25023, 25047),
    "eye_occlusion_left": (25047, 25199),
    "eye_occlusion_right": (25199, 25351),
    "eyelashes_left": (25351, 26035),
    "eyelashes_right": (26035, 26719),
    # Finer ranges inside the ones above (README: face area and eyeball details).
    "narrow_face": (0, 6706),
    "iris_left": (22221, 23021),
    "iris_right": (23791, 24591),
}

# Multi-PIE 68-point landmark vertex indices, 0-indexed, from the upstream README.
LANDMARKS68 = np.array([
    1225, 1888, 1052, 367, 1719, 1722, 2199, 1447, 966, 3661, 4390, 3927, 3924, 2608, 3272, 4088, 3443,
    268, 493, 1914, 2044, 1401, 3615, 4240, 4114, 2734, 2509, 978, 4527, 4942, 4857, 1140, 2075, 1147,
    4269, 3360, 1507, 1542, 1537, 1528, 1518, 1511, 3742, 3751, 3756, 3721, 3725, 3732, 5708, 5695, 2081,
    0, 4275, 6200, 6213, 6346, 6461, 5518, 5957, 5841, 5702, 5711, 5533, 6216, 6207, 6470, 5517, 5966,
], dtype=np.int64)


# The texture atlas: cell -> (u0, v0, size) in [0,1]^2, v up (Blender's convention; image row = (1 - v) * S).
# The same layout as core/render/atlas.py draws in image coordinates: the face takes 3/4 of the width
# (a 2048 atlas gives it 1536 px), the eyeballs share one cell, the transparent cards sit in free space.
ATLAS_CELLS: dict[str, tuple[float, float, float]] = {
    "face": (0.0, 0.25, 0.75),
    "eyeball": (0.75, 0.75, 0.25),
    "head": (0.75, 0.5, 0.25),
    "gums": (0.75, 0.25, 0.25),
    "teeth": (0.75, 0.0, 0.25),
    "cards": (0.0, 0.0, 0.25),
    "eyelashes": (0.25, 0.0, 0.25),
}


@dataclass(frozen=True, eq=False)
class FaceModel:
    """The ICT face model.

    vertices(identity, expression) = neutral + identity @ identity_basis + expression @ expression_basis,
    all in metres. Polygons are mostly quads with some triangles, so they are stored flat with sizes
    (as Blender's loops are); `triangles` is the same surface split for rasterizing.
    """

    neutral: np.ndarray  # (V, 3) float32
    expression_names: tuple[str, ...]  # (53,) upstream ICT names
    expressions: np.ndarray  # (53, V, 3) float32 deltas from neutral
    identity: np.ndarray  # (100, V, 3) float32 deltas from neutral, one per PCA mode
    extra_names: tuple[str, ...]  # shapes in the folder beyond the 53 (PupilDilate_L, cheekRaiser_L, ...)
    extras: np.ndarray  # (extras, V, 3) float32 deltas
    polygon_vertices: np.ndarray  # (loops,) int32 vertex index per polygon corner
    polygon_uvs: np.ndarray  # (loops,) int32 uv index per polygon corner
    polygon_sizes: np.ndarray  # (polygons,) int32, 3 or 4
    uvs: np.ndarray  # (uvs, 2) float32
    triangles: np.ndarray  # (T, 3) int32 vertex indices
    triangle_uvs: np.ndarray  # (T, 3) int32 uv indices
    triangle_polygon: np.ndarray  # (T,) int32 polygon each triangle came from
    triangle_corners: np.ndarray  # (T, 3) int32 loop (polygon corner) ids, to gather per-corner data
    regions: dict[str, np.ndarray] = field(default_factory=dict)  # vertex_indices.json lists
    landmarks68: np.ndarray = field(default_factory=lambda: LANDMARKS68.copy())  # (68,)
    submeshes: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(SUBMESHES))
    source_sha256: str = ""

    @cached_property
    def atlas_uvs(self) -> np.ndarray:
        """(loops, 2) per-corner UVs in one [0,1]^2 texture atlas (v up, as Blender's), see ATLAS_CELLS.

        Upstream spreads the UVs over UDIM-like tiles (face u 0-1, back of head and mouth socket 1-2, gums
        2-3, teeth 3-4, ...) and the eyeballs reuse 0-1; one square atlas lets one image texture the head.
        """
        uv = self.uvs[self.polygon_uvs]
        starts = self.polygon_starts
        poly_vertex = self.polygon_vertices[starts]
        poly_u = np.add.reduceat(uv[:, 0], starts) / self.polygon_sizes
        cell = np.full(len(starts), "", dtype=object)
        for tile, name in enumerate(("face", "head", "gums", "teeth")):
            cell[np.floor(poly_u) == tile] = name

        def within(*names):
            return np.any([(poly_vertex >= self.submeshes[n][0]) & (poly_vertex < self.submeshes[n][1])
                           for n in names], axis=0)

        cell[within("eyeball_left", "eyeball_right")] = "eyeball"
        cell[within("lacrimal_fluid_left", "lacrimal_fluid_right", "eye_blend_left", "eye_blend_right",
                    "eye_occlusion_left", "eye_occlusion_right")] = "cards"
        cell[within("eyelashes_left", "eyelashes_right")] = "eyelashes"
        corner_cell = np.repeat(cell, self.polygon_sizes)
        # Each polygon lies within one upstream tile; its UVs relative to that tile fill a cell.
        local = np.clip(uv - np.repeat(np.floor(poly_u), self.polygon_sizes)[:, None] * [1.0, 0.0], 0.0, 1.0)
        out = np.empty_like(uv)
        for name, (u0, v0, size) in ATLAS_CELLS.items():
            sel = corner_cell == name
            out[sel] = [u0, v0] + local[sel] * size
        return out.astype(np.float32)

    @property
    def triangle_atlas_uvs(self) -> np.ndarray:
        """(T, 3, 2) atlas UVs of each triangle's corners."""
        return self.atlas_uvs[self.triangle_corners]

    @property
    def n_vertices(self) -> int:
        return self.neutral.shape[0]

    @property
    def n_expressions(self) -> int:
        return self.expressions.shape[0]

    @property
    def n_identities(self) -> int:
        return self.identity.shape[0]

    @property
    def polygon_starts(self) -> np.ndarray:
        """(polygons,) index of each polygon's first corner in polygon_vertices."""
        return np.concatenate([[0], np.cumsum(self.polygon_sizes)[:-1]]).astype(np.int32)

    def submesh(self, name: str) -> np.ndarray:
        start, stop = self.submeshes[name]
        return np.arange(start, stop)

    def identity_shape(self, identity: np.ndarray | None = None) -> np.ndarray:
        """(V, 3) neutral head of a person: identity (100,) coefficients, None for the generic head."""
        if identity is None:
            return self.neutral
        identity = np.asarray(identity, dtype=np.float32)
        return self.neutral + np.tensordot(identity, self.identity[: identity.shape[0]], axes=1)

    def vertices(
        self,
        identity: np.ndarray | None = None,
        expression: np.ndarray | None = None,
        index: np.ndarray | slice | None = None,
    ) -> np.ndarray:
        """Posed-in-model-space vertices.

        identity: (100,) or None; expression: (53,) or (frames, 53) or None;
        index: optional vertex subset (a slice reads the bases in place, indices copy them).
        Returns (V, 3) or (frames, V, 3).
        """
        sel = slice(None) if index is None else index
        base = self.neutral[sel]
        if identity is not None:
            identity = np.asarray(identity, dtype=np.float32)
            base = base + np.tensordot(identity, self.identity[: identity.shape[0], sel], axes=1)
        if expression is None:
            return base
        expression = np.asarray(expression, dtype=np.float32)
        return base + np.tensordot(expression, self.expressions[:, sel], axes=1)
